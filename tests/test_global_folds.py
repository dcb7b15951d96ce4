"""``global_folds.fold_rows``: the fold plan every global task computes, a row count at a time
where splits depend on the count alone, must be the partition-by-partition plan to the row."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from manymodels.partition import PartitionedTable, split
from manymodels.spec import Spec
from manymodels.training.global_folds import fold_rows
from manymodels.training.rows import drop_masks, kept_rows
from manymodels.training.splits import PartitionSkipped, validation_splits
from tests.test_global_candidates import spec as global_spec


def ragged_panel(seed: int) -> pd.DataFrame:
    """Shops of many lengths (some too short to validate, one of a single row), targets
    missing at random, so that kept rows are gaps in some partitions and ranges in others."""
    rng = np.random.default_rng(seed)
    sizes = rng.choice([1, 3, 5, 9, 12, 12, 17, 17, 30], size=40)
    frames = []
    for k, n in enumerate(sizes):
        y = rng.normal(size=n)
        y[rng.random(n) < 0.15] = np.nan
        frames.append(
            pd.DataFrame(
                {"shop": f"s{k:02d}", "day": np.arange(n), "x": rng.normal(size=n), "y": y}
            )
        )
    return pd.concat(frames, ignore_index=True)


def partition_by_partition(
    table: PartitionedTable, spec: Spec
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The plan as each partition's chunk sees it: its kept rows, its own splits."""
    masks = drop_masks(table, spec)
    usable = np.ones(table.n_rows, dtype=bool)
    for m in [*drop_masks(table, spec, pooled=True).values(), *masks.values()]:
        usable &= ~m
    always: list[np.ndarray] = []
    folds: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
    for i, key in enumerate(table.keys):
        kept, _ = kept_rows(table.rows(i), masks)
        idx = np.arange(kept.start, kept.stop) if isinstance(kept, slice) else kept
        try:
            if len(idx) < spec.min_rows:
                raise PartitionSkipped(key)
            splits = validation_splits(len(idx), spec, key=key)
        except PartitionSkipped:
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
        out.append((train[usable[train]], np.concatenate(va)))
    return np.flatnonzero(usable), out


@pytest.mark.parametrize(
    "validation",
    [
        {"strategy": "kfold", "size": 2, "folds": 3},
        {"strategy": "kfold", "size": 3, "folds": 4, "step_size": 1},  # overlapping folds
        {"strategy": "kfold", "folds": 3},  # TimeSeriesSplit's own sizes
        {"strategy": "last", "size": 2},
        {"strategy": "holdout", "size": 0.3},  # seeded per key: partition by partition
    ],
)
@pytest.mark.parametrize("lags", [None, [1, 2]])
def test_fold_rows_are_the_partition_by_partition_plan(
    validation: dict[str, Any], lags: list[int] | None
) -> None:
    for seed in range(3):
        spec = Spec.from_dict(
            global_spec(min_rows=4, validation=validation, **({"lags": lags} if lags else {}))
        )
        df = ragged_panel(seed)
        if lags:  # the lag columns as training computes them: undefined at each start
            df = df.assign(**{f"y_lag{k}": df.groupby("shop")["y"].shift(k) for k in lags})
        features = ["x", *(f"y_lag{k}" for k in lags or [])]
        table = split(df, partition_by=["shop"], target="y", features=features, time_column="day")
        everything, folds = fold_rows(table, spec)
        want_everything, want = partition_by_partition(table, spec)
        np.testing.assert_array_equal(everything, want_everything)
        assert len(folds) == len(want) > 0
        for (train, valid), (want_train, want_valid) in zip(folds, want, strict=True):
            assert train.dtype == want_train.dtype and valid.dtype == want_valid.dtype
            np.testing.assert_array_equal(train, want_train)
            np.testing.assert_array_equal(valid, want_valid)
