"""Train many models: spec + data → partitions → chunks on a backend → registry, streamed.

    summary = train("store_sales.toml", "store_sales.csv", registry="./mmregistry")
    print(summary.run.n_trained, summary.run.n_failed)

The driver only plans, ships chunks, and commits each finished chunk in one transaction; it
never holds all models in memory. A chunk whose task dies (worker crash) marks its partitions
failed and the run goes on. Ctrl-C cancels what is in flight and keeps what was committed; the
run can then be resumed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from manymodels.backend_arg import require_backend
from manymodels.candidates import grid
from manymodels.champion_targets import left_on_old_target
from manymodels.exceptions import RunFailed, RunInterrupted, RunTakenOver, TrainingError
from manymodels.execution import Backend, backend_name, choose_backend, known, make_backend
from manymodels.feature_schema import FeatureSchema
from manymodels.flags import require_callable, require_flags, require_mapping
from manymodels.heartbeat import Heartbeat
from manymodels.key_selection import KeySelection
from manymodels.partition import PartitionedTable
from manymodels.registry.client import Registry
from manymodels.registry.registry_location import RegistryLocation
from manymodels.run_busy import refuse_before_reading
from manymodels.run_chunks import Progress, ProgressCallback, Tally, execute
from manymodels.run_input import read_input
from manymodels.run_plan import RunPlan, plan_run
from manymodels.run_summary import RunSummary, SkillSummary
from manymodels.run_verdict import all_skipped, fallback_failed_before, run_failure
from manymodels.serialization import require_trusted_format
from manymodels.signing import Signer
from manymodels.spec import Spec
from manymodels.store_outage import database_stopped
from manymodels.tables import DataSource, describe_source, require_found
from manymodels.training.global_fit import global_candidates

__all__ = ["Progress", "ProgressCallback", "RunSummary", "SkillSummary", "train"]


def train(
    spec: Spec | dict[str, Any] | str | Path,
    data: DataSource,
    registry: Registry | RegistryLocation | str | Path = "./mmregistry",
    *,
    backend: Backend | str = "auto",
    ray_address: str | None = None,
    strict: bool = False,
    progress: ProgressCallback | None = None,
    resume: str | None = None,
    only: KeySelection | None = None,
    changed_only: bool = False,
    spec_edits: bool = False,
    source: str | None = None,
    notes: Mapping[str, Any] | None = None,
    max_failed_fraction: float = 1.0,
    append: bool = False,
    signer: Signer | None = None,
    shuffle_dir: str | None = None,
    skip_absent: bool = False,
    learnt_schema: FeatureSchema | None = None,
    record_nothing: bool = True,
    new_target: bool = False,
) -> RunSummary:
    """Train (or retrain, or resume) one run; returns its summary. Partition failures don't raise.

    A partition that already has a production version is *retrained*: the new version is the
    challenger, evaluated against production on the same validation rows, and the spec's
    promotion policy decides whether it replaces it. ``only`` trains exactly those keys (one
    key alone, text or a mapping, is a list of one);
    ``changed_only`` only partitions whose data fingerprint differs from production's (and new
    ones); with ``spec_edits`` also those whose newest version another spec made (``retrain
    --when degraded`` after the spec was edited for them).
    ``resume`` finishes run ``resume`` (same spec), skipping committed partitions.
    ``strict`` stops at the first failed partition and raises ``TrainingError``.
    ``backend`` is ``auto`` (in this process for small jobs, Ray for large ones; see
    ``manymodels.execution.choose_backend``), ``ray``, ``local``, or a ``Backend`` to reuse.
    ``source`` describes where ``data`` came from (recorded as the run's ``data_source``, e.g.
    ``artifact:<sha256>`` for rows stored in the artifact store); ``notes`` are recorded in the
    run's options.

    ``append`` treats ``data`` as new rows: each partition in it is trained on its newest
    version's kept training rows plus these (a new row replaces a kept one with the same time
    value), and only those partitions are trained; the fallback is left as it is. The newest
    version, promoted or not: rows appended under a ``manual`` policy, or to a kept champion,
    are in it alone; one that kept no rows (an MLflow import) is passed over, with a warning
    (``manymodels.appending``).

    ``skip_absent`` leaves out keys of ``only`` the data holds no row of, recorded in the
    run's options (``not_in_data``: how many, the first ten), rather than refusing them all;
    the monitor's flags name partitions the data may have dropped. ``DataError`` still when
    it holds none of them.

    ``record_nothing=False`` (the CLI's and the scheduler's): a ``changed_only`` run that
    finds no partition changed, nor the fallback's table, raises ``NothingToTrain`` (its
    message the line to show) and records no run, rather than a run of nothing.

    ``new_target``: the spec's target replaces the one production predicts (a renamed
    column): champions of another target are replaced by the new versions, uncompared,
    whatever the policy, rather than the run refused (``manymodels.champion_targets``). Not
    with ``only`` or ``append``: the partitions such a run leaves alone, and the fallback it
    does not retrain, would go on serving the old target beside the new.

    ``learnt_schema``: a version's schema, whose table's class rates a classifier smooths toward
    rather than ``data``'s rows of a few partitions (the router's ``?mode=replace``).

    ``registry``: a directory, opened (made, if new) once the data is read and checked, so bad
    input leaves nothing behind; a ``RegistryLocation`` (a database and an artifact store
    named apart) is opened at the same point; a ``Registry`` given is the caller's to close.

    ``signer`` signs every version registered (and checks each champion's signature before
    it is compared) when ``train`` opens the registry itself; a ``Registry`` given brings its
    own, and so does a ``RegistryLocation`` that names one.

    The run fails as a whole (``RunFailed``, after committing every partition that trained)
    when no partition trained, when more than ``max_failed_fraction`` of them failed, or when
    the fallback model failed.
    """
    started = time.perf_counter()
    spec = Spec.coerce(spec)
    require_backend(backend)  # before the run is recorded: a typo left it 'running'
    given = describe_source(data)  # the run records the data as given (a schedule's text)
    # a list of dicts was taken for a file name; a missing file is said before any registry
    # is opened (append opens it first): it left an empty one behind
    data = require_found(data)
    require_flags(
        strict=strict, changed_only=changed_only, spec_edits=spec_edits, append=append,
        skip_absent=skip_absent, record_nothing=record_nothing, new_target=new_target,
    )  # fmt: skip
    if new_target and (only is not None or append):  # the rest would serve the old target
        raise TrainingError(
            "--new-target (new_target=True) replaces the old target's models of every "
            "partition and of the fallback: a run of named partitions (--partitions, --append) "
            "leaves the others and the fallback predicting the old target; train all the "
            "data with --new-target"
        )
    require_callable("progress", progress, "each chunk's Progress")
    require_mapping("notes", notes)
    if isinstance(max_failed_fraction, bool) or not isinstance(
        max_failed_fraction, int | float | np.number
    ):
        # '0.5' failed in the comparison: "'<=' not supported between 'float' and 'str'"
        raise ValueError(f"max_failed_fraction must be a number, not {max_failed_fraction!r}")
    if not 0.0 <= max_failed_fraction <= 1.0:
        raise ValueError(f"max_failed_fraction must be within 0 and 1 (got {max_failed_fraction})")
    own_registry = not isinstance(registry, Registry)
    reg: Registry | None = registry if isinstance(registry, Registry) else None
    try:
        # before the data is read: another run of the spec training refuses it
        refuse_before_reading(registry, spec.name, besides=resume)
        got = read_input(
            spec, data, registry, signer=signer, append=append, source=source, notes=notes,
            only=only, shuffle_dir=shuffle_dir, learnt_schema=learnt_schema,
            skip_absent=skip_absent,
        )  # fmt: skip
        reg, table, source, notes, wanted = got.reg, got.table, got.source, got.notes, got.wanted
        require_trusted_format(spec.artifacts.format, reg.trusted_formats)
        plan = plan_run(reg, spec, table, source or given, resume=resume,
                         only=wanted, changed_only=changed_only, notes=notes or {},
                         spec_edits=spec_edits, record_nothing=record_nothing,
                         new_target=new_target)  # fmt: skip
        return _run(reg, spec, table, plan, started, backend=backend, ray_address=ray_address,
                    strict=strict, progress=progress,
                    max_failed_fraction=max_failed_fraction)  # fmt: skip
    finally:
        if own_registry and reg is not None:
            reg.close()


def _run(
    reg: Registry,
    spec: Spec,
    table: PartitionedTable,
    plan: RunPlan,
    started: float,
    *,
    backend: Backend | str,
    ray_address: str | None,
    strict: bool,
    progress: ProgressCallback | None,
    max_failed_fraction: float = 1.0,
) -> RunSummary:
    run_id = plan.run_id
    local = frozenset(c.label for c in spec.candidates if c.scope == "local")
    tally = Tally(run_id=run_id, local=local)
    startup = 0.0
    name, why = _which_backend(spec, table, plan, backend, ray_address)
    if len(plan.todo) or plan.fallback_due:  # nothing to train starts nothing (Ray takes ~10 s)
        owned = isinstance(backend, str)
        runner: Backend | None = None
        # alive from now on, for whoever cannot look up our pid: Ray's start-up included
        with Heartbeat(reg.store, run_id, plan.owner) as heartbeat:
            try:
                setup = time.perf_counter()
                runner = (
                    make_backend(name, address=ray_address) if isinstance(backend, str) else backend
                )
                startup = time.perf_counter() - setup
                execute(
                    reg, spec, table, plan, runner, strict=strict, progress=progress, tally=tally,
                    taken_over=heartbeat.taken_over,
                )  # fmt: skip
            except RunTakenOver as e:  # resumed elsewhere: the run is not ours to close
                if runner is not None:
                    runner.cancel()
                raise TrainingError(str(e)) from None
            except KeyboardInterrupt:
                if runner is not None:
                    runner.cancel()
                _close(reg, plan, "interrupted", "interrupted by the user")
                raise RunInterrupted(run_id) from None
            except TrainingError as e:
                _close(reg, plan, "failed", str(e))
                raise
            except Exception as e:
                down = database_stopped(e, run_id)
                try:
                    _close(reg, plan, "failed", f"{type(e).__name__}: {e}")
                except Exception as closing:  # the database away: the run stays running
                    down = down or database_stopped(closing, run_id)
                    if down is None:
                        raise
                if down is not None:
                    raise down from e
                raise
            finally:
                if owned and runner is not None:
                    runner.close()
    elif progress:
        progress(Progress(total=0, trained=0, skipped=0, failed=0))
    dropped = tally.dropped
    run = reg.store.get_run(run_id)
    fallback = (
        tally.fallback
        or fallback_failed_before(reg, run_id)  # a resume does not train it again
        or ("trained" if plan.fallback is not None else None)
    )
    failure = run_failure(reg, run, fallback, max_failed_fraction, tally.lost)
    warnings = run.options.get("warnings", [])
    note = None if failure else all_skipped(reg, run)
    if note is not None and note not in warnings:
        warnings = [*warnings, note]
    # a run with partitions lost is resumed, and its resume says it; a resume's line replaces
    # the one its run said before
    said, left = run.options.get("old_target"), None
    if not tally.lost:
        left = left_on_old_target(plan.champions, tally.versions, spec.target)
    warnings = [w for w in warnings if not said or w != said.get("warning")]
    warnings += [left["warning"]] if left else []
    try:
        run = reg.store.finish_run(
            run_id, "failed" if failure else "completed", error=failure, owner=plan.owner,
            options={"backend": name, **({"rows_dropped": dropped} if dropped else {}),
                     **({"global": tally.global_models} if tally.global_models else {}),
                     **({"warnings": warnings} if warnings or said else {}),
                     **({"old_target": left} if left or said else {})},
        )  # fmt: skip
    except RunTakenOver as e:
        raise TrainingError(str(e)) from None
    summary = RunSummary(
        run=run,
        failures=reg.store.run_outcomes(run_id, status=("failed", "lost"), limit=100),
        seconds=time.perf_counter() - started,
        startup_seconds=startup,
        versions=tally.versions,
        decisions=tally.decisions,
        rows_dropped=dropped,
        chosen=tally.chosen,
        fallback=tally.fallback,
        backend=name,
        backend_reason=why,
        skill=SkillSummary.of(tally.skills, tally.zero_naive),
        short_intervals=tally.short_intervals,
        global_members=tally.global_members,
        candidate_failures=tally.candidate_failures,
        global_unjudged=tally.global_unjudged,
        lost=tally.lost,
    )
    if failure:
        raise RunFailed(failure, summary)
    return summary


def _close(reg: Registry, plan: RunPlan, status: str, error: str) -> None:
    """Record why the run ended, unless another process has resumed it meanwhile: then it is
    that process's to close, and this one stops with that one line (``TrainingError``), not
    with its own error — nor, after Ctrl-C, with advice to resume a run that is running."""
    try:
        reg.store.finish_run(plan.run_id, status, error=error, owner=plan.owner)
    except RunTakenOver as e:
        raise TrainingError(str(e)) from None


def _which_backend(
    spec: Spec,
    table: PartitionedTable,
    plan: RunPlan,
    backend: Backend | str,
    ray_address: str | None,
) -> tuple[str, str]:
    """Where this run's work goes, and why: the work is the rows to train (the whole table
    again for the pooled fallback, and for each global model a full run fits) times the
    candidate configurations fitted on them."""
    if not isinstance(backend, str):
        why = "the caller's backend, started before this run (its start-up is not counted here)"
        return backend_name(backend), why
    known(backend)
    if not len(plan.todo) and not plan.fallback_due:
        return "none", "nothing to train"
    folds = spec.validation.folds if spec.validation.strategy == "kfold" else 1
    configurations = sum(len(list(grid(c))) for c in spec.candidates) * folds
    fits = (
        len(global_candidates(spec)) * len(spec.transforms)
        if len(plan.todo) and not plan.partial
        else 0
    )
    # every partition is fitted once per listed transform; each global fit reads the table
    local = plan.todo.n_rows * len(spec.transforms)
    rows = local + table.n_rows * ((1 if plan.fallback_due else 0) + fits)
    tasks = len(plan.todo) + (1 if plan.fallback_due else 0) + fits
    return choose_backend(backend, rows=rows, configurations=configurations, partitions=tasks,
                          address=ray_address)  # fmt: skip
