"""Which rows a model trains on, and why the others are left out.

A row is left out for one reason, the first that applies, in this order (after the rows
``bad_rows = "drop"`` kept in place for the lags, which the run counts apart):

* ``missing_target`` — no target value (the spec's ``missing_target = "drop"``, the default);
* ``undefined_lags`` — its target lags or rolling windows reach before the partition's first
  row (or at a missing target), or a feature change does (``changes``: the first row, or a
  missing value);
* ``unusable_target`` and ``unusable_features`` — an infinite target, or a NaN or infinite
  numeric feature, or one too large to square in float64 (``|x| > 1e150``: least squares
  overflows on it). The pooled fallback only: a partition's own bad value fails that
  partition, while the fallback, which pools every partition's rows, must not be sunk by one
  of them.

The counts are recorded with each version (``validation.dropped``) and summed in the run.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from manymodels.partition import PartitionedTable
from manymodels.spec import Spec

Masks = dict[str, np.ndarray]  # reason → rows it leaves out, over the whole table
STRAY = "stray_word"
"""The rows ``bad_rows = "drop"`` kept in place for the lags (``PartitionedTable.stray``):
left out first and not counted, the run having counted them (``bad_rows_dropped``)."""
Rows = slice | np.ndarray


def missing_target(y: np.ndarray) -> np.ndarray:
    """Rows whose target is missing (NaN, None, pandas NA)."""
    if y.dtype.kind == "f":
        return np.isnan(y)
    if y.dtype.kind in "iub":
        return np.zeros(len(y), dtype=bool)
    return np.asarray(pd.isna(y), dtype=bool)


def undefined_lags(table: PartitionedTable, spec: Spec) -> np.ndarray | None:
    """Rows with a target lag, rolling window or feature change that reaches before the
    partition's first row (or at a missing value), or ``None`` without them."""
    lags = [*spec.lag_columns, *spec.rolling_columns, *spec.change_columns]
    if not lags:
        return None
    if isinstance(table.X, pd.DataFrame):
        return np.asarray(table.X[lags].isna().any(axis=1).to_numpy(), dtype=bool)
    at = [table.features.index(c) for c in lags]
    return np.asarray(~np.isfinite(table.X[:, at]).all(axis=1))


HUGE = 1e150
"""Above this a value's square overflows float64 (1.8e308): least squares cannot use it."""


def _unusable(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(values) | (np.abs(values) > HUGE)


def unusable_features(table: PartitionedTable) -> np.ndarray:
    """Rows with a numeric feature that is NaN, infinite or too large to square."""
    if isinstance(table.X, pd.DataFrame):
        numeric = [c for c in table.features if c not in table.categorical]
        if not numeric:
            return np.zeros(len(table.X), dtype=bool)
        values = table.X[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = table.X
    return np.asarray(_unusable(values).any(axis=1))


def drop_masks(table: PartitionedTable, spec: Spec, *, pooled: bool = False) -> Masks:
    """The reasons that apply to this table, each as a mask over its rows (empty ones left out).

    ``pooled`` (the fallback) always drops missing targets and non-finite values."""
    masks: Masks = {}
    if table.stray is not None:  # first: the run counts them already (bad_rows_dropped)
        masks[STRAY] = table.stray
    lags = undefined_lags(table, spec)
    if pooled or spec.missing_target == "drop":
        missing = missing_target(table.y)
        if table.raw_y is not None:  # a transformed target: its first change is no target's
            given = missing_target(table.raw_y)  # absence (one "missing target" a partition)
            changes = missing & ~given
            lags = changes if lags is None else lags | changes
            missing = given
        masks["missing_target"] = missing
    if lags is not None:
        masks["undefined_lags"] = lags
    if pooled:
        if table.y.dtype.kind == "f":
            masks["unusable_target"] = _unusable(table.y) & ~np.isnan(table.y)
        masks["unusable_features"] = unusable_features(table)
    return {reason: m for reason, m in masks.items() if m.any()}


def kept_rows(rows: slice, masks: Mapping[str, np.ndarray]) -> tuple[Rows, dict[str, int]]:
    """A partition's rows to train on (a slice when they are contiguous, the usual case) and
    how many each reason left out."""
    if not masks:
        return rows, {}
    dropped = np.zeros(rows.stop - rows.start, dtype=bool)
    counts: dict[str, int] = {}
    for reason, mask in masks.items():
        new = mask[rows] & ~dropped
        n = int(new.sum())
        if n:
            counts[reason] = n
            dropped |= new
    counts.pop(STRAY, None)  # left out, not counted twice
    if not dropped.any():
        return rows, {}
    keep = np.flatnonzero(~dropped) + rows.start
    if len(keep) and int(keep[-1] - keep[0]) + 1 == len(keep):
        return slice(int(keep[0]), int(keep[-1]) + 1), counts
    return keep, counts
