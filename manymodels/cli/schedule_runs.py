"""What became of a scheduled firing's run (``manymodels scheduler``, ``cli.schedule``): the run
of a firing, killed or ended, and resuming it."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from manymodels.exceptions import NothingToTrain, RunBusy
    from manymodels.registry import Registry
    from manymodels.registry.entities import Run
    from manymodels.registry.firings import FailedFiring


def firing_run(
    reg: Registry, schedule: str, spec_name: str, plan: Any, due: datetime, data: str
) -> Run | None:
    """The newest run of ``schedule``'s firing at ``due``, or ``None``. Killed in it (a
    reboot, the OOM killer, ``kill -9``: its process gone from this machine, or silent
    elsewhere past the heartbeat limit, or stamped ahead of this clock past it, as
    ``--resume`` takes it: ``was_killed``), the run is resumed; before, a scheduler restarted
    then took the firing for done and waited for the next one — a week, for a weekly
    schedule — its run left marked running. Ended, it tells what became of a firing whose
    scheduler died before it recorded that (``ended``). Found by the row the run wrote under
    its schedule when it was created (``registry.firing_runs``), not among the newest runs:
    other runs (router retrain jobs, ``train``) pushed it out of those."""
    from manymodels.exceptions import RunNotFound
    from manymodels.registry.firing_runs import firing_run_id

    stamp = due.isoformat(timespec="seconds")
    run_id = firing_run_id(reg.store, schedule, stamp)
    if run_id is None:
        return None
    try:
        run = reg.get_run(run_id)
    except RunNotFound:
        return None
    o = run.options
    if (
        o.get("trigger") == "schedule" and o.get("due") == stamp
        and o.get("cron") == plan.cron and o.get("when") == list(plan.when)
        and run.spec_name == spec_name and run.data_source == data
    ):  # fmt: skip
        return run
    return None


def ended(failed: FailedFiring | None, run: Run | None, due: datetime) -> FailedFiring | None:
    """The firing's failure (``registry.firings.FailedFiring``), ``None`` when its ``run``
    (not killed: ``was_killed``) says the firing ran or runs though the mark of the firing
    under way names a scheduler gone. Completed: that scheduler was killed after the run and
    before it cleared the mark (or the registry refused that one write). Running: another
    scheduler resumes the run its killed scheduler left. Before, either was taken for a
    firing killed before its run began and run a second time — beside the resume, or every
    partition again for when = ["all"]. Failed: the firing failed, as the run tells (it said
    "its scheduler was killed before its run started")."""
    if failed is None or failed.owner is None or run is None or failed.due != due:
        return failed
    if run.status == "failed":  # its scheduler died before it recorded why: the run says
        said = (run.error or "").strip().splitlines()
        why = f": {said[0]}" if said else ""
        return dataclasses.replace(failed, error=f"its run {run.run_id} failed{why}")
    return None if run.status in ("completed", "running") else failed


def was_killed(run: Run) -> bool:
    """Whether the firing's ``run`` was left to be resumed: marked running, and not training
    now by the one rule ``RunBusy``, ``runs abandon`` and ``--resume`` go by
    (``run_busy.training_now``) — its process gone from this machine, or silent elsewhere
    past the heartbeat limit, or its heartbeat stamped ahead of this clock past that limit (a
    clock running ahead there: such a beat proves nothing). Before, that last one read as
    alive: a restarted scheduler left the killed firing's run unresumed until this clock
    caught up."""
    from manymodels.run_busy import training_now

    return run.status == "running" and not training_now(run)


def still_killed(target: Any, run_id: str) -> bool:
    """Whether run ``run_id`` is still as its killed process left it: a resume refused
    before it began (the data file changed since) reopened nothing."""
    with _opened(target) as reg:
        return was_killed(reg.get_run(run_id))


def with_finished_keys(target: Any, run_id: str, only: list[str] | None) -> list[str] | None:
    """The partitions a resume of run ``run_id`` names: those flagged now and those it
    recorded (``cli.retrain.with_finished``, as ``retrain --resume``)."""
    from manymodels.cli.retrain import with_finished

    if only is None:
        return None
    with _opened(target) as reg:
        return with_finished(reg, run_id, only)


@contextlib.contextmanager
def _opened(target: Any) -> Iterator[Any]:
    """The registry ``target`` is, or one opened on its path or location for the while."""
    from manymodels.registry import Registry
    from manymodels.registry.registry_location import open_existing

    if isinstance(target, Registry):
        yield target
        return
    with open_existing(target) as reg:
        yield reg


def flagged(
    registry: Path, db_url: str | None, artifacts: str | None, when: Sequence[str]
) -> list[str] | None:
    """The partitions the monitor flags for ``when``; ``None`` for ``changed`` and ``all``
    (training decides)."""
    if set(when) & {"changed", "all"}:
        return None
    from manymodels.cli.retrain import flagged_keys
    from manymodels.monitoring.report import Thresholds

    return flagged_keys(registry, db_url, artifacts, set(when), Thresholds())


def require_registry(registry: Path, db_url: str | None, artifacts: str | None) -> None:
    """``NoRegistry`` at start for a schedule of monitor flags only (``drifted``, ``stale``,
    ``degraded``) whose registry does not exist: only a registry's monitor flags anything, yet
    the first firing's claim made an empty one there (a typo in ``--registry``), and every
    firing then said "nothing to retrain: no partition is flagged", exit 0, for ever. A
    registry unreachable now (a database restarting) is left to each firing to say."""
    from manymodels.cli.options import open_registry
    from manymodels.exceptions import NoRegistry, RegistryError

    try:
        with open_registry(registry, db_url, artifacts):
            pass
    except NoRegistry:
        raise
    except RegistryError:
        return


def not_beside_a_run(
    registry: Path, db_url: str | None, artifacts: str | None, spec_name: str
) -> None:
    """``NothingToTrain`` saying which run a firing is skipped for: one of the spec training
    now on the registry (``run_busy.training_run``): a `manymodels train` started by hand,
    another schedule's firing. A firing beside it trained the same partitions twice at once.
    The next firing follows it."""
    from manymodels.cli.options import open_registry
    from manymodels.exceptions import NothingToTrain
    from manymodels.run_busy import training_run

    with open_registry(registry, db_url, artifacts) as reg:
        busy = training_run(reg.store, spec_name)
    if busy is not None:
        raise NothingToTrain(
            f"skipped: run {busy.run_id} ({busy.kind}, started {busy.started_at[:19]}) is "
            "still training this spec on the registry; the next firing trains what it leaves "
            "to do"
        )


def beaten_by(
    registry: Path, db_url: str | None, artifacts: str | None, spec_name: str, busy: RunBusy
) -> NothingToTrain:
    """The skip of a firing whose own run was refused (``busy``): a run of the spec recorded
    after ``not_beside_a_run`` found none (a `train` by hand started while the firing read its
    data). It is the skip that check says, not the firing's error: that was an exit 1, a
    failure recorded for the firing to be tried again, and the advice to abandon a live run."""
    from manymodels.exceptions import NothingToTrain

    try:
        not_beside_a_run(registry, db_url, artifacts, spec_name)
    except NothingToTrain as skipped:
        return skipped
    return NothingToTrain(  # it ended in the meantime
        f"skipped: run {busy.run_id} was training this spec on the registry as this firing's "
        "run began; the next firing trains what it leaves to do"
    )
