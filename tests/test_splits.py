"""Validation folds (``manymodels.training.splits``): folds whose origins step by
``[validation] step_size`` periods, as statsforecast's and mlforecast's
``cross_validation(step_size=…)``."""

from __future__ import annotations

import numpy as np
import pytest
from factories import spec_dict

from manymodels.spec import Spec
from manymodels.training.splits import PartitionSkipped, SplitsByCount, validation_splits


def _spec(**validation: object) -> Spec:
    return Spec.from_dict(spec_dict(validation={"strategy": "kfold", **validation}))


def test_folds_a_step_apart_each_forecast_size_rows_from_their_own_origin() -> None:
    """Cigar's case: 15 usable years, folds of 5: 2 disjoint folds fit, 5 one year apart do,
    each trained on every row before its origin."""
    splits = validation_splits(15, _spec(size=5, folds=5, step_size=1), key="a")
    assert [(tr.tolist(), va.tolist()) for tr, va in splits] == [
        (list(range(o)), list(range(o, o + 5))) for o in (6, 7, 8, 9, 10)
    ]
    wide = validation_splits(20, _spec(size=3, folds=3, step_size=5), key="a")
    assert [va.tolist() for _, va in wide] == [[7, 8, 9], [12, 13, 14], [17, 18, 19]]


def test_a_step_of_the_folds_size_gives_todays_disjoint_folds() -> None:
    stepped = validation_splits(30, _spec(size=5, folds=4, step_size=5), key="a")
    disjoint = validation_splits(30, _spec(size=5, folds=4), key="a")
    assert len(stepped) == len(disjoint) == 4
    for (tr, va), (tr0, va0) in zip(stepped, disjoint, strict=True):
        np.testing.assert_array_equal(tr, tr0)
        np.testing.assert_array_equal(va, va0)


def test_too_few_rows_before_the_first_origin_skip_the_partition() -> None:
    spec = _spec(size=5, folds=5, step_size=1)
    assert len(validation_splits(11, spec, key="a")) == 5  # 2 rows before the first fold
    with pytest.raises(PartitionSkipped, match="10 rows leave fewer than 2 to train"):
        validation_splits(10, spec, key="a")
    with pytest.raises(PartitionSkipped):  # the same, from the splits a chunk shares
        SplitsByCount(spec)(10, key="b")


def test_the_skip_of_too_short_a_series_reads_as_a_sentence() -> None:
    """The reason a run records for the partition (``runs show``) ran the fold size and the
    step together: "… before 5 folds of 5 1 row(s) apart"."""
    with pytest.raises(PartitionSkipped) as caught:
        validation_splits(10, _spec(size=5, folds=5, step_size=1), key="a")
    assert str(caught.value) == (
        "10 rows leave fewer than 2 to train before 5 folds of 5 whose origins are 1 row(s) apart"
    )
