"""Prediction intervals whose shape is learnt across partitions (``[intervals] pool_partitions``).

A partition's own conformal band (``manymodels.intervals``) is a quantile of its own validation
errors, and a partition has few of them: 2 folds of 5 years give 10, where a 95 % rank needs
19, so the band is the largest error and covers less than it says. In the accuracy benchmark
such bands covered 89 % at 95 (Cigar). With integer counts the errors are whole numbers and an
80 % band cannot be cut finer than one (pizzaplace: 91 % at 80).

Pooled, each partition contributes its errors divided by their mean (its ``scores``: a
partition that errs by hundreds and one that errs by tenths contribute the same shape), the
run takes the finite-sample conformal quantile of all of them per level (``q``), and a
partition's band is ``q × its mean error``. The scale stays the partition's own — a mean is far
steadier on 10 errors than a 95th percentile — and the shape is the panel's, read off
thousands of errors. It is normalized conformal prediction with the partition's mean error as
its difficulty estimate; the guarantee becomes the pooled one: over the panel's partitions, a
new scale-free error falls within ``q`` with probability at least the level, if the
partitions' scale-free errors are exchangeable.

When the run pools: it holds the first ``SAMPLE_PARTITIONS`` partitions' versions (every
partition, in a run of fewer) until their scores are in, records the pool on the run
(``options["interval_pool"]``) and only then writes them, each with its band from the pool;
every later version of the run is written with the same pool. A version's record therefore
holds its final band when it is written, as every record does: readers (``forecast``,
``score``, the router) need nothing else. A resumed run reads the pool its first process
recorded; a run that retrains named partitions takes the newest completed full run's pool, as
it re-scores that run's global models, so that one partition's band is not cut from its own
ten errors again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from manymodels.intervals import conformal_quantile
from manymodels.registry.entities import NewVersion, PartitionOutcome

SAMPLE_PARTITIONS = 1000
"""Partitions whose errors make the pool: at 20 errors each, 20,000 scores, enough for any
level's quantile; holding a thousand versions' records in the driver costs little."""

RUN_OPTION = "interval_pool"


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
        """The pool of these partitions' ``scores``; ``None`` without a finite one."""
        kept = [s for s in scores if len(s)]
        joined = np.concatenate(kept) if kept else np.zeros(0)
        joined = joined[np.isfinite(joined)]
        if not len(joined):
            return None
        quantiles = tuple(conformal_quantile(joined, lv) for lv in levels)
        return cls(tuple(float(lv) for lv in levels), quantiles, len(joined), len(kept), run_id)

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
        """A recorded pool, if it is one for ``levels`` (a spec whose levels changed since
        pools again)."""
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


def scores_of(version: NewVersion) -> np.ndarray | None:
    """The scale-free errors training left in a version's interval record, if any."""
    rec = version.feature_schema.get("intervals")
    scores = rec.get("scores") if isinstance(rec, Mapping) else None
    return None if scores is None else np.asarray(scores, dtype=np.float64)


def pooled(version: NewVersion, pool: Pool | None) -> NewVersion:
    """``version`` as it is written: its record's ``scores`` taken out and, with a ``pool``,
    its band at each level ``q × scale`` (its own kept as ``partition_quantiles``; per-step
    quantiles, which its own errors gave, go). Unchanged without scores."""
    doc = version.feature_schema
    rec = doc.get("intervals")
    if not isinstance(rec, Mapping) or "scores" not in rec:
        return version
    out = {k: v for k, v in rec.items() if k != "scores"}
    scale = out.get("scale")
    if pool is not None and isinstance(scale, float) and np.isfinite(scale):
        out.pop("steps", None)
        out["partition_quantiles"] = out["quantiles"]
        out["quantiles"] = [q * scale for q in pool.quantiles]
        out["pool"] = {"rows": pool.rows, "partitions": pool.partitions, "run_id": pool.run_id}
    return replace(version, feature_schema={**doc, "intervals": out})


Results = list[NewVersion | PartitionOutcome]


class Pooling:
    """A run's versions on their way to be written: held until the pool is known, then
    passed on with their bands from it (``pooled``). ``recorded`` is called once with the
    pool, before any version that uses it is written."""

    def __init__(self, levels: Sequence[float], run_id: str, pool: Pool | None) -> None:
        self.levels = tuple(levels)
        self.run_id = run_id
        self.pool = pool
        self.done = pool is not None  # a pool known already: nothing to hold
        self._held: list[tuple[str, Results]] = []
        self._scores: list[np.ndarray] = []

    def take(self, kind: str, results: Results) -> tuple[list[tuple[str, Results]], Pool | None]:
        """What may be written now (a list of ``(kind, results)``), and the pool if it was
        found just now (the caller records it on the run first)."""
        if self.done:
            return [(kind, self._apply(results))], None
        self._held.append((kind, results))
        if kind == "chunk":
            for r in results:
                s = scores_of(r) if isinstance(r, NewVersion) else None
                if s is not None:
                    self._scores.append(s)
        if len(self._scores) < SAMPLE_PARTITIONS:
            return [], None
        return self._release()

    def finish(self) -> tuple[list[tuple[str, Results]], Pool | None]:
        """Everything still held, once every task has finished (the pool from all of them)."""
        if self.done:
            return [], None
        return self._release()

    def _release(self) -> tuple[list[tuple[str, Results]], Pool | None]:
        self.pool = Pool.of(self._scores, self.levels, self.run_id)
        self.done = True
        held, self._held, self._scores = self._held, [], []
        return [(kind, self._apply(results)) for kind, results in held], self.pool

    def _apply(self, results: Results) -> Results:
        return [pooled(r, self.pool) if isinstance(r, NewVersion) else r for r in results]
