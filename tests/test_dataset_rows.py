"""A Parquet dataset (a directory) is checked one record batch at a time
(``datasets.BATCH_ROWS`` rows): a bad cell's row is still counted in its file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manymodels.datasets import BATCH_ROWS
from manymodels.exceptions import DataError
from manymodels.pipeline import train

SPEC = {
    "name": "rows",
    "partition_by": ["pid"],
    "target": "y",
    "time_column": "t",
    "candidates": [{"estimator": "sklearn.linear_model.Ridge"}],
}


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("t", "2024-13-45", "time column 't' is not dates or numbers: '2024-13-45'"),
        ("x", "abc", "feature 'x' holds numbers except 1 value(s), the first 'abc'"),
    ],
    ids=["time", "feature"],
)
def test_a_bad_cell_past_the_first_batch_of_a_file_names_its_row_in_the_file(
    tmp_path: Path, column: str, value: str, said: str
) -> None:
    """A bad cell in row 100,000 of a file was named "in row 34464" (the row within its
    record batch of 65,536: each batch counted from 1 again)."""
    n, bad = BATCH_ROWS + 40_000, 100_000
    rows = pd.DataFrame({
        "pid": np.arange(n) % 3,
        "t": pd.date_range("2024-01-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M"),
        "x": np.arange(n).astype(str),
        "y": np.arange(n) * 2.0,
    })  # fmt: skip
    rows.loc[bad - 1, column] = value
    data = tmp_path / "data"
    data.mkdir()
    rows.iloc[:10].to_parquet(data / "a.parquet", index=False)  # another file, read first
    rows.to_parquet(data / "b.parquet", index=False, row_group_size=n)
    with pytest.raises(DataError) as e:
        train(SPEC, data, tmp_path / "reg", backend="local")
    assert "b.parquet" in str(e.value) and said in str(e.value), str(e.value)
    assert f"in data row {bad} (counting from 1)" in str(e.value), str(e.value)
