"""Holiday sets stored once (schema 13) on every database: two runs of the same dates keep one
set (the second insert is no conflict), and a process that has not seen the set reads it
back by hash from the database."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from factories import spec_dict
from sqlalchemy import func, select

from manymodels import holiday_sets
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import schema as t


def test_one_set_for_two_runs_read_back_by_hash(db_url: str, tmp_path: Path) -> None:
    days = pd.bdate_range("2024-11-01", "2024-12-20")
    df = pd.concat(
        [pd.DataFrame({"shop": f"s{i}", "t": days, "y": 1.0 + i + days.day}) for i in range(3)],
        ignore_index=True,
    )
    spec = spec_dict(partition_by=["shop"], target="y", time_column="t", lags=[1])
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        train({**spec, "holidays": ["2024-12-25", "2025-01-01"]}, df, reg, backend="local")
        train({**spec, "holidays": ["2025-01-01", "2024-12-25"]}, df, reg, backend="local")
        with reg.store.engine.connect() as conn:
            count = select(func.count()).select_from(t.holiday_sets)
            assert conn.execute(count).scalar_one() == 1
    holiday_sets._KNOWN.clear()  # another process: the set is read from the database
    with Registry(root, db_url=db_url) as reg:
        plan = reg.get_version("shop=s0", 2).schema.forecast
        assert plan is not None and plan.holidays == ["2024-12-25", "2025-01-01"]
        steps = forecast(reg, ["shop=s0"], horizon=4)["t"].dt.strftime("%m-%d").tolist()
    assert steps == ["12-23", "12-24", "12-26", "12-27"]
