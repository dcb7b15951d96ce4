"""manymodels.classes: the table's class prior, from its rows in memory or counted batch by
batch (``ClassTally``, what a Parquet directory's check pass does) — the same prior."""

from __future__ import annotations

import numpy as np
import pytest

from manymodels.classes import ClassTally, class_prior


@pytest.mark.parametrize("kind", ["int", "text", "float with missing"])
def test_a_tally_of_batches_gives_the_prior_of_the_rows_in_memory(kind: str) -> None:
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 40, size=30)  # some partitions of one row: left out of the strength
    rates = rng.beta(1, 3, size=30)  # partitions that differ: a strength well inside its bounds
    y_int = np.concatenate([rng.random(n) < r for n, r in zip(sizes, rates, strict=True)])
    y_int = y_int.astype(np.int64) + (rng.random(len(y_int)) < 0.05)  # a rare third class
    y: np.ndarray = y_int
    if kind == "text":
        y = np.array(["no", "yes", "maybe"], dtype=object)[y_int]
    elif kind == "float with missing":
        y = y_int.astype(np.float64)
        y[rng.random(len(y)) < 0.1] = np.nan
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    want = class_prior(y, offsets)

    partition = np.repeat(np.arange(len(sizes)), sizes)
    order = rng.permutation(len(y))  # rows arrive in any order, in batches of any size
    tally = ClassTally(len(sizes) + 2)  # two more partitions that kept no rows
    for batch in np.array_split(order, 7):
        tally.add(y[batch], partition[batch])
    got = tally.prior(np.arange(len(sizes)))

    assert got.classes.tolist() == want.classes.tolist() and got.classes.dtype == want.classes.dtype
    np.testing.assert_allclose(got.rates, want.rates, rtol=1e-12)
    assert want.strength is not None and 0 < want.strength < 1000
    assert got.strength == pytest.approx(want.strength, rel=1e-9)
    assert want.strengths is not None and got.strengths is not None  # three classes: per class
    np.testing.assert_allclose(got.strengths, want.strengths, rtol=1e-9)


def test_a_tally_of_one_class_has_no_strength_and_of_nothing_no_classes() -> None:
    tally = ClassTally(3)
    tally.add(np.array([1, 1, 1]), np.array([0, 1, 2]))
    one = tally.prior(np.arange(3))
    assert one.classes.tolist() == [1] and one.rates.tolist() == [1.0] and one.strength is None
    empty = ClassTally(2).prior(np.arange(2))
    assert len(empty.classes) == 0
