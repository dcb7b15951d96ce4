"""A future table's errors name a step's time as the table and the forecast write it: a
daily table of dates names ``2025-03-16``, not ``2025-03-16T00:00:00``, which the user never
wrote and would search their file for in vain; a zone-aware time keeps its offset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import open_client
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError
from manymodels.forecasting import forecast
from manymodels.pipeline import train

runner = CliRunner()

SPEC = {
    "name": "daily",
    "task": "regression",
    "partition_by": ["store", "brand"],
    "target": "units",
    "time_column": "day",
    "features": ["price"],
    "metric": "neg_mean_absolute_error",
    "min_rows": 20,
    "validation": {"strategy": "last", "size": 8},
    "candidates": [{"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [1.0]}}],
}


def _table(days: pd.DatetimeIndex) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "store": 2,
            "brand": "tropicana",
            "day": days,
            "price": rng.uniform(1, 3, len(days)),
            "units": rng.uniform(100, 200, len(days)),
        }
    )


def test_a_missing_step_of_a_table_of_dates_is_named_as_a_date(tmp_path: Path) -> None:
    """Before: "… but not for 2025-03-16T00:00:00", CLI and router alike."""
    table = _table(pd.date_range("2025-01-01", "2025-03-12", freq="D"))
    table["day"] = table["day"].dt.strftime("%Y-%m-%d")  # a CSV of dates
    (tmp_path / "t.csv").write_text(table.to_csv(index=False))
    root = tmp_path / "fc"
    train(SPEC, tmp_path / "t.csv", root, backend="local")
    future = tmp_path / "fut.csv"
    rows = [("2025-03-13", 2.0), ("2025-03-14", 2.0), ("2025-03-15", 2.0)]
    lines = "".join(f"2,tropicana,{d},{p}\n" for d, p in rows)
    future.write_text("store,brand,day,price\n" + lines)
    args = ["forecast", "--registry", str(root), "--partitions", "store=2,brand=tropicana"]
    ok = runner.invoke(app, [*args, "--horizon", "3", "--future", str(future)])
    assert ok.exit_code == 0 and "2025-03-15" in ok.stdout and "T00:00" not in ok.stdout, ok.output
    result = runner.invoke(app, [*args, "--horizon", "4", "--future", str(future)])
    assert result.exit_code != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "but not for 2025-03-16 (" in lines[0], lines[0]

    from serving.settings import Settings

    posted = [{"day": d, "price": p} for d, p in rows]
    with open_client(Settings(registry=root)) as client:
        r = client.post(
            "/v1/partitions/store=2,brand=tropicana/forecast",
            json={"horizon": 4, "future": posted},
        )
        ok = client.post(
            "/v1/partitions/store=2,brand=tropicana/forecast",
            json={"horizon": 3, "future": posted},
        )
    assert r.status_code == 422, r.text
    assert "but not for 2025-03-16 (" in r.json()["detail"], r.text
    # its answer writes the steps as its 422 does (before: 2025-03-13T00:00:00)
    assert ok.status_code == 200, ok.text
    assert [p["time"] for p in ok.json()["forecast"]] == [d for d, _ in rows]


def test_a_zone_aware_missing_step_keeps_its_offset(tmp_path: Path) -> None:
    days = pd.date_range("2025-01-01", "2025-03-12", freq="D", tz="Europe/Berlin")
    root = tmp_path / "fc"
    train(SPEC, _table(days), root, backend="local")
    future = _table(pd.date_range("2025-03-13", periods=3, freq="D", tz="Europe/Berlin"))
    with pytest.raises(DataError, match=r"but not for 2025-03-16T00:00:00\+01:00 \("):
        forecast(root, horizon=4, future=future.drop(columns="units"))
    args = ["forecast", "--registry", str(root), "--horizon", "1", "--json"]
    result = runner.invoke(app, args)  # a zone-aware midnight is not a date: its offset stays
    assert result.exit_code == 0, result.output
    assert [r["day"] for r in json.loads(result.stdout)["forecast"]] == [
        "2025-03-13T00:00:00+01:00"
    ]
