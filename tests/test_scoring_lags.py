"""Tests for manymodels.scoring.lag_columns: a ``score`` table of new rows that leaves out a
lag spec's target lags and rolling statistics gets them from each partition's recorded
history, as the router does, and scores as the same rows with the columns computed by hand
(pandas ``shift`` on the whole series); rows the history cannot fill are one line, nothing
written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.scoring import score

TRAINED = 40  # days of each partition that training sees; the rest are the "new" rows
LAGS = {"lags": [2, 3], "rolling": [{"lag": 2, "window": 3, "stat": "mean"}]}
DERIVED = ["y_lag2", "y_lag3", "y_roll_mean_lag2_w3"]


def series(partitions: int = 3, days: int = TRAINED + 4) -> pd.DataFrame:
    """Daily rows per partition (ISO dates as text, as a CSV gives them), a feature ``x``
    and a target that follows its own past, so that the lags carry weight."""
    rng = np.random.default_rng(5)
    frames = []
    for p in range(partitions):
        y = np.empty(days)
        y[:3] = 10.0 * (p + 1)
        x = rng.normal(size=days)
        for t in range(3, days):
            y[t] = 0.5 * y[t - 2] + 0.3 * y[t - 3] + 2 * x[t] + 2.0 * (p + 1) + rng.normal()
        days_ = pd.date_range("2024-01-01", periods=days, freq="D").strftime("%Y-%m-%d")
        frames.append(pd.DataFrame({"pid": p, "t": days_, "x": x, "y": y}))
    return pd.concat(frames, ignore_index=True)


def by_hand(df: pd.DataFrame) -> pd.DataFrame:
    """The derived columns with pandas on each whole series: what training computes."""
    y = df.groupby("pid")["y"]
    return df.assign(
        y_lag2=y.shift(2),
        y_lag3=y.shift(3),
        y_roll_mean_lag2_w3=y.transform(lambda s: s.shift(2).rolling(3).mean()),
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lags")
    spec: dict[str, Any] = spec_dict(
        features=["x"],
        validation={"strategy": "last", "size": 5},
        selection={"naive_candidate": False},
        **LAGS,
    )
    data = path / "train.csv"
    whole = series()
    whole[pd.to_datetime(whole["t"]) < pd.Timestamp("2024-01-01") + pd.Timedelta(days=TRAINED)]\
        .to_csv(data, index=False)  # fmt: skip
    with Registry(path / "reg") as reg:
        train(spec, data, reg, backend="local")
    return path / "reg"


def new_rows(days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``days`` rows after training's of each partition, as given (no derived column)
    and with the derived columns computed by hand on the whole series."""
    whole = by_hand(series())
    after = whole[whole.groupby("pid").cumcount().between(TRAINED, TRAINED + days - 1)]
    return after.drop(columns=DERIVED), after


def test_rows_without_lags_score_as_rows_with_lags_by_hand(root: Path) -> None:
    """Two new days without their targets: lags 2 and 3 and the rolling mean of lag 2 all
    reach into the history (no lag is shorter than the step), in any row order."""
    raw, given = new_rows(2)
    raw = raw.drop(columns="y").iloc[::-1]  # no actuals; rows out of order
    scored = score(raw, root, backend="local")
    expected = score(given.drop(columns="y"), root, backend="local")
    assert list(scored.columns[: len(raw.columns)]) == list(raw.columns)  # nothing added
    assert scored["t"].tolist() == raw["t"].tolist()  # the input's order kept
    np.testing.assert_allclose(
        scored.sort_values(["pid", "t"])["prediction"], expected["prediction"], rtol=1e-12
    )


def test_actuals_in_the_table_extend_the_history(root: Path) -> None:
    """Rows that carry the target feed the lags of later rows of their partition, as posted
    actuals do at the router: four days, two further than the history alone reaches."""
    raw, given = new_rows(4)
    scored = score(raw, root, backend="local")
    expected = score(given, root, backend="local")
    np.testing.assert_allclose(scored["prediction"], expected["prediction"], rtol=1e-12)


def test_given_lag_columns_are_read_as_given(root: Path) -> None:
    """A table that carries the lag columns is scored on them, as before: not recomputed."""
    _, given = new_rows(1)
    zeroed = given.assign(**dict.fromkeys(DERIVED, 0.0))
    scored = score(zeroed, root, backend="local")
    with Registry(root) as reg:
        model = reg.load_model("pid=0").model
    features = zeroed.loc[zeroed["pid"] == 0, ["x", *DERIVED]].to_numpy()
    assert scored.loc[scored["pid"] == 0, "prediction"].iloc[0] == pytest.approx(
        model.predict(features)[0], rel=1e-12
    )


def test_cli_scores_a_csv_of_new_rows(root: Path, tmp_path: Path) -> None:
    raw, given = new_rows(2)
    data, out = tmp_path / "new.csv", tmp_path / "scored.csv"
    raw.drop(columns="y").to_csv(data, index=False)
    args = ["score", str(data), "--registry", str(root), "--out", str(out), "--backend", "local"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    expected = score(given.drop(columns="y"), root, backend="local")["prediction"]
    np.testing.assert_allclose(pd.read_csv(out)["prediction"], expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("day", "says"),
    [
        # the history's own last day: not after it
        (TRAINED - 1, r"data row 1 \(counting from 1\): 't' '2024-02-09' is not one of the "
                      r"periods after the model's last time \(2024-02-09"),
        # three days on, no actuals: lag 2 needs day one after the history, never seen
        (TRAINED + 2, r"data row 2 \(counting from 1\): 'y_lag2' of a row 3 period\(s\) after "
                      r"the model's last time .* needs the target of period 1 after it"),
    ],
)  # fmt: skip
def test_rows_the_history_cannot_fill_are_one_line(
    root: Path, tmp_path: Path, day: int, says: str
) -> None:
    whole = series()
    rows = whole[whole.groupby("pid").cumcount().isin([TRAINED, day])].drop(columns="y")
    rows = rows[rows["pid"] == 1]
    with pytest.raises(DataError, match=r"partition 'pid=1' v1: " + says):
        score(rows, root, backend="local")
    data, out = tmp_path / "bad.csv", tmp_path / "scored.csv"
    rows.to_csv(data, index=False)
    args = ["score", str(data), "--registry", str(root), "--out", str(out), "--backend", "local"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {data}: partition 'pid=1' v1: ")
    # future periods without their targets are a forecast's: said only of those
    forecast_hint = "`manymodels forecast --horizon N --future FILE`" in lines[0]
    assert forecast_hint == (day > TRAINED)
    assert not out.exists()


@pytest.fixture(scope="module")
def tolerant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lag spec with a model that takes missing values, which scores a NaN lag."""
    path = tmp_path_factory.mktemp("tolerant")
    hgb = {"estimator": "sklearn.ensemble.HistGradientBoostingRegressor",
           "params": {"max_iter": [20]}}  # fmt: skip
    spec: dict[str, Any] = spec_dict(
        features=["x"],
        validation={"strategy": "last", "size": 5},
        selection={"naive_candidate": False},
        candidates=[hgb],
        **LAGS,
    )
    with Registry(path / "reg") as reg:
        train(spec, series(days=TRAINED), reg, backend="local")
    return path / "reg"


@pytest.mark.parametrize("dated", [False, True])
def test_a_row_without_a_time_is_refused_not_scored_on_nan_lags(
    tolerant: Path, dated: bool
) -> None:
    """A row whose time is empty (a blank CSV cell, a NaT) has nothing to compute its lags
    from: it went through with NaN lags, and a model that takes missing values scored it
    without a word, where the table lacking the columns had been refused. One line names
    its data row and the time column now."""
    raw, _ = new_rows(1)
    rows = raw.drop(columns="y").reset_index(drop=True)
    times = pd.to_datetime(rows["t"]) if dated else rows["t"].astype(object)
    rows["t"] = times.where(rows.index != 1)  # pid=1's row
    says = r"partition 'pid=1' v1: data row 2 \(counting from 1\): 't' has no value, and its "
    with pytest.raises(DataError, match=says + r"'y_lag2', 'y_lag3', 'y_roll_mean_lag2_w3' are"):
        score(rows, tolerant, backend="local")
    assert score(rows.drop(index=1), tolerant, backend="local")["prediction"].notna().all()


def test_the_fallbacks_rows_are_refused_naming_the_columns(tmp_path: Path) -> None:
    """The fallback has no series of its own: a new key's row must give its lags."""
    spec = spec_dict(
        features=["x"],
        validation={"strategy": "last", "size": 5},
        fallback={"enabled": True},
        **LAGS,
    )
    with Registry(tmp_path / "reg") as reg:
        train(spec, series(days=TRAINED), reg, backend="local")
    rows = series(partitions=4, days=TRAINED + 1)
    rows = rows[rows.groupby("pid").cumcount() == TRAINED].drop(columns="y")
    with pytest.raises(DataError, match=r"data row 4 \(counting.*the fallback \(v1\).*'y_lag2'"):
        score(rows, tmp_path / "reg", backend="local")
    scored = score(rows[rows["pid"] < 3], tmp_path / "reg", backend="local")
    assert not scored["fallback"].any() and scored["prediction"].notna().all()


def test_empty_lag_cells_are_filled_from_the_history_and_given_ones_kept(
    root: Path, tmp_path: Path
) -> None:
    """A CSV with the lag columns whose cells are blank where the user did not know them:
    they were scored as NaN (a model that takes missing values answered without a word, this
    Ridge refused "Input X contains NaN"). An empty cell is now what a request row leaving
    the feature out is to the router: computed from the history; the given cells are read as
    given (zeros here)."""
    _, given = new_rows(2)
    partial = given.drop(columns="y").reset_index(drop=True)
    partial.loc[[0, 3], DERIVED] = np.nan  # pid=0's first day, pid=1's second: computed
    partial.loc[[1, 2, 4, 5], "y_lag3"] = 0.0  # given: kept
    expected = score(partial.fillna(given.reset_index(drop=True)), root, backend="local")
    data, out = tmp_path / "partial.csv", tmp_path / "scored.csv"
    partial.to_csv(data, index=False)
    args = ["score", str(data), "--registry", str(root), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--backend", "local"])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out)
    assert scored[DERIVED].isna().sum().sum() == 6  # the input's own columns, as read
    np.testing.assert_allclose(scored["prediction"], expected["prediction"], rtol=1e-12)
    assert score(partial, root, backend="local")["prediction"].tolist() == pytest.approx(
        expected["prediction"].tolist(), rel=1e-12
    )


def test_an_empty_lag_cell_the_history_cannot_fill_is_one_line(root: Path) -> None:
    """Ridge refused a blank 'y_lag2' as "Input X contains NaN"; a cell the history cannot
    reach (lag 2 of the third day needs day one's target) names partition, row and column,
    as does one in a table without the time column."""
    _, given = new_rows(3)
    rows = given.drop(columns="y").reset_index(drop=True)
    rows = rows[rows["pid"] == 2].reset_index(drop=True)
    rows.loc[2, "y_lag2"] = np.nan
    says = r"partition 'pid=2' v1: data row 3 \(counting from 1\): 'y_lag2' of a row 3 period"
    with pytest.raises(DataError, match=says):
        score(rows, root, backend="local")
    says = r"partition 'pid=2' v1: data row 3 \(counting from 1\): 'y_lag2' has no value, and "
    with pytest.raises(DataError, match=says + r"the table has no 't' column"):
        score(rows.drop(columns="t"), root, backend="local")
