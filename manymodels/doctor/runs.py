"""Doctor's check of runs: each unfinished run is a problem, with the command that finishes
it, unless a later complete run did its work again."""

from __future__ import annotations

from typing import Any

from manymodels.doctor.findings import Problem
from manymodels.heartbeat import spoken
from manymodels.registry.client import Registry
from manymodels.registry.entities import Run
from manymodels.run_busy import training_now, whereabouts
from manymodels.tempnames import owner_pid


def unfinished_runs(registry: Registry, where: str) -> list[Problem]:
    """One problem per run left unfinished, unless a later run did its work again;
    ``where`` names the registry in the ``--resume`` command each advises."""
    runs = registry.unfinished_runs()
    again = _done_again(registry, [run for run, _ in runs])
    return [_unfinished(run, lost, where) for run, lost in runs if run.run_id not in again]


def _unfinished(run: Run, lost: int, where: str) -> Problem:
    pid = owner_pid(run.options.get("owner"))
    named = run.options.get("only")
    also = (
        " with the same --append data" if run.options.get("append")
        else f" with the same --partitions ({named})"
        + (" and --changed-only" if run.options.get("changed_only") else "")
        if named is not None
        else " --changed-only" if run.options.get("changed_only") else ""
    )  # fmt: skip
    advice = f"finish it with: manymodels train SPEC DATA{where} --resume {run.run_id}" + also
    flagged = run.options.get("retrain")  # `retrain --when …`: its keys are not recorded,
    if isinstance(flagged, str) and named is not None:  # the monitor flags them again
        advice = (
            f"finish it with: manymodels retrain SPEC DATA{where} {flagged} --resume {run.run_id}"
        )
    live = training_now(run)
    if run.killed:
        state = f"is still marked running, but its process (pid {pid}, on this machine) is gone"
    elif run.status == "running" and run.owner_alive:
        state = f"is running (process {pid} on this machine)"
        advice = "let it finish, or stop it and then " + advice
    elif run.silence is not None:
        # where, as RunBusy says it (``whereabouts``): the host the run recorded, which it
        # said "on another machine, or before a reboot" and "elsewhere" for
        state = (
            f"is still marked running, but {whereabouts(run)} has sent no heartbeat for "
            f"{spoken(run.silence)}"
        )
    elif (ahead := run.ahead) is not None:  # not beating: a beat ahead proves nothing
        state = (
            f"is still marked running, but {whereabouts(run)} stamped its heartbeat "
            f"{run.heartbeat_at}, {spoken(ahead)} ahead of this clock (a clock running ahead "
            "there): it proves nothing, so the run blocks nothing"
        )
    elif run.beating:
        state = f"is running ({whereabouts(run)}, heartbeat at {run.heartbeat_at})"
        advice = "let it finish, or stop it and then " + advice
    elif run.status == "running":
        state = "is still marked running (killed, unless it is training right now)"
    elif run.status == "interrupted":
        state = "was interrupted"
    elif (left := run.n_partitions - run.n_done - lost) > 0:
        why = (run.error or "an error").strip().splitlines()[0][:200]
        state = f"failed ({why}) with {left} of {run.n_partitions} partition(s) not trained"
    else:
        state = f"{run.status} with {lost} partition(s) lost to infrastructure faults"
    return Problem(
        "unfinished_run",
        f"run {run.run_id} (spec '{run.spec_name}', data {run.data_source}) {state}: {advice}",
        run_id=run.run_id,
        note=live,
    )


SUPERSEDING_LOOKBACK = 200
"""Runs read, newest first, for one that did an unfinished run's work again."""


def _done_again(registry: Registry, unfinished: list[Run]) -> set[str]:
    """The unfinished runs whose work a later run did again, completely: the same spec and the
    same data (hash and fingerprint), every partition or the same ones (``_scope``: the same
    ``--partitions``, ``--append``, ``--changed-only``), completed with none failed. After
    Ctrl-C a user often runs the command again rather than ``--resume``: the interrupted run
    is then no problem to solve, and resuming it would only train every partition a second
    time. A run still training is never such."""
    stopped = [r for r in unfinished if not training_now(r)]
    if not stopped:
        return set()
    later = [
        r for r in registry.list_runs(limit=SUPERSEDING_LOOKBACK)
        if r.status == "completed" and r.n_failed == 0
        and r.n_trained + r.n_skipped == r.n_partitions
    ]  # fmt: skip
    return {
        run.run_id
        for run in stopped
        if any(
            r.spec_hash == run.spec_hash
            and r.data_fingerprint == run.data_fingerprint
            and r.started_at > run.started_at
            and _covers(r, run)
            for r in later
        )
    }


def _covers(later: Run, run: Run) -> bool:
    """Whether ``later`` trained every partition ``run`` set out to (``_scope``). A run of
    appended rows recorded before runs kept the digest of their partitions (08f1770) names
    them by count only; the same rows appended again, every partition they name each time
    (the fingerprints are compared by the caller), name the same partitions: a router's
    retrain killed under an older release and posted again under this one stayed a problem
    for ever."""
    scope = _scope(later)
    if scope == ("all",) or scope == _scope(run):
        return True
    o, p = run.options, later.options
    return (
        o.get("only_sha256") is None and _every_appended(o) and _every_appended(p)
        and bool(o.get("changed_only")) == bool(p.get("changed_only"))
    )  # fmt: skip


def _every_appended(options: dict[str, Any]) -> bool:
    """A run of appended rows that trained every partition they name (not narrowed by
    ``--partitions``: the same rows then name different partitions)."""
    appended = options.get("append")
    named = options.get("only")
    return isinstance(appended, dict) and named in (None, appended.get("partitions"))


def _scope(run: Run) -> tuple[Any, ...]:
    """Which partitions a run trains: all, or those it named (``--partitions``, a router's
    retrain of one partition: by their digest) or appended to, or the changed ones. A
    router's retrain killed with its router, its rows posted again and trained, stayed a
    problem for ever: only a full run could do its work again."""
    o = run.options
    if not {"only", "append", "changed_only"} & set(o):
        return ("all",)
    return (o.get("only_sha256"), bool(o.get("append")), bool(o.get("changed_only")))
