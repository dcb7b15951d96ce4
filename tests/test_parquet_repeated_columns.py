"""A Parquet file naming a column twice (pyarrow writes one; so do Spark and DuckDB exports of
a join): refused in the words a CSV's repeated header gets, not in pyarrow's "Multiple
matches for FieldRef.Name(price) in store: int64 …" listing the whole schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from manymodels.cli import app

runner = CliRunner()


def cli(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def test_train_and_score_of_a_parquet_file_naming_a_column_twice(tmp_path: Path) -> None:
    data = tmp_path / "rows.parquet"
    columns = [pa.array([1, 1]), pa.array([0, 1]), pa.array([1.0, 2.0]), pa.array([3.0, 4.0])]
    pq.write_table(pa.Table.from_arrays(columns, names=["pid", "t", "x", "x"]), data)
    (tmp_path / "spec.toml").write_text(
        'name = "t"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    said = [f"error: {data}: column 'x' is named twice in the file"]
    res = cli("train", tmp_path / "spec.toml", data, "--registry", tmp_path / "reg")
    assert (res.exit_code, res.output.strip().splitlines()) == (2, said), res.output
    res = cli("score", data, "--registry", tmp_path / "reg", "-o", tmp_path / "out.csv")
    assert res.output.strip().splitlines() == said, res.output
    assert res.exit_code != 0 and not (tmp_path / "out.csv").exists()
