"""``bad_rows = "drop"`` with lags: a stray-word row is kept in its period without a target
(``stray_values``) — counted once, as a row with a stray word, never again as a missing target
or an undefined lag; and a Parquet directory trains as the same rows in memory do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.pipeline import train
from manymodels.registry import Registry

RIDGE = "sklearn.linear_model.Ridge"
SPEC = """name = "s"
partition_by = ["pid"]
target = "y"
time_column = "t"
features = ["x"]
lags = [1]
bad_rows = "drop"
missing_target = "{missing}"
min_rows = 5
[[candidates]]
estimator = "sklearn.linear_model.Ridge"
"""


def table(n: int = 20, partitions: int = 1) -> pd.DataFrame:
    frames = [
        pd.DataFrame({"pid": p, "t": pd.date_range("2024-01-01", periods=n),
                      "x": np.arange(n) ** 2 * 1.0, "y": np.arange(n) * 10.0 + 3 + p})
        for p in range(partitions)
    ]  # fmt: skip
    return pd.concat(frames, ignore_index=True).astype({"x": object, "y": object})


@pytest.mark.parametrize(
    ("missing", "dropped", "n_rows"),
    [
        # rows 0, 6 and 11 have no lag 1 (the first row; rows 5 and 10 hold no target)
        ("drop", {"missing_target": 1, "undefined_lags": 3}, 15),
        ("error", {"undefined_lags": 2}, 17),  # no missing target: rows 0 and 11
    ],
)
def test_a_stray_word_row_is_counted_once(
    tmp_path: Path, missing: str, dropped: dict[str, int], n_rows: int
) -> None:
    """Row 10's target is "oops", row 5's empty (under "drop" only). Before, row 10 was
    counted twice: "rows with a stray word in a numeric column left out: 1 in 'y'" and again
    in "rows left out of training: 2 missing target, 3 undefined lags" (with "error": "3
    undefined lags") — 6 rows left out of 20 for a version of 15."""
    df = table()
    df.loc[10, "y"] = "oops"
    if missing == "drop":
        df.loc[5, "y"] = None
    df.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "s.toml").write_text(SPEC.format(missing=missing))
    registry = str(tmp_path / "reg")
    result = CliRunner().invoke(
        app, ["train", str(tmp_path / "s.toml"), str(tmp_path / "d.csv"), "--registry", registry]
    )
    assert result.exit_code == 0, result.output
    # a warning, on stderr, as a run of nothing says it (``data_warnings``)
    stray = "warning: rows with a stray word in a numeric column left out: 1 in 'y'"
    assert stray in result.stderr, result.stderr
    said = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in dropped.items())
    assert f"rows left out of training: {said}\n" in result.stdout
    with Registry.open(registry) as reg:
        version = reg.get_version("pid=0")
        assert version.validation["dropped"] == dropped
        assert version.n_rows == n_rows == 20 - 1 - sum(dropped.values())
        run = reg.list_runs()[0]
        assert run.options["rows_dropped"] == dropped
        assert run.options["bad_rows_dropped"] == {"y": 1}


def test_a_parquet_directory_keeps_the_periods_as_the_table_in_memory(tmp_path: Path) -> None:
    """The streamed path (``datasets.prepare_streamed``) prepares each bucket with
    ``data.prepare``: a stray word's row keeps its period there too, each partition's lags,
    version and counts those of the same rows in memory."""
    df = table(30, partitions=4)
    df.loc[10, "y"], df.loc[45, "x"], df.loc[100, "y"] = "n/a", "abc", "?"
    df = df.astype({"x": str, "y": str})  # a column of text in Parquet, as a CSV export's
    spec: dict[str, Any] = {
        "name": "s", "partition_by": ["pid"], "target": "y", "time_column": "t",
        "features": ["x"], "lags": [1, 2], "changes": ["x"],
        "rolling": [{"lag": 1, "window": 3, "stat": "mean"}], "bad_rows": "drop",
        "candidates": [{"estimator": RIDGE}],
    }  # fmt: skip
    directory = tmp_path / "rows"
    for pid, rows in df.groupby("pid"):
        (directory / f"pid={pid}").mkdir(parents=True)
        for half, piece in enumerate((rows.iloc[:15], rows.iloc[15:])):
            piece.drop(columns="pid").to_parquet(directory / f"pid={pid}" / f"{half}.parquet")
    memory = train(spec, df, tmp_path / "memory", backend="local")
    streamed = train(spec, str(directory), tmp_path / "streamed", backend="local")
    assert memory.rows_dropped == streamed.rows_dropped
    assert memory.run.options["bad_rows_dropped"] == {"x": 1, "y": 2}
    assert streamed.run.options["bad_rows_dropped"] == {"x": 1, "y": 2}
    with Registry.open(tmp_path / "memory") as a, Registry.open(tmp_path / "streamed") as b:
        for key in (f"pid={p}" for p in range(4)):
            va, vb = a.get_version(key), b.get_version(key)
            assert (va.n_rows, va.validation["dropped"]) == (vb.n_rows, vb.validation["dropped"])
            assert va.score == vb.score and va.data_fingerprint == vb.data_fingerprint
        # pid 0: row 10 stray; rows 0-2 (lags, window) and 11-13 (reading row 10) left out
        assert a.get_version("pid=0").n_rows == 30 - 7
        assert a.get_version("pid=2").n_rows == 30 - 3  # no stray word: rows 0-2 only
