"""A registry whose key column holds numbers for one spec's partitions and text codes for
another's (``code=0`` trained from a CSV, ``code=005`` from Parquet): a CSV of either is read
by the types of the partitions it names, not by the registry's first partition."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from factories import RIDGE, linear_frame
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.scoring import score

SPEC = {
    "target": "y", "time_column": "t", "min_rows": 10, "partition_by": ["code"],
    "candidates": [{"estimator": RIDGE}],
}  # fmt: skip


@pytest.fixture
def mixed(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The registry (its first partition ``code=0``, a number), a CSV of the number-keyed
    spec's rows and one of the code-keyed spec's (005, 006, 007)."""
    numbers = linear_frame(3, rows=30).rename(columns={"pid": "code"})
    codes = linear_frame(3, rows=30, seed=1).rename(columns={"pid": "code"})
    codes["code"] = codes["code"].map(lambda i: f"00{i + 5}")
    numbers.to_csv(tmp_path / "numbers.csv", index=False)
    codes.to_parquet(tmp_path / "codes.parquet")
    codes.to_csv(tmp_path / "codes.csv", index=False)
    root = tmp_path / "registry"
    train({**SPEC, "name": "numbers"}, tmp_path / "numbers.csv", root, backend="local")
    train({**SPEC, "name": "codes"}, tmp_path / "codes.parquet", root, backend="local")
    return root, tmp_path / "numbers.csv", tmp_path / "codes.csv"


def test_scoring_a_csv_of_codes_finds_their_partitions(mixed: tuple[Path, Path, Path]) -> None:
    # before: read by code=0's type (a number), 005 was 5: all 90 rows scored by the fallback
    root, numbers, codes = mixed
    out = score(codes, root, backend="local")
    assert not out["fallback"].any()
    assert sorted(out["served_by"].unique()) == ["code=005", "code=006", "code=007"]
    both = pd.concat([pd.read_csv(numbers), pd.read_csv(codes, dtype={"code": str})])
    both.to_csv(codes.with_name("both.csv"), index=False)
    out = score(codes.with_name("both.csv"), root, backend="local")
    assert not out["fallback"].any()
    assert out["served_by"].nunique() == 6
    out = score(numbers, root, backend="local")  # a CSV of numbers stays numbers
    assert not out["fallback"].any() and out["code"].dtype.kind == "i"


def test_actuals_of_codes_are_recorded_for_their_partitions(
    mixed: tuple[Path, Path, Path],
) -> None:
    root, _, codes = mixed
    result = CliRunner().invoke(app, ["actuals", str(codes), "--registry", str(root)])
    assert result.exit_code == 0, result.output
    assert "recorded 90 actual(s) of 3 partition(s)" in result.output


def test_training_again_from_a_csv_of_codes_retrains_their_partitions(
    mixed: tuple[Path, Path, Path],
) -> None:
    # before: 005 read as 5 trained new partitions code=5, 6, 7 beside code=005's, which
    # served on with their old models
    root, _, codes = mixed
    summary = train({**SPEC, "name": "codes"}, codes, root, backend="local")
    assert summary.run.n_trained == 3
    with Registry.open(root) as reg:
        keys = [p.key for p in reg.list_partitions(limit=100)]
        assert "code=5" not in keys
        assert max(v.version for v in reg.list_versions("code=005")) == 2


def test_a_future_csv_of_both_kinds_reaches_both_partitions(
    mixed: tuple[Path, Path, Path],
) -> None:
    # before: keyed by the first partition forecast (code=0, a number), the future row of
    # 005 was 5's, matched nothing, and code=005 carried its last values forward unwarned
    root, _, codes = mixed
    future = codes.with_name("future.csv")
    future.write_text("code,t,x0,x1\n0,30,100,100\n005,30,100,100\n")
    keys = ["code=0", "code=005"]
    given = forecast(root, keys=keys, horizon=1, future=future)
    carried = forecast(root, keys=keys, horizon=1)
    assert list(given["code"].astype(str)) == ["0", "005"]
    assert (given["prediction"] - carried["prediction"]).abs().min() > 1.0


def test_a_forecast_of_both_kinds_keeps_each_partitions_key_type(
    mixed: tuple[Path, Path, Path],
) -> None:
    """The key column of a forecast of every partition was text for all ('0' for the
    number-keyed spec's code=0: ``np.repeat`` of [0, '005'] made one type); now each
    partition's key as it names it, and a Parquet file, which holds one type a column, is
    refused saying why before anything is written (pyarrow's "Could not convert" before)."""
    root, _, _ = mixed
    frame = forecast(root, horizon=1)
    kinds = dict(zip(frame["code"].astype(str), map(type, frame["code"]), strict=True))
    assert kinds == {"0": int, "1": int, "2": int, "005": str, "006": str, "007": str}
    assert forecast(root, keys=["code=0", "code=1"], horizon=1)["code"].dtype.kind == "i"
    out = root.parent / "next.parquet"
    args = ["forecast", "--horizon", "1", "--registry", str(root), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.stdout == "" and not out.exists()
    assert result.stderr == (
        f"error: {out}: the forecast's key column 'code' holds a number for some partitions "
        "('code=0') and text for others ('code=005'), and a Parquet column holds one type: "
        "forecast them apart (--partitions) or write a .csv\n"
    )
    result = CliRunner().invoke(app, [*args, "--partitions", "code=0"])
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(out)["code"].dtype.kind == "i"
    csv = out.with_suffix(".csv")
    result = CliRunner().invoke(app, [*args[:-1], str(csv)])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(csv, dtype=str)["code"].tolist() == ["0", "005", "006", "007", "1", "2"]


def test_a_forecast_of_both_kinds_to_a_gzipped_csv_is_written(
    mixed: tuple[Path, Path, Path],
) -> None:
    """``--out next.csv.gz`` (a CSV, gzipped: each key as it is) was refused as a Parquet
    file: "… and a Parquet column holds one type: … or write a .csv" (its suffix is .gz)."""
    root, _, _ = mixed
    out = root.parent / "next.csv.gz"
    args = ["forecast", "--horizon", "1", "--registry", str(root), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out, dtype=str)["code"].tolist() == ["0", "005", "006", "007", "1", "2"]


def test_a_key_column_of_ints_and_floats_stays_numeric() -> None:
    """Only text beside numbers keeps each value as it is: 1 beside 2.5 is a float64 column,
    as it was before (not objects)."""
    from manymodels.forecast_output import _key_column

    assert _key_column([1, 2.5], 2).dtype == "float64"
    assert _key_column([1, 2], 1).dtype.kind == "i"
    assert _key_column([0, "005"], 1).tolist() == [0, "005"]
