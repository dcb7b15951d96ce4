"""Infinite cells in a table to train or score (a Parquet file's or a DataFrame's ``inf``, a
CSV's ``inf`` cell), and a number past float64 beside a stray word with ``bad_rows =
"drop"``: each named by its column and row, not by scikit-learn's "Input X contains
infinity or a value too large", which named neither."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict
from typer.testing import CliRunner

import manymodels as mm
from manymodels.cli import app
from manymodels.exceptions import DataError
from manymodels.registry import Registry

runner = CliRunner()


def cli(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inf") / "reg"
    mm.train(spec_dict(), linear_frame(3, 30), registry=root, backend="local")
    return root


def _with_inf(value: float = np.inf) -> pd.DataFrame:
    df = linear_frame(3, 30)
    df.loc[34, "x1"] = value  # pid=1, its 5th row: the table's 35th
    return df


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_scoring_a_frame_with_an_infinity_names_its_column_and_row(
    registry: Path, value: float
) -> None:
    with pytest.raises(DataError) as info:
        mm.score(_with_inf(value), registry=registry)
    assert str(info.value) == (
        f"<DataFrame>: feature 'x1' is {value} in data row 35 (counting from 1): give a "
        "finite number, or leave the cell empty"
    )


@pytest.mark.parametrize("name", ["rows.parquet", "rows.csv"])
def test_score_of_a_file_with_an_infinity_is_one_error_line(
    registry: Path, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    df = _with_inf()
    df.to_parquet(path) if name.endswith(".parquet") else df.to_csv(path, index=False)
    out = tmp_path / "scored.csv"
    res = cli("score", path, "--registry", registry, "-o", out)
    assert res.exit_code != 0
    assert res.output.strip().splitlines() == [
        f"error: {path}: feature 'x1' is inf in data row 35 (counting from 1): give a finite "
        "number, or leave the cell empty"
    ]
    assert not out.exists()


def test_a_partition_with_an_infinite_feature_fails_naming_it(tmp_path: Path) -> None:
    """Its partition alone fails, as the poison matrix has it; the reason now names the
    column, how many of its rows, and the first."""
    summary = mm.train(spec_dict(), _with_inf(), registry=tmp_path / "reg", backend="local")
    assert summary.run.n_failed == 1 and summary.run.n_trained == 2
    with Registry.open(tmp_path / "reg") as reg:
        (failure,) = reg.store.run_outcomes(summary.run.run_id, status="failed", limit=10)
    assert failure.key == "pid=1"
    assert (
        "(infinite values in feature 'x1': 1 of 30 rows, the first at row 5 of the partition)"
        in failure.message
    ), failure.message


def test_a_partition_with_an_infinite_target_fails_naming_it(tmp_path: Path) -> None:
    df = linear_frame(3, 30)
    df.loc[61, "y"] = -np.inf  # pid=2, its 2nd row
    summary = mm.train(spec_dict(), df, registry=tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        (failure,) = reg.store.run_outcomes(summary.run.run_id, status="failed", limit=10)
    assert failure.key == "pid=2"
    assert "(infinite values in the target: 1 of 30 rows, the first at row 2" in failure.message


def test_a_huge_number_beside_a_stray_word_is_named_with_bad_rows_drop(tmp_path: Path) -> None:
    """pandas reads the column as text (the stray word), and ``pd.to_numeric`` made the
    400-digit number ``inf``: its partition failed with scikit-learn's words. Now the file
    is refused naming it, as it is without the stray word (``csv_rows``); the stray word's
    row is still dropped, and an ``inf`` cell beside it is still an infinity."""
    big = "1" + "0" * 400
    df = linear_frame(3, 30).astype({"x1": object})
    df.loc[7, "x1"] = "abc"
    df.loc[40, "x1"] = big
    data = tmp_path / "rows.csv"
    df.to_csv(data, index=False)
    spec = spec_dict(bad_rows="drop")
    with pytest.raises(DataError) as info:
        mm.train(spec, data, registry=tmp_path / "reg", backend="local")
    assert str(info.value) == (
        f"{data}: feature 'x1' is too large a number ({big[:37]}...) in data row 41 "
        "(counting from 1): it does not fit a float"
    )
    assert not (tmp_path / "reg").exists() or not list((tmp_path / "reg").rglob("*.db"))
    df.loc[40, "x1"] = "-inf"
    df.to_csv(data, index=False)
    summary = mm.train(spec, data, registry=tmp_path / "reg", backend="local")
    assert summary.run.n_failed == 1 and summary.run.n_trained == 2
    assert summary.run.options["bad_rows_dropped"] == {"x1": 1}


def test_a_future_table_with_an_infinity_names_its_column_and_row(registry: Path) -> None:
    """forecast's exogenous features of future periods, as score's rows."""
    future = pd.DataFrame({"pid": [0, 0], "t": [30, 31], "x0": [1.0, 2.0], "x1": [0.5, -np.inf]})
    with pytest.raises(DataError) as info:
        mm.forecast(registry, ["pid=0"], horizon=2, future=future)
    assert str(info.value).endswith(
        "feature 'x1' is -inf in data row 2 (counting from 1): give a finite number, or leave "
        "the cell empty"
    ), info.value


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(y=(df["x0"] > 0).astype(int))


@pytest.mark.parametrize("given", ["csv", "frame of floats", "frame of objects"])
def test_an_infinite_label_is_named_by_its_row(tmp_path: Path, given: str) -> None:
    """Before: an ``inf`` among a classifier's labels became a class ``inf``, and the run was
    refused blaming the metric: "metric 'accuracy' cannot score this table's labels (3
    classes: 0.0, 1.0, inf): Input y contains infinity …; use a classification metric such as
    'accuracy' …" (and a ``RuntimeWarning`` from the check for fractions). Now the cell."""
    spec = spec_dict(task="classification", metric="accuracy")
    spec["candidates"] = [{"estimator": "sklearn.linear_model.LogisticRegression"}]
    df = _labelled(linear_frame(3, 30))
    if given == "frame of objects":  # JSON rows: ints, and one float
        cells = [-np.inf if i == 34 else int(v) for i, v in enumerate(df["y"])]
        df["y"] = pd.Series(cells, dtype=object)
    else:
        df["y"] = df["y"].astype(float)
        df.loc[34, "y"] = -np.inf
    said = "target 'y' is -inf in data row 35 (counting from 1), not a class label"
    if given == "csv":
        data = tmp_path / "rows.csv"
        df.to_csv(data, index=False)
        (tmp_path / "spec.toml").write_text(
            'name = "t"\ntask = "classification"\npartition_by = ["pid"]\ntarget = "y"\n'
            'time_column = "t"\nmetric = "accuracy"\n[[candidates]]\n'
            'estimator = "sklearn.linear_model.LogisticRegression"\n'
        )
        result = cli("train", tmp_path / "spec.toml", data, "--registry", tmp_path / "reg")
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"error: {data}: {said}"), result.output
        assert result.output.count("\n") == 1, result.output
        return
    assert df["y"].dtype == (object if given == "frame of objects" else np.float64)
    with pytest.raises(DataError, match=f"^<DataFrame>: {re.escape(said)}"):
        mm.train(spec, df, registry=tmp_path / "reg", backend="local")
