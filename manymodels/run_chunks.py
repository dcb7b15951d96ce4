"""A run's work on a backend: the global models first, then every chunk of partitions (and the
pooled fallback) shipped to workers, each finished task committed in one transaction and
tallied for the run's summary (with ``[intervals] pool_partitions``, once the run's interval
pool is known: ``manymodels.interval_pool``). A task that dies marks its partitions ``lost``;
the run goes on, unless the artifact store did not answer it (``manymodels.store_outage``).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from manymodels.artifacts import ArtifactStore
from manymodels.datasets import shuffled
from manymodels.exceptions import RunTakenOver, TrainingError
from manymodels.execution import Backend, plan_chunks
from manymodels.interval_pool import (
    STOPPED_OPTION,
    Pool,
    Ready,
    pooling_for,
    record_pool,
    warn,
)
from manymodels.intervals import ShortLevel, short_levels
from manymodels.partition import FALLBACK_KEY, PartitionedTable
from manymodels.registry.client import Registry, library_versions
from manymodels.registry.entities import NewVersion, PartitionOutcome
from manymodels.registry.runs import taken_over_message
from manymodels.run_plan import RunPlan
from manymodels.serialization import artifact_libraries
from manymodels.signing import global_refusal
from manymodels.spec import Spec
from manymodels.store_outage import stop_if_down
from manymodels.training import Result, global_tasks, train_chunk, train_fallback
from manymodels.training.external import External
from manymodels.training.global_fit import GlobalFit, global_candidates, rescore_global
from manymodels.training.transforms import view


@dataclass(frozen=True)
class Progress:
    """What a progress bar needs after each finished chunk (committed, unless held for the
    run's interval pool: ``manymodels.interval_pool``)."""

    total: int
    trained: int
    skipped: int
    failed: int

    @property
    def done(self) -> int:
        return self.trained + self.skipped + self.failed


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class ShortIntervals:
    """Of a run's new versions, ``partitions`` whose band at one level rests on fewer errors
    than ``needed`` (``intervals.short_levels``), the fewest being ``fewest``: the run's
    summary warns that those bands cover less than their level."""

    partitions: int
    needed: int
    fewest: int

    @classmethod
    def add(cls, seen: ShortIntervals | None, short: ShortLevel) -> ShortIntervals:
        if seen is None:
            return cls(1, short.needed, short.rows)
        return cls(seen.partitions + 1, seen.needed, min(seen.fewest, short.rows))


@dataclass
class Tally:
    """What the driver learns from each committed chunk, for the run's summary."""

    versions: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    chosen: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    fallback: str | None = None
    lost: int = 0
    skills: list[float] = field(default_factory=list)
    global_models: list[dict[str, Any]] = field(default_factory=list)
    short_intervals: dict[float, ShortIntervals] = field(default_factory=dict)
    global_members: int = 0  # new versions whose top2 ensemble holds a global model
    run_id: str = ""  # the run's own (its global models are recorded on it as they are made)


def execute(
    reg: Registry,
    spec: Spec,
    table: PartitionedTable,
    plan: RunPlan,
    backend: Backend,
    *,
    strict: bool,
    progress: ProgressCallback | None,
    tally: Tally,
    taken_over: threading.Event | None = None,
) -> None:
    """Ship chunks, commit each as it finishes (or once the interval pool is known), and tally
    what they did. ``taken_over`` (set
    by the run's heartbeat once another process resumed the run) stops the work at the next
    finished task, before its commit would be refused: a Ray cluster's time is not spent on
    a run that is no longer this process's."""
    todo = plan.todo
    store = reg.artifacts
    libraries = artifact_libraries(library_versions(), spec.artifacts.format)
    counts = Progress(total=len(todo), trained=0, skipped=0, failed=0)
    if progress:
        progress(counts)

    fits, source = _global_phase(reg, spec, table, plan, backend, tally, taken_over)
    items: list[tuple[str, Any]] = []
    streamed = shuffled(table)  # a Parquet dataset's rows stay on disk until a task reads them
    position = {k: i for i, k in enumerate(source.keys)} if fits else {}
    for a, b in [] if streamed else plan_chunks(todo.offsets, backend.workers):
        chunk = todo.chunk(a, b)
        champions = {k: plan.champions[k] for k in chunk.keys if k in plan.champions}
        items.append(("chunk", (chunk, champions, _slices(fits, source, position, chunk))))
    if streamed:
        items = streamed.items(todo, plan.champions)
    if plan.fallback_due:
        rows = streamed.sample(spec, table) if streamed else table
        items.insert(0, ("fallback", (rows, plan.fallback, ())))
    pooling = pooling_for(reg, spec, plan, chunks=sum(kind == "chunk" for kind, _ in items))
    if pooling is not None and not pooling.done:  # the pool's sample: not one range of keys
        items = _shuffled_chunks(items, spec.seed)

    def commit(kind: str, results: list[Result]) -> None:
        new = [r for r in results if isinstance(r, NewVersion)]
        lost = [r for r in results if isinstance(r, PartitionOutcome)]
        tally.lost += sum(o.status == "lost" and kind == "chunk" for o in lost)
        committed = reg.store.record(
            plan.run_id, new, lost, libraries=libraries, count=kind == "chunk",
            promote=_promotion_reason, owner=plan.owner,
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
                _tally_version(tally, v, overruled=v.key in committed.overruled)

    def received(kind: str, results: list[Result]) -> None:
        """Progress as each task returns: with an interval pool its versions may be written
        later, and a bar that stood still while the pool's partitions trained would look hung."""
        nonlocal counts
        if kind != "chunk":
            return
        lost = [r for r in results if isinstance(r, PartitionOutcome)]
        counts = Progress(
            total=counts.total,
            trained=counts.trained + len(results) - len(lost),
            skipped=counts.skipped + sum(o.status == "skipped" for o in lost),
            failed=counts.failed + sum(o.status in ("failed", "lost") for o in lost),
        )
        if progress:
            progress(counts)

    def release(ready: Ready, pool: Pool | None = None) -> None:
        if pool is not None:
            record_pool(reg, plan, pool)
        for kind, results in ready:
            commit(kind, results)

    try:
        for i, result in backend.map_unordered(_run_item, items, spec, store):
            _still_ours(reg, plan, taken_over)
            kind, (payload, *_) = items[i]
            items[i] = (kind, (None, None, ()))  # let the chunk's data go once it is done
            results: list[Result]
            if isinstance(result, BaseException):
                keys = [FALLBACK_KEY] if kind == "fallback" else payload.keys
                results = [_task_died(k, result) for k in keys]
            else:
                results = result
            if pooling is None:
                commit(kind, results)
            else:
                release(*pooling.take(kind, results))
            received(kind, results)
            stop_if_down(result, backend, plan.run_id, len(results))  # every put would wait
            failed = [o for o in results if isinstance(o, PartitionOutcome)]
            failed = [o for o in failed if o.status in ("failed", "lost")]
            if strict and failed:
                backend.cancel()
                first = failed[0]
                raise TrainingError(
                    f"partition '{first.key}' failed ({first.error_type}: {first.message}); "
                    "stopped because of --strict"
                )
    except RunTakenOver:
        raise  # the run is another process's now: nothing more of it is written here
    except BaseException:
        if pooling is not None and pooling.held:  # kept, as they would be without a pool
            with contextlib.suppress(Exception):  # the first error is the one to see
                backend.cancel()  # the rest stops first: writing what is held may take a while
            with contextlib.suppress(Exception):
                held = pooling.held_partitions  # none: the fallback alone, never pooled
                if held:
                    stopped = {STOPPED_OPTION: held}
                    reg.store.record_run_options(plan.run_id, stopped, owner=plan.owner)
                release(pooling.abandon())
                if held:
                    warn(reg, plan, f"intervals: pool_partitions: the run stopped before its "
                         f"pool was known; {held:,} partition(s) trained by then keep bands of "
                         "their own errors, and the rest take a full run's pool")  # fmt: skip
        raise
    if pooling is not None:
        release(*pooling.finish())
        if pooling.missing:
            warn(reg, plan, "intervals: pool_partitions: no partition had 2 validation "
                 "errors or more to pool, so each band is its partition's own")  # fmt: skip


def _tally_version(tally: Tally, v: NewVersion, *, overruled: bool = False) -> None:
    """What the run's summary counts of one new version of a partition (``overruled``: its
    promotion verdict no longer applied when it was written, ``WritesMixin.record``)."""
    outcome = v.decision.outcome if v.decision else "first"
    _count(tally.decisions, "overruled" if overruled else outcome)
    _count(tally.chosen, v.selection.chosen)
    tally.global_members += bool(v.members)
    if v.naive_score and math.isfinite(v.naive_score) and math.isfinite(v.score):
        tally.skills.append((v.score - v.naive_score) / abs(v.naive_score))
    for reason, n in v.selection.dropped.items():
        tally.dropped[reason] = tally.dropped.get(reason, 0) + n
    for short in short_levels(v.schema.intervals):
        seen = tally.short_intervals.get(short.level)
        tally.short_intervals[short.level] = ShortIntervals.add(seen, short)


def _shuffled_chunks(items: list[tuple[str, Any]], seed: int) -> list[tuple[str, Any]]:
    """The chunks in a shuffled order (the fallback first still): those that return first
    make the interval pool, and in key order they would be the first keys."""
    chunks = [item for item in items if item[0] == "chunk"]
    order = np.random.default_rng(seed).permutation(len(chunks))
    return [item for item in items if item[0] != "chunk"] + [chunks[i] for i in order]


def _still_ours(reg: Registry, plan: RunPlan, taken_over: threading.Event | None) -> None:
    """``RunTakenOver`` once the heartbeat found the run resumed by another process (the
    pipeline then cancels the backend's rest, as for a refused commit)."""
    if taken_over is not None and taken_over.is_set():
        other = reg.store.get_run(plan.run_id).options.get("owner")
        raise RunTakenOver(taken_over_message(plan.run_id, other))


def _count(counts: dict[str, int], name: str) -> None:
    counts[name] = counts.get(name, 0) + 1


def _run_item(item: tuple[str, Any], spec: Spec, store: ArtifactStore) -> Any:
    """The task body shipped to workers: a chunk or the pooled fallback."""
    kind, (payload, champions, external) = item
    if hasattr(payload, "run"):  # a Parquet dataset's rows (manymodels.datasets): read here
        return payload.run(spec, store, champions, external)
    if kind == "fallback":
        return [train_fallback(payload, spec, store, champion=champions)]
    return train_chunk(payload, spec, store, champions, external)


def _global_phase(
    reg: Registry,
    spec: Spec,
    table: PartitionedTable,
    plan: RunPlan,
    backend: Backend,
    tally: Tally,
    taken_over: threading.Event | None = None,
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
        views: dict[str, PartitionedTable] = {spec.transform: source}
        records, seen = _current_globals(reg, spec, source.keys)
        for record in records:
            kind = record["transform"]
            if kind not in spec.transforms:  # a transform the spec no longer lists: no view
                continue
            if kind not in views:
                views[kind] = view(source, spec, kind).table
            refused = global_refusal(reg.signer, record)
            if refused is not None:
                fit = GlobalFit(record["label"], record["estimator"], dict(record["params"]),
                                error=refused)  # fmt: skip
            else:
                fit = rescore_global(views[kind], spec, reg.artifacts, record, seen)
            fits.append(replace(fit, transform=kind))
    else:
        source = table
        # every grid point under every target transform, each a task per fold and one for
        # the refit (``global_tasks``): the table is shipped once and each task builds its
        # transform's view (the driver holds one table, not one per transform)
        grid = [(kind, cand, params) for kind in spec.transforms for cand, params in pairs]
        work = global_tasks.tasks(spec, grid)
        done: list[Any] = [None] * len(work)
        shared = (spec, reg.artifacts, table)
        for i, result in backend.map_unordered(global_tasks.run_task, work, *shared):
            _still_ours(reg, plan, taken_over)
            stop_if_down(result, backend, plan.run_id, 0)
            done[i] = result
        each = len(work) // len(grid)
        fits = [
            global_tasks.assemble(
                GlobalFit(c.label, c.estimator, dict(p), transform=k),
                done[at * each : (at + 1) * each], table, spec,
            )
            for at, (k, c, p) in enumerate(grid)
        ]  # fmt: skip
    for f in fits:
        record = {"label": f.label, "estimator": f.estimator, "params": f.params}
        record["transform"] = f.transform
        record |= {"sha256": f.sha256, "size": f.size, "rows": f.rows}
        if reg.signer is not None and f.sha256 is not None:  # what a later retrain loads
            record["signature"] = reg.signer.sign_global(f.sha256)
        record |= {"through": f.through} if f.through is not None else {}
        record |= {"seconds": round(f.seconds, 3), **({"error": f.error} if f.error else {})}
        tally.global_models.append(record)
    if tally.run_id and tally.global_models:
        # on the run before any chunk loads them: ``gc`` keeps a running run's global models
        # (``referenced_digests``) however long its chunks take; during the global phase
        # itself the young-artifact grace covers them
        reg.store.record_run_options(
            tally.run_id, {"global": tally.global_models}, owner=plan.owner
        )
    return [f for f in fits if f.error is None and f.val_pred is not None], source


def _current_globals(
    reg: Registry, spec: Spec, keys: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The global models of the newest completed full run of this spec (``gc`` keeps them:
    ``referenced_digests``), and the last time of each of ``keys`` that run trained: the
    rows those models saw of it."""
    run = reg.store.newest_global_run(spec.name)
    if run is None:
        return [], {}
    # a run before transforms were recorded fitted its spec's (first) transform
    listed = run.spec.get("target_transform", "none")
    first = listed[0] if isinstance(listed, list) else listed
    found = run.options["global"]  # a list: ``current_global``
    records = [{"transform": first, **g} for g in found if isinstance(g, dict) and g.get("sha256")]
    return records, reg.store.last_times(run.run_id, keys) if records else {}


def _slices(
    fits: list[GlobalFit],
    source: PartitionedTable,
    position: dict[str, int],
    chunk: PartitionedTable,
) -> list[External]:
    """Each global model's validation predictions of ``chunk``'s rows only: a chunk ships
    O(its rows), never the whole table's."""
    if not fits:
        return []
    at = position  # each key's partition in ``source``, built once per run
    rows = np.concatenate(
        [np.arange(source.offsets[at[k]], source.offsets[at[k] + 1]) for k in chunk.keys]
    )
    out = []
    for f in fits:
        assert f.sha256 is not None and f.val_pred is not None and f.transform is not None
        label = f"{f.label} (global)"
        pred = f.val_pred[rows]
        out.append(
            External(label, f.estimator, f.params, f.sha256, f.size, pred, f.transform,
                     unscored=f.unscored)
        )  # fmt: skip
    return out


def _task_died(key: str, error: BaseException) -> PartitionOutcome:
    """The whole task died (worker crash, lost node): its partitions are ``lost`` — counted as
    failed, but a resumed run trains them again."""
    text = str(error).strip().splitlines()
    return PartitionOutcome(key, "lost", type(error).__name__, text[-1][:500] if text else "")


def _promotion_reason(version: NewVersion) -> str | None:
    """The policy's verdict, made in the worker where both models were scored."""
    decision = version.decision
    return decision.reason if decision is not None and decision.promote else None
