"""What the CLI writes for people and pipes: a scored CSV's true/false columns as the input
spelled them, ``-o -`` as standard output (or one line saying it is not), and ``models show``'s
parameters to the digits its other numbers are shown with."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import labels_spec
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.pipeline import train
from manymodels.scoring.spellings import as_spelled

runner = CliRunner()


def invoke(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result: Any, *expected: str) -> None:
    assert result.exit_code != 0 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    for text in expected:
        assert text in line, line


@pytest.fixture(scope="module")
def sales(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The store_sales sample trained by the CLI, and four of its rows to score with text
    columns of booleans beside them (one holding a missing value)."""
    root = tmp_path_factory.mktemp("outputs")
    registry = root / "registry"
    result = invoke(
        "train", samples_dir / "store_sales.toml", samples_dir / "store_sales.csv",
        "--registry", registry, "--backend", "local",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(samples_dir / "store_sales.csv").drop(columns="units").head(4)
    data = root / "rows.csv"
    rows.to_csv(data, index=False)
    text = data.read_text().splitlines()
    cells = [("flag", "promo", "price_text"), ("true", "TRUE", "1.50"), ("false", "", "2.00"),
             ("TRUE", "FALSE", "3"), ("False", "True", "4.10")]  # fmt: skip
    data.write_text("\n".join(f"{a},{','.join(b)}" for a, b in zip(text, cells, strict=True)))
    return {"registry": registry, "data": data}


def test_a_scored_csv_spells_true_and_false_as_its_input_did(
    sales: dict[str, Path], tmp_path: Path
) -> None:
    """pandas reads ``true``/``false`` as booleans and wrote them back ``True``/``False``:
    the scores file changed the user's own columns. Each cell is now written as given;
    numbers stay pandas' (``1.50`` read and written as ``1.5`` where a column is numbers)."""
    out = tmp_path / "scores.csv"
    result = invoke("score", sales["data"], "-o", out, "--registry", sales["registry"],
                    "--backend", "local")  # fmt: skip
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert scored["flag"].tolist() == ["true", "false", "TRUE", "False"]
    assert scored["promo"].tolist() == ["TRUE", "", "FALSE", "True"]
    assert scored["price_text"].tolist() == ["1.5", "2.0", "3.0", "4.1"]
    assert scored["prediction"].astype(float).notna().all()
    # read back by pandas, the columns are what the input's were: booleans, where it said so
    given, back = pd.read_csv(sales["data"]), pd.read_csv(out)
    pd.testing.assert_series_equal(back["flag"], given["flag"])
    # Parquet keeps booleans typed: its column is a bool column, not text
    parquet = tmp_path / "scores.parquet"
    result = invoke("score", sales["data"], "-o", parquet, "--registry", sales["registry"],
                    "--backend", "local")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(parquet)["flag"].dtype == bool


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A classifier per shop of a ``true``/``false`` target, with a fallback, trained from a
    CSV spelling it so; rows to score: two shops' and one new shop's (the fallback's)."""
    root = tmp_path_factory.mktemp("churn")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    df = pd.DataFrame({"shop": np.repeat(["s0", "s1"], 60), "x0": x[:, 0], "x1": x[:, 1],
                       "churned": np.where(x[:, 0] > 0, "true", "false")})  # fmt: skip
    df.to_csv(root / "train.csv", index=False)
    spec = labels_spec("churn", "shop", "churned", ["x0", "x1"], fallback={"enabled": True})
    train(spec, root / "train.csv", root / "registry", backend="local")
    rows = df.iloc[[0, 1, 60]].assign(shop=["s0", "s1", "new"])
    rows.to_csv(root / "rows.csv", index=False)
    return {"registry": root / "registry", "data": root / "rows.csv"}


def test_scored_booleans_are_spelled_as_the_input_s(churn: dict[str, Path], tmp_path: Path) -> None:
    """``fallback``, and a true/false target's ``prediction`` and ``decision_label``, were
    ``True``/``False`` beside the input's ``true``: they are written in its spelling, or
    pandas' when the input mixes spellings."""
    out, local = tmp_path / "scores.csv", ("--registry", churn["registry"], "--backend", "local")
    result = invoke("score", churn["data"], "-o", out, "--threshold", "0.5", *local)
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out, dtype=str)
    assert scored["fallback"].tolist() == ["false", "false", "true"]
    for column in ("churned", "prediction", "decision_label"):
        assert set(scored[column]) <= {"true", "false"}, scored[column].tolist()
    upper = tmp_path / "upper.csv"
    upper.write_text(churn["data"].read_text().replace("true", "TRUE").replace("false", "FALSE"))
    assert invoke("score", upper, "-o", out, *local).exit_code == 0
    assert pd.read_csv(out, dtype=str)["fallback"].tolist() == ["FALSE", "FALSE", "TRUE"]
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(churn["data"].read_text().replace("true", "TRUE", 1))
    assert invoke("score", mixed, "-o", out, *local).exit_code == 0
    assert pd.read_csv(out, dtype=str)["fallback"].tolist() == ["False", "False", "True"]


def test_a_missing_boolean_we_add_stays_empty(tmp_path: Path) -> None:
    """An unscored row's boolean prediction is missing: an empty cell, not a spelling."""
    csv = tmp_path / "given.csv"
    csv.write_text("flag\ntrue\nfalse\n")
    frame = pd.DataFrame({"flag": [True, False],
                          "prediction": pd.array([True, None], dtype="boolean")})  # fmt: skip
    assert as_spelled(frame, csv).to_csv(index=False) == "flag,prediction\ntrue,true\nfalse,\n"


def test_score_to_dash_writes_the_csv_to_standard_output(sales: dict[str, Path]) -> None:
    """``-o -`` was "-: unknown output format": it is the CSV on standard output, the summary
    line on standard error, the same table a file gets."""
    result = invoke("score", sales["data"], "-o", "-", "--registry", sales["registry"],
                    "--backend", "local")  # fmt: skip
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(io.StringIO(result.stdout), dtype=str, keep_default_na=False)
    assert len(scored) == 4 and scored["flag"].tolist() == ["true", "false", "TRUE", "False"]
    assert "→ standard output" in result.stderr and "scored 4 rows" in result.stderr
    one_error_line(
        invoke("score", sales["data"], "-o", "-", "--json", "--registry", sales["registry"]),
        "-o - writes the scores to standard output",
    )


def test_forecast_to_dash_writes_the_csv_to_standard_output(sales: dict[str, Path]) -> None:
    """As ``score``'s: the forecast as CSV, its notes and summary on standard error."""
    key = "store=1,brand=dominicks"
    result = invoke("forecast", "--horizon", "3", "-o", "-", "--partitions", key,
                    "--registry", sales["registry"])  # fmt: skip
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert list(frame.columns[:4]) == ["store", "brand", "week", "prediction"]
    assert len(frame) == 3 and frame["prediction"].notna().all()
    assert "forecast 3 period(s) of 1 partition(s) → standard output" in result.stderr
    one_error_line(
        invoke("forecast", "--horizon", "3", "-o", "-", "--json", "--registry", sales["registry"]),
        "-o - writes the forecast to standard output",
    )


def test_export_commands_refuse_dash_instead_of_writing_a_file_named_so(
    sales: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``export-registry -`` wrote a tar file named ``-`` in the current directory."""
    monkeypatch.chdir(tmp_path)
    one_error_line(
        invoke("export-registry", "-", "--registry", sales["registry"]),
        "export-registry writes a tar file",
        "not standard output",
    )
    one_error_line(
        invoke("export", "store=1,brand=dominicks", "-", "--format", "mlflow",
               "--registry", sales["registry"]),
        "export writes an MLflow model directory", "not standard output",
    )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_help_says_what_dash_means() -> None:
    for command, said in (("score", "'-' writes CSV to standard output"),
                          ("forecast", "'-' writes CSV to standard output"),
                          ("export-registry", "Not '-'")):  # fmt: skip
        result = invoke(command, "--help")
        assert said in " ".join(result.stdout.split()), command


def test_models_show_prints_parameters_to_four_digits_and_json_in_full(tmp_path: Path) -> None:
    """A small partition's ``prior_rows`` printed ``3.3333333333333335`` beside scores shown
    to 4 digits; ``--json`` keeps every digit."""
    rng = np.random.default_rng(0)
    rows = [20, 20, 4]
    n = sum(rows)
    df = pd.DataFrame({
        "asset": np.repeat(np.arange(len(rows)), rows),
        "day": np.concatenate([np.arange(k) for k in rows]),
        "x1": rng.standard_normal(n),
        "failed": (rng.random(n) < 0.4).astype(np.int64),
    })  # fmt: skip
    spec = {
        "name": "assets", "task": "classification", "partition_by": ["asset"],
        "target": "failed", "time_column": "day", "features": ["x1"], "metric": "neg_log_loss",
        "min_rows": 10, "validation": {"strategy": "last", "size": 5},
        "selection": {"prior_rows": 10 / 3},
        "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression",
                        "params": {"C": [1 / 3]}}],
    }  # fmt: skip
    registry = tmp_path / "registry"
    train(spec, df, registry, backend="local")
    shown = invoke("models", "show", "asset=2", "--registry", registry)
    assert shown.exit_code == 0, shown.output
    assert '{"prior_rows": 3.333}' in shown.stdout
    assert "3.3333333333333335" not in shown.stdout
    fitted = invoke("models", "show", "asset=0", "--registry", registry)
    assert '{"C": 0.3333}' in fitted.stdout and "0.3333333333333333" not in fitted.stdout
    full = json.loads(invoke("models", "show", "asset=2", "--registry", registry, "--json").stdout)
    assert full["versions"][0]["params"] == {"prior_rows": 10 / 3}
