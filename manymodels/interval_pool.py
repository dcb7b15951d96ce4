"""Prediction intervals whose shape is learnt across partitions (``[intervals] pool_partitions``).

A partition's own conformal band (``manymodels.intervals``) is a quantile of its own validation
errors, and a partition has few of them: 2 folds of 5 years give 10, where a 95 % rank needs
19, so the band is the largest error and covers less than it says. In the accuracy benchmark
such bands covered 89 % at 95 (Cigar). With integer counts the errors are whole numbers and an
80 % band cannot be cut finer than one (pizzaplace: 91 % at 80).

Pooled, each partition contributes its errors made scale-free (``intervals.scale_free``: each
divided by the mean of its partition's other errors, so that a partition that errs by hundreds
and one that errs by tenths contribute the same shape), the run takes a finite-sample conformal
quantile of all of them per level (``q``), every partition weighing the same however many
errors it has, and a partition's band is ``q ×`` its mean error. The scale stays the
partition's own — a mean is far steadier on 10 errors than a 95th percentile — and the shape
is the panel's, read off thousands of errors. It is normalized conformal prediction with the
partition's mean error as its difficulty estimate. Its coverage is approximate: near the level
where the partitions' scale-free errors are alike, not a per-partition guarantee.

When the run pools: it sends its chunks in a shuffled order (``spec.seed``) and holds their
versions until ``SAMPLE_PARTITIONS`` partitions from ``SAMPLE_CHUNKS`` chunks (all of them, in
a smaller run) have returned, so that the sample is not one range of sorted keys; it records
the pool on the run (``options["interval_pool"]``) and only then writes them, each with its
band from the pool; every later version of the run is written with the same pool. A version's
record therefore holds its final band when it is written, as every record does: readers
(``forecast``, ``score``, the router) need nothing else. Versions held when the run stops early
(``--strict``, an error) are written with their own bands and no pool is recorded: a pool of
the few partitions done by then would serve the rest. A resumed run reads the pool its first
process recorded. The sample of a run of more chunks than it needs is the chunks that return
first: two runs of 100,000 partitions may pool slightly different samples.

A run of some partitions only (``--partitions``, ``--append``, ``--changed-only`` once the
registry has models, the resume of a run stopped before its pool) takes the newest completed
run's own pool at its levels and ``[validation]``, as it re-scores a full run's global models;
it never pools its own few partitions, nor is it ever a pool's source. Without such a run its
versions keep their own bands, and the run says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from manymodels.registry.entities import NewVersion, PartitionOutcome, Run
from manymodels.spec_sections import Validation

if TYPE_CHECKING:
    from manymodels.registry.client import Registry
    from manymodels.run_plan import RunPlan
    from manymodels.spec import Spec

SAMPLE_PARTITIONS = 1000
"""Partitions whose errors make the pool: at 10 errors each, 10,000 scores, enough for any
level's quantile; holding a thousand versions' records in the driver costs little."""
SAMPLE_CHUNKS = 8
"""… from at least this many chunks (when the run has them): a chunk is a range of sorted keys
(up to 1,000 partitions), and one range may be one region or one product line."""

POOL_OPTION = "interval_pool"
STOPPED_OPTION = "interval_pool_stopped"  # partitions written with own bands at a stop


@dataclass(frozen=True)
class Pool:
    """The quantiles (one per level) of every pooled partition's scale-free errors."""

    levels: tuple[float, ...]
    quantiles: tuple[float, ...]
    rows: int  # scale-free errors pooled
    partitions: int  # partitions they came from
    run_id: str  # the run whose partitions they are

    @classmethod
    def of(cls, scores: Sequence[np.ndarray], levels: Sequence[float], run_id: str) -> Pool | None:
        """The pool of these partitions' ``scores`` (``pooled_quantile``); ``None`` without
        one."""
        kept = [s for s in scores if len(s)]
        if not kept:
            return None
        quantiles = tuple(pooled_quantile(kept, lv) for lv in levels)
        rows = sum(len(s) for s in kept)
        return cls(tuple(float(lv) for lv in levels), quantiles, rows, len(kept), run_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "levels": list(self.levels),
            "quantiles": list(self.quantiles),
            "rows": self.rows,
            "partitions": self.partitions,
            "run_id": self.run_id,
        }

    @classmethod
    def from_json(cls, doc: Any, levels: Sequence[float]) -> Pool | None:
        """The pool a run recorded, if it is one of ``levels``: after the spec's levels
        changed, an older run's pool answers none of them."""
        if not isinstance(doc, Mapping):
            return None
        try:
            pool = cls(
                tuple(float(v) for v in doc["levels"]),
                tuple(float(v) for v in doc["quantiles"]),
                int(doc["rows"]),
                int(doc["partitions"]),
                str(doc["run_id"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        wanted = tuple(float(lv) for lv in levels)
        return pool if pool.levels == wanted and len(pool.quantiles) == len(wanted) else None


def pooled_quantile(scores: Sequence[np.ndarray], level: float) -> float:
    """A weighted split-conformal quantile of partitions' scores, each partition weighing 1
    (each of its ``n`` scores ``1 / n``): the smallest score whose cumulative weight reaches
    ``level / 100 · (P + w)`` of ``P`` partitions, ``w`` the weight of one new error (the
    mean of ``1 / n``), or the largest score when that is past them. Where every partition
    has ``n`` scores this is ``conformal_quantile``'s rank over all ``P · n`` of them.
    Counted in errors instead, long partitions would set the shape that short ones are held
    to, and a short partition's scale-free errors spread wider (its mean is noisier)."""
    values = np.concatenate(scores)
    weights = np.concatenate([np.full(len(s), 1.0 / len(s)) for s in scores])
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    new = float(np.mean([1.0 / len(s) for s in scores]))
    needed = level / 100 * (len(scores) + new)
    at = int(np.searchsorted(cumulative, needed * (1 - 1e-12), side="left"))
    return float(values[order][min(at, len(values) - 1)])


def scores_of(version: NewVersion) -> np.ndarray | None:
    """The scale-free errors training left in a version's interval record, if any."""
    rec = version.feature_schema.get("intervals")
    scores = rec.get("scores") if isinstance(rec, Mapping) else None
    return None if scores is None else np.asarray(scores, dtype=np.float64)


def with_pool_band(version: NewVersion, pool: Pool | None) -> NewVersion:
    """``version`` as it is written: its record's ``scores`` taken out and, with a ``pool``,
    its band at each level ``q × mean_error``; its own kept as ``partition_quantiles``, and
    its per-step quantiles, when it has them, its bands times each step's width relative to
    its own band (the mean over levels: one horizon shape keeps the levels nested; dropped if
    an own band is 0). Unchanged without scores."""
    doc = version.feature_schema
    rec = doc.get("intervals")
    if not isinstance(rec, Mapping) or "scores" not in rec:
        return version
    out = {k: v for k, v in rec.items() if k != "scores"}
    mean_error = out.get("mean_error")
    if pool is not None and isinstance(mean_error, float) and np.isfinite(mean_error):
        own = [float(q) for q in out["quantiles"]]
        band = [q * mean_error for q in pool.quantiles]
        steps = out.pop("steps", None)
        if steps is not None and all(q > 0 for q in own):  # one shape for every level, so
            # that the bands stay nested: each step's width relative to its own, on average
            profile = [float(np.mean([s / o for s, o in zip(step, own, strict=True)]))
                       for step in steps]  # fmt: skip
            out["steps"] = [[p * b for b in band] for p in profile]
        out["partition_quantiles"] = own
        out["quantiles"] = band
        out["pool"] = {"rows": pool.rows, "partitions": pool.partitions, "run_id": pool.run_id}
    return replace(version, feature_schema={**doc, "intervals": out})


Results = list[NewVersion | PartitionOutcome]
Ready = list[tuple[str, Results]]  # (kind, results) to write, in order


class Pooling:
    """A run's versions on their way to be written: held until the pool is known, then
    passed on with their bands from it (``with_pool_band``). ``take`` and ``finish`` return
    the pool when they find it: the caller records it on the run before writing what they
    return. The fallback keeps its own band (its errors are already every partition's)."""

    def __init__(self, levels: Sequence[float], run_id: str, pool: Pool | None, *,
                 chunks: int, pools: bool = True) -> None:  # fmt: skip
        self.levels = tuple(levels)
        self.run_id = run_id
        self.pool = pool
        self.pools = pools  # the run pools its own partitions' errors
        self.done = pool is not None or not pools  # nothing to hold
        self._chunks_needed = min(SAMPLE_CHUNKS, chunks)
        self._chunks = 0
        self._partitions = 0  # partitions returned with a version
        self._held: Ready = []
        self._scores: list[np.ndarray] = []

    def take(self, kind: str, results: Results) -> tuple[Ready, Pool | None]:
        """What may be written now, and the pool if it was found just now."""
        if self.done:
            return [(kind, self._apply(kind, results))], None
        self._held.append((kind, results))
        if kind == "chunk":
            self._chunks += 1
            for r in results:
                s = scores_of(r) if isinstance(r, NewVersion) else None
                self._partitions += isinstance(r, NewVersion)
                if s is not None and len(s):
                    self._scores.append(s)
        # partitions, not partitions with scores: where few have 2 errors, the run would
        # otherwise hold every version to its end
        if self._partitions < SAMPLE_PARTITIONS or self._chunks < self._chunks_needed:
            return [], None
        return self._release(Pool.of(self._scores, self.levels, self.run_id))

    @property
    def missing(self) -> bool:
        """The run was to pool its own partitions' errors, some trained, and none had any."""
        return self.pools and self.done and self.pool is None and self._partitions > 0

    def finish(self) -> tuple[Ready, Pool | None]:
        """Everything still held, once every task has finished (the pool from all of them)."""
        if self.done:
            return [], None
        return self._release(Pool.of(self._scores, self.levels, self.run_id))

    def abandon(self) -> Ready:
        """Everything still held, with its own bands, when the run stops early: a pool of the
        partitions done by then is no sample of the rest."""
        if self.done:
            return []
        return self._release(None)[0]

    @property
    def held_partitions(self) -> int:
        """Partitions' versions that wait for the pool (the fallback's never takes it)."""
        return self._waiting("chunk")

    @property
    def held(self) -> int:
        """Versions that wait for the pool (the fallback's too)."""
        return self._waiting()

    def _waiting(self, kind: str | None = None) -> int:
        """Versions held, of ``kind``'s tasks only when it is given."""
        held = (rs for k, rs in self._held if kind is None or k == kind)
        return sum(isinstance(r, NewVersion) for rs in held for r in rs)

    def _release(self, pool: Pool | None) -> tuple[Ready, Pool | None]:
        self.pool = pool
        self.done = True
        held, self._held, self._scores = self._held, [], []
        return [(kind, self._apply(kind, results)) for kind, results in held], pool

    def _apply(self, kind: str, results: Results) -> Results:
        pool = self.pool if kind == "chunk" else None
        return [with_pool_band(r, pool) if isinstance(r, NewVersion) else r for r in results]


def pooling_for(reg: Registry, spec: Spec, plan: RunPlan, *, chunks: int) -> Pooling | None:
    """How a run's versions get their bands with ``[intervals] pool_partitions`` (``None``
    without it, or with nothing to train): the pool this run recorded before it was resumed;
    for a run that does not pool itself (``pools_itself``), the newest completed run's own
    pool at the spec's levels and ``[validation]`` (recorded on this run too: its summary and
    a resume read it there), or their own bands and a warning on the run; else a pool of its
    own sample."""
    if spec.intervals is None or not spec.intervals.pool_partitions:
        return None
    levels = spec.intervals.levels
    if not len(plan.todo):  # the fallback alone: its scores taken out, nothing pooled
        return Pooling(levels, plan.run_id, None, chunks=chunks, pools=False)
    options = reg.store.get_run(plan.run_id).options
    pool = Pool.from_json(options.get(POOL_OPTION), levels)
    if pool is not None:
        return Pooling(levels, plan.run_id, pool, chunks=chunks)
    if pools_itself(options, plan):
        return Pooling(levels, plan.run_id, None, chunks=chunks)

    def usable(run: Run) -> bool:
        """A source: a run that pooled its own partitions (not one that took another's), at
        these levels, with these validation rows (how many errors a partition has sets the
        spread of its scale-free ones)."""
        found = Pool.from_json(run.options.get(POOL_OPTION), levels)
        try:
            same_rows = Validation.model_validate(run.spec.get("validation") or {}) == (
                spec.validation
            )
        except ValueError:  # a stored spec of rules since changed: not this spec's rows
            same_rows = False
        return found is not None and found.run_id == run.run_id and same_rows

    full = reg.store.newest_full_run(spec.name, POOL_OPTION, usable)
    pool = Pool.from_json(full.options.get(POOL_OPTION), levels) if full else None
    if pool is not None:
        record_pool(reg, plan, pool)
    else:
        why = (
            "intervals: pool_partitions: no completed run of this spec pooled all its "
            f"partitions' errors at levels {', '.join(f'{lv:g}' for lv in levels)} with its "
            "validation rows, so the partitions trained now keep bands of their own errors "
            "(a full run without --changed-only pools them)"
        )
        warn(reg, plan, why)
    return Pooling(levels, plan.run_id, pool, chunks=chunks, pools=False)


def pools_itself(options: Mapping[str, Any], plan: RunPlan) -> bool:
    """Whether a run's own partitions make its pool: not when it trains some partitions only
    (named or appended: ``only``; changed ones of a registry that had models: the data of a
    day may hold a few), nor when it resumes a run stopped before its pool was known (the
    partitions left are no sample of all)."""
    if "only" in options or STOPPED_OPTION in options:
        return False
    # partitions skipped again on the data they were skipped on (below min_rows) have no model
    # and would add no errors: they make no run partial
    modelled = options.get("unchanged", 0) - options.get("unchanged_skipped", 0)
    return not (options.get("changed_only") and (plan.champions or modelled))


def warn(reg: Registry, plan: RunPlan, why: str) -> None:
    """One more of the run's warnings (its summary prints them), unless it has it already (a
    resumed run says it again)."""
    known = reg.store.get_run(plan.run_id).options.get("warnings", [])
    if why not in known:
        reg.store.record_run_options(plan.run_id, {"warnings": [*known, why]}, owner=plan.owner)


def record_pool(reg: Registry, plan: RunPlan, pool: Pool) -> None:
    """The pool on the run, before any version that uses it is written."""
    reg.store.record_run_options(plan.run_id, {POOL_OPTION: pool.to_json()}, owner=plan.owner)
