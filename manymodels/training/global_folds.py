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
from manymodels.training.rows import Masks, drop_masks, kept_rows
from manymodels.training.splits import PartitionSkipped, SplitsByCount


def fold_rows(
    table: PartitionedTable, spec: Spec
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Rows every fit may use, and per fold the (train, validation) table rows: each
    partition's fold ``f`` of the same ``validation_splits`` its chunk computes."""
    usable, (everyone, folds) = _plan(table, spec)
    out = []
    for tr, va in folds:
        # the usable ones of the fold's training rows, ascending: no row is listed twice (a
        # partition's splits are distinct rows, and partitions own distinct rows), so a mask
        # gives what sorting their concatenation gave, in one pass over the table
        train = np.zeros(table.n_rows, dtype=bool)
        train[everyone] = True
        for rows in tr:
            train[rows] = True
        out.append((_capped(np.flatnonzero(train & usable), spec), np.concatenate(va)))
    return _capped(np.flatnonzero(usable), spec), out


Plan = tuple[np.ndarray, list[tuple[list[np.ndarray], list[np.ndarray]]]]
"""The rows of partitions too small to validate, and per fold its training and validation
row arrays (to be concatenated)."""


def _plan(table: PartitionedTable, spec: Spec) -> tuple[np.ndarray, Plan]:
    """Which rows every fit may use (a mask), and the fold plan."""
    masks = drop_masks(table, spec)
    usable = np.ones(table.n_rows, dtype=bool)
    for m in drop_masks(table, spec, pooled=True).values():
        usable &= ~m
    for m in masks.values():
        usable &= ~m
    ordered = spec.time_column is not None and spec.validation_strategy in ("last", "kfold")
    plan = _by_row_count(table, spec, masks) if ordered else _by_partition(table, spec, masks)
    return usable, plan


def own_training_rows(table: PartitionedTable, spec: Spec) -> list[np.ndarray]:
    """Per fold, the usable training rows of the partitions that validate on it, ascending and
    never capped: the rows whose predictions give a prior-shifted partition its reference
    rates (``training.shifted``), which must be its own fold's training rows — every one of
    them, whatever sample of the table the fit itself took."""
    usable, (_, folds) = _plan(table, spec)
    out = []
    for tr, _ in folds:
        train = np.zeros(table.n_rows, dtype=bool)
        for rows in tr:
            train[rows] = True
        out.append(np.flatnonzero(train & usable))
    return out


def _by_row_count(table: PartitionedTable, spec: Spec, masks: Masks) -> Plan:
    """``_by_partition``'s plan when splits depend on a partition's row count alone (time
    ordered): every partition of one count takes the same relative rows, so each count's
    partitions are indexed at once, as one matrix of their kept rows — a Python step per
    distinct count, not per partition. Every global task of a run computes this plan (12 on
    the accuracy panels' one spec); partition by partition it cost ~30 µs each, 2.5 % of
    us_employment's one spec and seconds per task at 100,000 partitions.

    The same arrays as partition by partition: training rows are put in order after (by
    ``fold_rows``), and each fold's validation rows there — partitions in order, each one's
    rows ascending — are ascending, as these are."""
    offsets = np.asarray(table.offsets, dtype=np.int64)
    n_parts = len(offsets) - 1
    if masks:
        dropped = np.zeros(table.n_rows, dtype=bool)
        for m in masks.values():
            dropped |= m
        kept = np.flatnonzero(~dropped)  # each partition's kept rows, in order, ascending
    else:
        kept = np.arange(table.n_rows, dtype=np.int64)
    owner = np.searchsorted(offsets, kept, side="right") - 1
    counts = np.bincount(owner, minlength=n_parts)[:n_parts]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    splits_of = SplitsByCount(spec)
    folds: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
    always: list[np.ndarray] = []
    for n in np.unique(counts).tolist():
        members = np.flatnonzero(counts == n)
        rows = kept[starts[members][:, None] + np.arange(n, dtype=np.int64)[None, :]]
        try:
            if n < spec.min_rows:
                raise PartitionSkipped(table.keys[int(members[0])])
            # a row count's splits do not depend on the key when time ordered
            splits: list[Any] = splits_of(n, key=table.keys[int(members[0])])
        except PartitionSkipped:
            always.append(rows.ravel())
            continue
        while len(folds) < len(splits):
            folds.append(([], []))
        for f, (tr, va) in enumerate(splits):
            folds[f][0].append(rows[:, tr].ravel())
            folds[f][1].append(rows[:, va].ravel())
    everyone = np.concatenate(always) if always else np.empty(0, dtype=np.int64)
    plan: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
    for tr, va in folds:  # each fold's validation rows ascending, as partition by partition
        valid = np.zeros(table.n_rows, dtype=bool)
        for rows in va:
            valid[rows] = True
        plan.append((tr, [np.flatnonzero(valid)]))
    return everyone, plan


def _by_partition(table: PartitionedTable, spec: Spec, masks: Masks) -> Plan:
    """The fold plan partition by partition: for splits seeded by each key (a shuffled
    holdout, k folds without a time column)."""
    folds: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
    always: list[np.ndarray] = []
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
    return everyone, folds


def _capped(rows: np.ndarray, spec: Spec) -> np.ndarray:
    """At most ``[fallback] max_rows`` training rows, a seeded sample above it, as the pooled
    fallback samples: one task must hold them. Every validation row is still predicted."""
    limit = spec.fallback.max_rows
    if len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng(spec.seed).choice(rows, limit, replace=False))
