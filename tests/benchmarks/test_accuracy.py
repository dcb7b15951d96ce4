"""``benchmarks/accuracy.py --variants one-spec``: the one spec's rows alone, as the full run
has them (its peers are still run; they need the bench extra, so only the rows are checked),
and the table ``report`` prints from given forecasts (pandas only, no bench extra)."""

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


def _forecasts(accuracy: Any, method: str, yhat: list[float], seconds: float = 1.0) -> Any:
    """One method's forecast of the one held-out period (ds 3) of series a, b, c, d."""
    import pandas as pd

    frame = pd.DataFrame({"unique_id": list("abcd"), "ds": 3, "yhat": yhat})
    return accuracy.Result(method, frame, seconds)


def test_the_table_counts_ties_with_naive_and_the_verdicts_read_the_share_goal_both_ways(
    accuracy: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whole-number actuals: every series ends its training on 4 and sees 5, so naive errs by
    1 everywhere. The one spec forecasts 4 on series a (a tie: its MAE *is* naive's) and 5
    elsewhere; the lowest-MAE peer (LightGBM, median MAE 0.25) beats naive on 3 series, AutoARIMA
    (0.5 everywhere) on all 4 — so the share goal is met against one peer and missed against
    the other, and the lines must say which is which."""
    import pandas as pd

    frame = pd.DataFrame(
        {"unique_id": [s for s in "abcd" for _ in range(4)], "ds": [0, 1, 2, 3] * 4}
    ).assign(y=lambda d: (d["ds"] == 3).astype(float) + 4.0)
    panel = accuracy.Panel("whole", "test", frame, ["unique_id"], 1, 1, 1)
    _, test = panel.split()
    results = [
        _forecasts(accuracy, "naive", [4, 4, 4, 4]),
        _forecasts(accuracy, "AutoARIMA", [4.5, 4.5, 4.5, 4.5]),
        _forecasts(accuracy, "LightGBM (mlforecast)", [5.25, 5.25, 5.25, 1]),
        _forecasts(accuracy, accuracy.ONE_SPEC, [4, 5, 5, 5]),
    ]
    accuracy.report(panel, results, test)
    out = capsys.readouterr().out.splitlines()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out if line[:2] == "| "]
    headers, body = rows[0], {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert headers[-1] == "vs naive: beats / ties / loses"  # added last: no column moves
    counts = {m: tuple(int(n) for n in r[headers[-1]].split(" / ")) for m, r in body.items()}
    assert counts == {
        "naive": (0, 4, 0),
        "AutoARIMA": (4, 0, 0),
        "LightGBM (mlforecast)": (3, 0, 1),
        accuracy.ONE_SPEC: (3, 1, 0),
    }
    assert all(sum(c) == panel.n_series for c in counts.values())
    # "beats naive" keeps its meaning: strictly below naive's MAE, a tie is not a win
    assert body[accuracy.ONE_SPEC]["beats naive"] == "75% (3)"
    assert body["naive"]["beats naive"] == "0% (0)"
    ours = f"{accuracy.ONE_SPEC} 3 of 4 (ties 1, loses 0)"
    verdicts = [line for line in out if line.startswith("- beats naive ≥")]
    assert verdicts == [
        "- beats naive ≥ the lowest-MAE peer's (LightGBM (mlforecast), median MAE 0.25: 3 of 4): "
        f"{ours} — MET",
        f"- beats naive ≥ the most of any peer (AutoARIMA: 4 of 4): {ours} — MISSED",
    ]
