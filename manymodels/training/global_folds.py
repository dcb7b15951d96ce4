"""Which table rows each global fit uses: per validation fold, every partition's training
rows of that fold (and all rows of partitions too small to validate), and the validation
rows it must predict; at most ``[fallback] max_rows`` training rows, sampled with the seed.

Apart from ``training.global_fit`` (the global model, its binding to a key, its scoring)
because this is the fold plan every global task computes alike, at 100,000 partitions in
memory linear in the rows, and it knows nothing of the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from manymodels.partition import PartitionedTable
from manymodels.spec import Spec
from manymodels.training.rows import drop_masks, kept_rows
from manymodels.training.splits import PartitionSkipped, SplitsByCount


def fold_rows(
    table: PartitionedTable, spec: Spec
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Rows every fit may use, and per fold the (train, validation) table rows: each
    partition's fold ``f`` of the same ``validation_splits`` its chunk computes."""
    masks = drop_masks(table, spec)
    usable = np.ones(table.n_rows, dtype=bool)
    for m in drop_masks(table, spec, pooled=True).values():
        usable &= ~m
    for m in masks.values():
        usable &= ~m
    folds: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
    always: list[np.ndarray] = []
    # a row count's time-ordered splits once a task, not once a partition (~0.1 ms each,
    # 10 s a task at 100,000 partitions); a shuffled split is still seeded by each key
    splits_of = SplitsByCount(spec)
    for i, key in enumerate(table.keys):
        kept, _ = kept_rows(table.rows(i), masks)
        # the partition's own rows only: a view of an arange over the whole table kept that
        # table-long array alive per partition (quadratic memory, OOM past ~30,000 partitions)
        idx = np.arange(kept.start, kept.stop) if isinstance(kept, slice) else kept
        n = len(idx)
        try:
            if n < spec.min_rows:
                raise PartitionSkipped(key)
            splits: list[Any] | None = splits_of(n, key=key)
        except PartitionSkipped:
            splits = None
        if splits is None:
            always.append(idx)
            continue
        while len(folds) < len(splits):
            folds.append(([], []))
        for f, (tr, va) in enumerate(splits):
            folds[f][0].append(idx[tr])
            folds[f][1].append(idx[va])
    everyone = np.concatenate(always) if always else np.empty(0, dtype=np.int64)
    out = []
    for tr, va in folds:
        train = np.sort(np.concatenate([everyone, *tr]))
        out.append((_capped(train[usable[train]], spec), np.concatenate(va)))
    return _capped(np.flatnonzero(usable), spec), out


def _capped(rows: np.ndarray, spec: Spec) -> np.ndarray:
    """At most ``[fallback] max_rows`` training rows, a seeded sample above it, as the pooled
    fallback samples: one task must hold them. Every validation row is still predicted."""
    limit = spec.fallback.max_rows
    if len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng(spec.seed).choice(rows, limit, replace=False))
