"""Which rows of a partition validate its candidates: last rows, a seeded holdout, or k folds."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, TimeSeriesSplit

from manymodels.spec import Spec

Split = tuple[Any, Any]  # (train rows, validation rows): slices or index arrays


class PartitionSkipped(Exception):
    """The partition is fine but not trainable under the spec (too few rows): not a failure."""


def validation_splits(
    n: int, spec: Spec, *, key: str, time_ordered: bool | None = None
) -> list[Split]:
    """The (train, validation) row sets for a partition of ``n`` rows sorted by time if any.

    The shuffle is seeded from the spec seed *and* the key, so a partition gets the same split
    whichever chunk or worker trains it.
    """
    strategy = spec.validation_strategy
    ordered = spec.time_column is not None if time_ordered is None else time_ordered
    size = spec.validation.size
    rng_seed = [spec.seed, zlib.crc32(key.encode())]
    if strategy == "kfold":
        folds = spec.validation.folds
        if n < folds + 1:
            raise PartitionSkipped(f"{n} rows is too few for {folds}-fold validation")
        if ordered:  # a row-count size sizes each expanding fold (e.g. the horizon)
            test_size = int(size) if size >= 1 else None
            step = spec.validation.step_size
            if test_size is not None and step is not None:
                return stepped_folds(n, folds, test_size, step)
            if test_size is not None and n - folds * test_size < 2:
                raise PartitionSkipped(
                    f"{n} rows leave fewer than 2 to train before {folds} folds of {test_size}"
                )
            return list(TimeSeriesSplit(n_splits=folds, test_size=test_size).split(np.empty(n)))
        seed = int(np.random.default_rng(rng_seed).integers(2**31))
        return list(KFold(folds, shuffle=True, random_state=seed).split(np.empty(n)))
    k = int(size) if size >= 1 else max(1, round(n * size))
    if n - k < 2:
        raise PartitionSkipped(f"{n} rows leave fewer than 2 to train after {k} validation row(s)")
    if strategy == "last" and ordered:
        return [(slice(0, n - k), slice(n - k, n))]
    perm = np.random.default_rng(rng_seed).permutation(n)
    return [(np.sort(perm[k:]), np.sort(perm[:k]))]


def stepped_folds(n: int, folds: int, size: int, step: int) -> list[Split]:
    """``folds`` expanding folds of ``size`` rows whose origins are ``step`` rows apart, the
    last fold ending at the last row (``[validation] step_size``; statsforecast's and
    mlforecast's ``cross_validation(step_size=…)``): fold ``f`` trains on every row before
    its origin. With ``step = size`` these are ``TimeSeriesSplit``'s folds."""
    first = n - size - (folds - 1) * step  # the first fold's origin: its training rows
    if first < 2:
        raise PartitionSkipped(
            f"{n} rows leave fewer than 2 to train before {folds} folds of {size} "
            f"whose origins are {step} row(s) apart"
        )
    origins = [first + f * step for f in range(folds)]
    return [(np.arange(o), np.arange(o, o + size)) for o in origins]  # as TimeSeriesSplit's


class SplitsByCount:
    """``validation_splits`` for the partitions of one chunk or task, each row count's
    time-ordered splits computed once.

    Last-k rows and expanding folds over rows sorted by time depend on the row count alone;
    only a shuffled split (a holdout, or k folds without a time column) is seeded by the
    partition's key, and is computed for each partition. Why: scikit-learn's
    ``TimeSeriesSplit`` costs ~0.1 ms a partition, as much as a small Ridge fit. The cache
    lives as long as its chunk: its arrays total at most the chunk's rows × folds. The
    arrays are shared between partitions, so they are made read-only.
    """

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._known: dict[int, list[Split] | str] = {}  # the splits, or why skipped

    def __call__(self, n: int, *, key: str, time_ordered: bool | None = None) -> list[Split]:
        spec = self.spec
        ordered = spec.time_column is not None if time_ordered is None else time_ordered
        if not ordered or spec.validation_strategy not in ("last", "kfold"):
            return validation_splits(n, spec, key=key, time_ordered=time_ordered)
        known = self._known.get(n)
        if known is None:
            try:
                known = validation_splits(n, spec, key=key, time_ordered=True)
            except PartitionSkipped as e:
                known = str(e)
            else:
                for split in known:
                    for rows in split:
                        if isinstance(rows, np.ndarray):
                            rows.flags.writeable = False
            self._known[n] = known
        if isinstance(known, str):
            raise PartitionSkipped(known)
        return list(known)


Frames = Callable[[Any], Any]
"""The frame of a partition's rows (``take(X, rows)``), given the rows: ``Folds.rows`` hands
out the same object for the same validation rows, whose transform a fold's shared
``ColumnTransformer`` then does once for every fit (``shared_columns.Remembered``)."""


def frames_of(X: Any, frames: Frames | None) -> Frames:
    """``frames``, or ``take`` of ``X`` when none is given (a new frame each time)."""
    return frames if frames is not None else partial(take, X)


def take(X: Any, rows: Any) -> Any:
    if isinstance(X, pd.DataFrame):
        return X.iloc[rows]
    return X[rows]


def count_rows(rows: Any, n: int) -> int:
    """How many rows a slice or an index array selects out of ``n``."""
    if isinstance(rows, slice):
        return len(range(*rows.indices(n)))
    return len(rows)
