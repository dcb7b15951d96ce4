"""Train many models: spec + data → partitions → chunks on a backend → registry, streamed.

    summary = train("store_sales.toml", "store_sales.csv", registry="./mmregistry")
    print(summary.run.n_trained, summary.run.n_failed)

The driver only plans, ships chunks, and commits each finished chunk in one transaction; it
never holds all models in memory. A chunk whose task dies (worker crash) marks its partitions
failed and the run goes on. Ctrl-C cancels what is in flight and keeps what was committed; the
run can then be resumed.
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from manymodels.artifacts import ArtifactStore
from manymodels.candidates import grid
from manymodels.data import DataSource, describe_source, prepare
from manymodels.datasets import is_dataset, prepare_streamed, shuffled, streams
from manymodels.exceptions import (
    BadSignature,
    DataError,
    RunFailed,
    RunInterrupted,
    TrainingError,
    error_text,
)
from manymodels.execution import BACKENDS, Backend, choose_backend, make_backend, plan_chunks
from manymodels.partition import FALLBACK_KEY, PartitionedTable, normalize_key
from manymodels.registry.client import Registry, library_versions
from manymodels.registry.entities import NewVersion, PartitionOutcome, Run
from manymodels.registry.store import ProductionRef, now
from manymodels.serialization import artifact_libraries, require_trusted_format
from manymodels.signing import Signer, verify
from manymodels.spec import Spec
from manymodels.training import (
    Champion,
    Result,
    pooled_fingerprint,
    train_chunk,
    train_fallback,
)
from manymodels.training.global_fit import (
    External,
    GlobalFit,
    fit_global,
    global_candidates,
    rescore_global,
)


@dataclass(frozen=True)
class Progress:
    """What a progress bar needs after each committed chunk."""

    total: int
    trained: int
    skipped: int
    failed: int

    @property
    def done(self) -> int:
        return self.trained + self.skipped + self.failed


@dataclass(frozen=True)
class RunSummary:
    """The outcome of ``train``: the run record, its failures, and where time went."""

    run: Run
    failures: list[PartitionOutcome]
    seconds: float
    startup_seconds: float
    versions: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    """How new versions fared: ``first`` (no production yet), ``promoted``, ``kept`` (the
    champion stays; the new version is the ``candidate``)."""
    rows_dropped: dict[str, int] = field(default_factory=dict)
    """Rows left out of training, by reason (``missing_target``, ``undefined_lags``), summed
    over the partitions trained."""
    chosen: dict[str, int] = field(default_factory=dict)
    """How many partitions chose a candidate and how many the naive baseline."""
    fallback: str | None = None
    """``trained``, ``failed: …`` or ``None`` when the run did not train the fallback."""
    backend: str = ""
    """Where the work ran (``local``, ``ray``, or the class of a backend passed in), and why
    (``backend_reason``): ``auto`` picks by the size of the job."""
    backend_reason: str = ""
    skill: SkillSummary | None = None
    """How the new versions compare with the naive baseline on their validation rows."""

    @property
    def rate(self) -> float:
        """Partitions per second, excluding backend start-up."""
        work = max(self.seconds - self.startup_seconds, 1e-9)
        return self.run.n_done / work


@dataclass(frozen=True)
class SkillSummary:
    """Of ``compared`` new versions with a naive score, ``beat_naive`` scored strictly better;
    ``median`` is the median of their skill, ``(score − naive) / |naive|`` (0.25 = 25 %
    better, as ``ModelVersion.skill``)."""

    compared: int
    beat_naive: int
    median: float

    @classmethod
    def of(cls, skills: list[float]) -> SkillSummary | None:
        if not skills:
            return None
        return cls(len(skills), sum(s > 0 for s in skills), float(statistics.median(skills)))


ProgressCallback = Callable[[Progress], None]


def train(
    spec: Spec | dict[str, Any] | str | Path,
    data: DataSource,
    registry: Registry | str | Path = "./mmregistry",
    *,
    backend: Backend | str = "auto",
    ray_address: str | None = None,
    strict: bool = False,
    progress: ProgressCallback | None = None,
    resume: str | None = None,
    only: Iterable[str] | None = None,
    changed_only: bool = False,
    source: str | None = None,
    notes: Mapping[str, Any] | None = None,
    max_failed_fraction: float = 1.0,
    append: bool = False,
    signer: Signer | None = None,
    shuffle_dir: str | None = None,
) -> RunSummary:
    """Train (or retrain, or resume) one run; returns its summary. Partition failures don't raise.

    A partition that already has a production version is *retrained*: the new version is the
    challenger, evaluated against production on the same validation rows, and the spec's
    promotion policy decides whether it replaces it. ``only`` trains exactly those keys;
    ``changed_only`` only partitions whose data fingerprint differs from production's (and new
    ones). ``resume`` finishes run ``resume`` (same spec), skipping committed partitions.
    ``strict`` stops at the first failed partition and raises ``TrainingError``.
    ``backend`` is ``auto`` (in this process for small jobs, Ray for large ones; see
    ``manymodels.execution.choose_backend``), ``ray``, ``local``, or a ``Backend`` to reuse.
    ``source`` describes where ``data`` came from (recorded as the run's ``data_source``, e.g.
    ``artifact:<sha256>`` for rows stored in the artifact store); ``notes`` are recorded in the
    run's options.

    ``append`` treats ``data`` as new rows: each partition in it is trained on its production
    version's training rows plus these (a new row replaces a kept one with the same time
    value), and only those partitions are trained; the fallback is left as it is.

    ``signer`` signs every version registered (and checks each champion's signature before
    it is compared) when ``train`` opens the registry itself; a ``Registry`` given brings its
    own.

    The run fails as a whole (``RunFailed``, after committing every partition that trained)
    when no partition trained, when more than ``max_failed_fraction`` of them failed, or when
    the fallback model failed.
    """
    started = time.perf_counter()
    spec = Spec.coerce(spec)
    if not 0.0 <= max_failed_fraction <= 1.0:
        raise ValueError(f"max_failed_fraction must be within 0 and 1 (got {max_failed_fraction})")
    own_registry = not isinstance(registry, Registry)
    reg: Registry | None = registry if isinstance(registry, Registry) else None
    try:
        if append:
            from manymodels.appending import with_training_rows

            if reg is None:
                reg = Registry(registry, signer=signer)  # type: ignore[arg-type]
            merged = with_training_rows(reg, spec, data)
            source = source or f"{describe_source(data)} (appended)"
            notes = {**(notes or {}), "append": merged.counts}
            only = merged.keys if only is None else only
            data = merged.frame
        # bad input fails here, before the registry is written
        if is_dataset(data) and streams(spec):  # a Parquet directory: never whole in memory here
            table = prepare_streamed(spec, data, shuffle_dir=shuffle_dir)
        else:
            table, _ = prepare(spec, data)
        notes = {**(notes or {}), **_table_notes(table)}
        wanted = _wanted_keys(table, only, spec.partition_by)
        if reg is None:
            reg = Registry(registry, signer=signer)  # type: ignore[arg-type]
        require_trusted_format(spec.artifacts.format, reg.trusted_formats)
        plan = _plan_run(reg, spec, table, source or describe_source(data), resume=resume,
                         only=wanted, changed_only=changed_only, notes=notes or {})  # fmt: skip
        return _run(reg, spec, table, plan, started, backend=backend, ray_address=ray_address,
                    strict=strict, progress=progress,
                    max_failed_fraction=max_failed_fraction)  # fmt: skip
    finally:
        if own_registry and reg is not None:
            reg.close()


def _table_notes(table: PartitionedTable) -> dict[str, Any]:
    """What reading the table found that a person should see: warnings, rows dropped."""
    return {k: table.extra[k] for k in ("warnings", "bad_rows_dropped") if k in table.extra}


@dataclass(frozen=True)
class _Plan:
    run_id: str
    todo: PartitionedTable
    champions: dict[str, Champion]
    fallback: Champion | None
    fallback_due: bool
    partial: bool = False  # named partitions retrained: global models re-scored, not refitted


def _champion(reg: Registry, key: str, ref: ProductionRef) -> Champion:
    """The champion a worker compares against. Its signature is checked here, in the driver,
    which holds the key: the worker then gets a sha256 the key vouches for, and checks the
    bytes against it, so the key never travels to workers."""
    try:
        verify(
            reg.signer, ref.signature, key, ref.version, ref.artifact_sha256, ref.data_sha256,
            ref.feature_schema_json,
        )  # fmt: skip
    except BadSignature as e:
        return Champion(ref.version, ref.artifact_sha256, ref.last_time, error_text(e))
    return Champion(ref.version, ref.artifact_sha256, ref.last_time)


def _wanted_keys(
    table: PartitionedTable, only: Iterable[str] | None, columns: list[str]
) -> set[str] | None:
    if only is None:
        return None
    wanted = {normalize_key(k, columns) for k in only}
    missing = sorted(wanted - set(table.keys))
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        raise DataError(f"no rows in the data for partition(s) {shown}")
    return wanted


def _run(
    reg: Registry,
    spec: Spec,
    table: PartitionedTable,
    plan: _Plan,
    started: float,
    *,
    backend: Backend | str,
    ray_address: str | None,
    strict: bool,
    progress: ProgressCallback | None,
    max_failed_fraction: float = 1.0,
) -> RunSummary:
    run_id = plan.run_id
    tally = _Tally()
    startup = 0.0
    name, why = _which_backend(spec, table, plan, backend, ray_address)
    if len(plan.todo) or plan.fallback_due:  # nothing to train starts nothing (Ray takes ~10 s)
        setup = time.perf_counter()
        owned = isinstance(backend, str)
        runner = make_backend(name, address=ray_address) if isinstance(backend, str) else backend
        startup = time.perf_counter() - setup
        try:
            _execute(reg, spec, table, plan, runner, strict=strict, progress=progress, tally=tally)
        except KeyboardInterrupt:
            runner.cancel()
            reg.store.finish_run(run_id, "interrupted", error="interrupted by the user")
            raise RunInterrupted(run_id) from None
        except TrainingError as e:
            reg.store.finish_run(run_id, "failed", error=str(e))
            raise
        except Exception as e:
            reg.store.finish_run(run_id, "failed", error=f"{type(e).__name__}: {e}")
            raise
        finally:
            if owned:
                runner.close()
    elif progress:
        progress(Progress(total=0, trained=0, skipped=0, failed=0))
    dropped = tally.dropped
    run = reg.store.get_run(run_id)
    fallback = tally.fallback or ("trained" if plan.fallback is not None else None)
    failure = _run_failure(run, fallback, max_failed_fraction, tally.lost)
    run = reg.store.finish_run(
        run_id, "failed" if failure else "completed", error=failure,
        options={"backend": name, **({"rows_dropped": dropped} if dropped else {}),
                 **({"global": tally.global_models} if tally.global_models else {})},
    )  # fmt: skip
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
        skill=SkillSummary.of(tally.skills),
    )
    if failure:
        raise RunFailed(failure, summary)
    return summary


def _which_backend(
    spec: Spec,
    table: PartitionedTable,
    plan: _Plan,
    backend: Backend | str,
    ray_address: str | None,
) -> tuple[str, str]:
    """Where this run's work goes, and why: the work is the rows to train (the whole table
    again for the pooled fallback, and for each global model a full run fits) times the
    candidate configurations fitted on them."""
    if not isinstance(backend, str):
        return str(getattr(backend, "name", type(backend).__name__)), "a backend was passed in"
    if backend not in BACKENDS:
        raise TrainingError(f"unknown backend '{backend}' (expected 'auto', 'ray' or 'local')")
    if not len(plan.todo) and not plan.fallback_due:
        return "none", "nothing to train"
    folds = spec.validation.folds if spec.validation.strategy == "kfold" else 1
    configurations = sum(len(list(grid(c))) for c in spec.candidates) * folds
    fits = len(global_candidates(spec)) if len(plan.todo) and not plan.partial else 0
    rows = plan.todo.n_rows + table.n_rows * ((1 if plan.fallback_due else 0) + fits)
    tasks = len(plan.todo) + (1 if plan.fallback_due else 0) + fits
    return choose_backend(backend, rows=rows, configurations=configurations, partitions=tasks,
                          address=ray_address)  # fmt: skip


def _run_failure(
    run: Run, fallback: str | None, max_failed_fraction: float, lost: int = 0
) -> str | None:
    """Why a finished run failed as a whole, or ``None``. Partitions lost to the infrastructure
    (a dead worker, a full disk) always fail it: the run is incomplete, and resumable."""
    n, failed = run.n_partitions, run.n_failed
    # every partition too small, and a fallback (trained now or before) serves them
    served_by_fallback = failed == 0 and fallback == "trained"
    if lost:
        return (
            f"{lost} of {n} partition(s) were lost to infrastructure faults (a worker died, the "
            f"disk is full…; see `manymodels runs show {run.run_id}`); once fixed, finish the "
            f"run with --resume {run.run_id}"
        )
    if n and run.n_trained == 0 and not served_by_fallback:
        return f"no partition trained: {failed} of {n} failed, {run.n_skipped} skipped"
    if n and failed / n > max_failed_fraction:
        return (
            f"{failed} of {n} partitions failed ({failed / n:.1%}), more than "
            f"--max-failed-fraction {max_failed_fraction:g} allows"
        )
    if fallback is not None and fallback.startswith(("failed", "lost")):
        return f"the fallback model {fallback}; unknown keys would not be served by it"
    return None


@dataclass
class _Tally:
    """What the driver learns from each committed chunk, for the run's summary."""

    versions: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    chosen: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    fallback: str | None = None
    lost: int = 0
    skills: list[float] = field(default_factory=list)
    global_models: list[dict[str, Any]] = field(default_factory=list)


def _plan_run(
    reg: Registry,
    spec: Spec,
    table: PartitionedTable,
    source: str,
    *,
    resume: str | None,
    only: set[str] | None,
    changed_only: bool,
    notes: Mapping[str, Any],
) -> _Plan:
    """Create (or reopen) the run record; decide which partitions to train, and their champions.

    Everything here is batched queries over the keys being trained, never per partition."""
    todo = table if only is None else table.select(only)
    production = reg.store.production_info([*todo.keys, FALLBACK_KEY])
    options: dict[str, Any] = dict(notes)
    # "changed" = differs from the data the partition was last trained on (its newest version,
    # promoted or not): retraining on identical data would only repeat the same decision.
    last_seen = reg.store.latest_fingerprints([*todo.keys, FALLBACK_KEY]) if changed_only else {}
    if changed_only:
        changed = {
            k for k, fp in zip(todo.keys, todo.fingerprints, strict=True) if last_seen.get(k) != fp
        }
        options |= {"changed_only": True, "unchanged": len(todo) - len(changed)}
        todo = todo.select(changed)
    if only is not None:
        options["only"] = len(only)
    # The pooled fallback is retrained with full runs, and with changed-only runs that changed
    # something; never when named partitions are retrained (that must not touch other models).
    fb = production.get(FALLBACK_KEY)
    pooled_changed = last_seen.get(FALLBACK_KEY) != pooled_fingerprint(table)
    fallback_due = spec.fallback.enabled and only is None and (not changed_only or pooled_changed)
    champions = {k: _champion(reg, k, production[k]) for k in todo.keys if k in production}
    fallback = _champion(reg, FALLBACK_KEY, fb) if fb else None

    if resume is not None:
        previous = reg.get_run(resume)
        lost = reg.store.run_outcomes(resume, status="lost", limit=1)
        if previous.status == "completed" and not lost:
            raise TrainingError(f"run {resume} is already completed; there is nothing to resume")
        if previous.spec_hash != spec.spec_hash:
            raise TrainingError(
                f"run {resume} was made with a different spec "
                f"({previous.spec_hash[:12]} vs {spec.spec_hash[:12]}); start a new run instead"
            )
        if previous.data_fingerprint != pooled_fingerprint(table):
            raise TrainingError(
                f"run {resume} was made from different data (fingerprint "
                f"{previous.data_fingerprint[:12]} vs {pooled_fingerprint(table)[:12]}); "
                "resume it with the same table, or start a new run"
            )
        done = reg.store.recorded_keys(resume)
        reg.store.reopen_run(resume, previous.n_partitions)
        remaining = todo.select({k for k in todo.keys if k not in done})
        # champions of a resumed run are the production versions *before* it: partitions it
        # already committed are skipped, the rest still have their old production
        fallback_due = fallback_due and FALLBACK_KEY not in done
        return _Plan(resume, remaining, champions, fallback, fallback_due, only is not None)

    run = Run(
        run_id=uuid.uuid4().hex[:12],
        kind="retrain" if champions else "train",
        status="running",
        spec_name=spec.name,
        spec_hash=spec.spec_hash,
        spec=spec.to_dict(),
        data_source=source,
        data_fingerprint=pooled_fingerprint(table),
        started_at=now(),
        ended_at=None,
        n_partitions=len(todo),
        n_trained=0,
        n_skipped=0,
        n_failed=0,
        options=options,
    )
    reg.store.create_run(run)
    return _Plan(run.run_id, todo, champions, fallback, fallback_due, only is not None)


def _execute(
    reg: Registry,
    spec: Spec,
    table: PartitionedTable,
    plan: _Plan,
    backend: Backend,
    *,
    strict: bool,
    progress: ProgressCallback | None,
    tally: _Tally,
) -> None:
    """Ship chunks, commit each as it finishes, and tally what they did."""
    todo = plan.todo
    store = reg.artifacts
    libraries = artifact_libraries(library_versions(), spec.artifacts.format)
    counts = Progress(total=len(todo), trained=0, skipped=0, failed=0)
    if progress:
        progress(counts)

    fits, source = _global_phase(reg, spec, table, plan, backend, tally)
    items: list[tuple[str, Any]] = []
    streamed = shuffled(table)  # a Parquet dataset's rows stay on disk until a task reads them
    for a, b in [] if streamed else plan_chunks(todo.offsets, backend.workers):
        chunk = todo.chunk(a, b)
        champions = {k: plan.champions[k] for k in chunk.keys if k in plan.champions}
        items.append(("chunk", (chunk, champions, _slices(fits, source, chunk))))
    if streamed:
        items = streamed.items(todo, plan.champions)
    if plan.fallback_due:
        rows = streamed.sample(spec, table) if streamed else table
        items.insert(0, ("fallback", (rows, plan.fallback, ())))
    for i, result in backend.map_unordered(_run_item, items, spec, store):
        kind, (payload, *_) = items[i]
        items[i] = (kind, (None, None, ()))  # let the chunk's data go as soon as it is done
        results: list[Result]
        if isinstance(result, BaseException):
            keys = [FALLBACK_KEY] if kind == "fallback" else payload.keys
            results = [_task_died(k, result) for k in keys]
        else:
            results = result
        new = [r for r in results if isinstance(r, NewVersion)]
        lost = [r for r in results if isinstance(r, PartitionOutcome)]
        tally.lost += sum(o.status == "lost" and kind == "chunk" for o in lost)
        committed = reg.store.record(
            plan.run_id, new, lost, libraries=libraries, count=kind == "chunk",
            promote=_promotion_reason,
        )  # fmt: skip
        tally.versions.update(committed)
        if kind == "fallback":
            outcome = results[0]
            tally.fallback = (
                "trained" if isinstance(outcome, NewVersion) else
                f"{outcome.status}: {outcome.error_type}: {outcome.message}"
            )  # fmt: skip
        for v in new:
            if kind == "chunk":
                _count(tally.decisions, _outcome(v))
                _count(tally.chosen, str(v.validation.get("chosen", "candidate")))
                if v.naive_score and math.isfinite(v.naive_score) and math.isfinite(v.score):
                    tally.skills.append((v.score - v.naive_score) / abs(v.naive_score))
                for reason, n in v.validation.get("dropped", {}).items():
                    tally.dropped[reason] = tally.dropped.get(reason, 0) + n
        if kind == "chunk":
            counts = Progress(
                total=counts.total,
                trained=counts.trained + len(new),
                skipped=counts.skipped + sum(o.status == "skipped" for o in lost),
                failed=counts.failed + sum(o.status in ("failed", "lost") for o in lost),
            )
            if progress:
                progress(counts)
        failed = [o for o in lost if o.status in ("failed", "lost")]
        if strict and failed:
            backend.cancel()
            first = failed[0]
            raise TrainingError(
                f"partition '{first.key}' failed ({first.error_type}: {first.message}); "
                "stopped because of --strict"
            )


def _count(counts: dict[str, int], name: str) -> None:
    counts[name] = counts.get(name, 0) + 1


def _run_item(item: tuple[str, Any], spec: Spec, store: ArtifactStore) -> Any:
    """The task body shipped to workers: a chunk, the pooled fallback, or a global model."""
    kind, (payload, champions, external) = item
    if hasattr(payload, "run"):  # a Parquet dataset's rows (manymodels.datasets): read here
        return payload.run(spec, store, champions, external)
    if kind == "fallback":
        return [train_fallback(payload, spec, store, champion=champions)]
    if kind == "global":
        return fit_global(payload, spec, store, *champions)
    return train_chunk(payload, spec, store, champions, external)


def _global_phase(
    reg: Registry,
    spec: Spec,
    table: PartitionedTable,
    plan: _Plan,
    backend: Backend,
    tally: _Tally,
) -> tuple[list[GlobalFit], PartitionedTable]:
    """The run's global models, before any chunk: a full run fits each global grid point (one
    task each, on every partition's rows); retraining named partitions re-scores the last
    full run's global models on their rows instead. Returns them with the table their
    validation predictions are aligned to."""
    pairs = global_candidates(spec)
    if not pairs or not len(plan.todo):
        return [], table
    fits: list[GlobalFit] = []
    if plan.partial:
        source = plan.todo
        for record in _current_globals(reg, spec):
            fits.append(rescore_global(source, spec, reg.artifacts, record))
    else:
        source = table
        items = [("global", (table, (cand, params), ())) for cand, params in pairs]
        fits = [GlobalFit(c.label, c.estimator, dict(p)) for c, p in pairs]
        for i, result in backend.map_unordered(_run_item, items, spec, reg.artifacts):
            if isinstance(result, BaseException):
                result = GlobalFit(**{**fits[i].__dict__, "error": error_text(result)})
            fits[i] = result
    for f in fits:
        record = {"label": f.label, "estimator": f.estimator, "params": f.params}
        record |= {"sha256": f.sha256, "size": f.size, "rows": f.rows}
        record |= {"seconds": round(f.seconds, 3), **({"error": f.error} if f.error else {})}
        tally.global_models.append(record)
    return [f for f in fits if f.error is None and f.val_pred is not None], source


def _current_globals(reg: Registry, spec: Spec) -> list[dict[str, Any]]:
    """The global models of the newest completed full run of this spec (bounded look-up)."""
    for run in reg.list_runs(limit=50):
        found = run.options.get("global") if run.spec_name == spec.name else None
        if run.status == "completed" and found and "only" not in run.options:
            return [g for g in found if g.get("sha256")]
    return []


def _slices(
    fits: list[GlobalFit], source: PartitionedTable, chunk: PartitionedTable
) -> list[External]:
    """Each global model's validation predictions of ``chunk``'s rows only: a chunk ships
    O(its rows), never the whole table's."""
    if not fits:
        return []
    at = {k: i for i, k in enumerate(source.keys)}
    rows = np.concatenate(
        [np.arange(source.offsets[at[k]], source.offsets[at[k] + 1]) for k in chunk.keys]
    )
    out = []
    for f in fits:
        assert f.sha256 is not None and f.val_pred is not None
        label = f"{f.label} (global)"
        out.append(External(label, f.estimator, f.params, f.sha256, f.size, f.val_pred[rows]))
    return out


def _task_died(key: str, error: BaseException) -> PartitionOutcome:
    """The whole task died (worker crash, lost node): its partitions are ``lost`` — counted as
    failed, but a resumed run trains them again."""
    text = str(error).strip().splitlines()
    return PartitionOutcome(key, "lost", type(error).__name__, text[-1][:500] if text else "")


def _outcome(version: NewVersion) -> str:
    if version.evaluation.get("champion_version") is None:
        return "first"
    return "promoted" if version.evaluation.get("promote") else "kept"


def _promotion_reason(version: NewVersion) -> str | None:
    """The policy's verdict, made in the worker where both models were scored."""
    evaluation = version.evaluation
    return str(evaluation["reason"]) if evaluation.get("promote") else None
