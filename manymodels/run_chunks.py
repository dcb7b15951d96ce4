"""A run's work on a backend: the global models first (``manymodels.run_globals``), then
every chunk of partitions (and the pooled fallback) shipped to workers, each finished task
committed in one transaction and tallied for the run's summary (with ``[intervals]
pool_partitions``, once the run's interval pool is known: ``manymodels.interval_pool``). A
task that dies marks its partitions ``lost``; the run goes on, unless the artifact store did
not answer it (``manymodels.store_outage``).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from manymodels.artifacts import ArtifactStore
from manymodels.dataset_buckets import shuffled
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
from manymodels.run_globals import GLOBAL_SUFFIX, chunk_slices, global_phase, still_ours
from manymodels.run_plan import RunPlan
from manymodels.run_summary import CandidateFailures
from manymodels.serialization import artifact_libraries
from manymodels.spec import Spec
from manymodels.store_outage import stop_if_down
from manymodels.training import Result, train_chunk, train_fallback
from manymodels.training.fallback import worse_than_naive


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
    zero_naive: int = 0  # new versions whose naive baseline scored a perfect 0: no skill
    global_models: list[dict[str, Any]] = field(default_factory=list)
    short_intervals: dict[float, ShortIntervals] = field(default_factory=dict)
    global_members: int = 0  # new versions whose top2 ensemble holds a global model
    candidate_failures: dict[str, CandidateFailures] = field(default_factory=dict)
    global_unjudged: dict[str, CandidateFailures] = field(default_factory=dict)
    local: frozenset[str] = frozenset()  # the spec's local candidates' labels: their failures
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

    fits, source = global_phase(
        reg, spec, table, plan, backend, tally.global_models, tally.run_id, taken_over
    )
    items: list[tuple[str, Any]] = []
    streamed = shuffled(table)  # a Parquet dataset's rows stay on disk until a task reads them
    position = {k: i for i, k in enumerate(source.keys)} if fits else {}
    for a, b in [] if streamed else plan_chunks(todo.offsets, backend.workers):
        chunk = todo.chunk(a, b)
        champions = {k: plan.champions[k] for k in chunk.keys if k in plan.champions}
        items.append(("chunk", (chunk, champions, chunk_slices(fits, source, position, chunk))))
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
            if isinstance(outcome, NewVersion) and (said := worse_than_naive(outcome, committed)):
                warn(reg, plan, said)  # printed with the run's summary, kept on the run
        for v in new:
            if kind == "chunk":
                _tally_version(
                    tally, v, overruled=v.key in committed.overruled,
                    returned=v.key in committed.returned,
                )  # fmt: skip

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
            still_ours(reg, plan, taken_over)
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


def _tally_version(
    tally: Tally, v: NewVersion, *, overruled: bool = False, returned: bool = False
) -> None:
    """What the run's summary counts of one new version of a partition (``overruled``: its
    promotion verdict no longer applied when it was written; ``returned``: it put a retired
    partition back in production; both known once ``WritesMixin.record`` wrote it)."""
    outcome = v.decision.outcome if v.decision else "first"
    _count(tally.decisions, "overruled" if overruled else "returned" if returned else outcome)
    _count(tally.chosen, v.selection.chosen)
    tally.global_members += bool(v.members)
    if v.naive_score and math.isfinite(v.naive_score) and math.isfinite(v.score):
        tally.skills.append((v.score - v.naive_score) / abs(v.naive_score))
    elif v.naive_score == 0 and math.isfinite(v.score):  # a series all zeros of late
        tally.zero_naive += 1
    for reason, n in v.selection.dropped.items():
        tally.dropped[reason] = tally.dropped.get(reason, 0) + n
    for short in short_levels(v.schema.intervals):
        seen = tally.short_intervals.get(short.level)
        tally.short_intervals[short.level] = ShortIntervals.add(seen, short)
    unfitted = v.selection.chosen in ("single_class", "too_few_rows")  # no candidate was tried
    failed = {} if unfitted else {c.label: c.error for c in v.candidates if c.error}
    # one class, a global model chosen: its local candidates were not tried, not failed
    one_class = "single_class" in v.evaluation
    for label, error in failed.items():  # the first error of each label, once per partition
        if label in tally.local:
            if one_class:
                continue
            into = tally.candidate_failures
        elif label.endswith(GLOBAL_SUFFIX):  # a global model not judged on this partition
            into, label = tally.global_unjudged, label.removesuffix(GLOBAL_SUFFIX)
        else:
            continue
        known = into.get(label)
        into[label] = known.add() if known else CandidateFailures(1, v.key, str(error))


def _shuffled_chunks(items: list[tuple[str, Any]], seed: int) -> list[tuple[str, Any]]:
    """The chunks in a shuffled order (the fallback first still): those that return first
    make the interval pool, and in key order they would be the first keys."""
    chunks = [item for item in items if item[0] == "chunk"]
    order = np.random.default_rng(seed).permutation(len(chunks))
    return [item for item in items if item[0] != "chunk"] + [chunks[i] for i in order]


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


def _task_died(key: str, error: BaseException) -> PartitionOutcome:
    """The whole task died (worker crash, lost node): its partitions are ``lost`` — counted as
    failed, but a resumed run trains them again."""
    text = str(error).strip().splitlines()
    return PartitionOutcome(key, "lost", type(error).__name__, text[-1][:500] if text else "")


def _promotion_reason(version: NewVersion) -> str | None:
    """The policy's verdict, made in the worker where both models were scored."""
    decision = version.decision
    return decision.reason if decision is not None and decision.promote else None
