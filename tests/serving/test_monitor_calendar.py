"""Drift of derived features: calendar parts a request leaves out are computed from its time
for the drift sample (``profile.with_calendar``), so they drift like any other feature."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from routerkit import KEY, SALES_SPEC, TOKEN, sales

from manymodels.feature_schema import FeatureSchema
from manymodels.monitoring import store
from manymodels.monitoring.profile import with_calendar
from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings

CALENDAR_SPEC = {**SALES_SPEC, "calendar": ["month"], "fallback": {"enabled": False}}


def test_calendar_parts_come_from_the_time_when_left_out() -> None:
    doc = {"time_column": "week", "forecast": {"calendar": {"week_month": "month"}}}
    schema = FeatureSchema.parse(doc)
    rows: list[dict[str, Any]] = [
        {"week": "2024-03-04"},
        {"week": "2024-07-01", "week_month": 1},
        {"price": 2},
    ]
    assert with_calendar(rows, schema) == [
        {"week": "2024-03-04", "week_month": 3},
        {"week": "2024-07-01", "week_month": 1},  # sent: kept as sent
        {"price": 2},  # no time: nothing to derive
    ]
    assert with_calendar(rows, FeatureSchema([], time_column="week")) is rows  # no calendar parts
    assert with_calendar([{"week": "not a date"}], schema) == [{"week": "not a date"}]


def test_a_shifted_calendar_part_is_the_drifted_feature(tmp_path: Path) -> None:
    """Requests whose features are the training rows' own but whose times all fall in the
    week after training (one month): the drift the router measures comes from
    the derived ``week_month``, which no request sent."""
    df = sales().query("store == 2 and brand == 'tropicana'")
    with Registry(tmp_path / "registry") as reg:
        train(CALENDAR_SPEC, df, reg, backend="local")
    train_rows = df.tail(64)
    last = df["week"].max()
    rows = [  # the periods right after training, as a request may send them: no calendar parts
        {"week": str((last + pd.Timedelta(weeks=1)).date()), "price": r.price,
         "deal": r.deal, "feat": r.feat}
        for i, r in enumerate(train_rows.itertuples())
    ]  # fmt: skip
    settings = Settings(registry=tmp_path / "registry", admin_token=TOKEN, monitor=True)
    with running_server(replace(settings, monitor_flush_seconds=3600)) as base:
        for start in range(0, len(rows), 16):
            got = httpx.post(
                f"{base}/v1/partitions/{KEY}/predict", json={"rows": rows[start : start + 16]}
            )
            assert got.status_code == 200, got.text
    with Registry.open(tmp_path / "registry") as reg:  # flushed at shutdown
        drift = store.drift_rows(reg.store.engine)[KEY]
    assert drift.rows >= 50
    assert drift.feature == "week_month" and drift.score is not None and drift.score > 1.0
