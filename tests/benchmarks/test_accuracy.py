"""``benchmarks/accuracy.py --variants one-spec``: the one spec's rows alone, as the full run
has them (its peers are still run; they need the bench extra, so only the rows are checked)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def accuracy() -> Any:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import accuracy as module
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_one_spec_variants_are_the_full_runs_last_rows(accuracy: Any) -> None:
    every = accuracy.mm_variants("all")
    mine = accuracy.mm_variants("one-spec")
    assert len(every) == 17
    assert mine == every[-5:]
    one_spec = mine[0]
    assert one_spec["local_boosting"] is False and one_spec["naive_candidate"] is False
    assert one_spec["changes"] and one_spec["pool_partitions"] and one_spec["mae_losses"]
    assert one_spec["target_transform"] == ["none", "difference"]
    assert one_spec["stepped"] is True  # folds a step apart where a series is short
    # the other four each change one thing of it: the global fits, the bands, or the folds
    changed = [{k for k in {*v, *one_spec} if v.get(k) != one_spec.get(k)} for v in mine[1:]]
    assert changed == [
        {"global_refit"},
        {"global_refit", "global_refit_last"},
        {"pool_partitions"},
        {"stepped"},
    ]


def test_an_unknown_variants_word_is_refused(
    accuracy: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        accuracy.main(["--variants", "some"])
    assert stopped.value.code == 2
    assert "--variants: invalid choice: 'some'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("periods", "season", "h", "stepped", "disjoint"),
    [
        (30, 1, 5, (5, 1), 2),  # Cigar: 15 usable years, 5 folds a year apart, not 2 disjoint
        (365, 7, 14, (5, 14), 5),  # flights, pizzaplace: room for 5 disjoint folds
        (129, 12, 12, (5, 12), 5),  # us_employment
    ],
)
def test_stepped_folds_change_only_series_too_short_for_5_disjoint_folds(
    accuracy: Any, periods: int, season: int, h: int, stepped: tuple[int, int], disjoint: int
) -> None:
    import pandas as pd

    frame = pd.DataFrame({"unique_id": ["a"] * periods, "ds": range(periods), "y": 0.0})
    panel = accuracy.Panel("p", "test", frame, ["unique_id"], 1, season, h)
    assert accuracy.mm_stepped_folds(panel, periods) == stepped
    assert accuracy.mm_folds(panel, periods) == disjoint
