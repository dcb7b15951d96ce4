"""Drift of derived lag features (#15): target lags and rolling statistics are profiled at
training (they are columns of the training matrix), and the router's drift sample counts them —
as the rows sent them, or as the router computed them from the version's history when the rows
left them out and gave their time (``profile.with_lags``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pandas as pd
import pytest
from routerkit import KEY, SALES_SPEC, TOKEN, sales

from manymodels.feature_schema import FeatureSchema
from manymodels.monitoring import store
from manymodels.monitoring.profile import with_lags
from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings

LAG_SPEC = {**SALES_SPEC, "lags": [1, 2], "rolling": [{"lag": 1, "window": 3}],
            "fallback": {"enabled": False}}  # fmt: skip
DERIVED = ("units_lag1", "units_lag2", "units_roll_mean_lag1_w3")
SCHEMA: dict[str, Any] = {  # as a version of LAG_SPEC records it (frequency, lags, history)
    "time_column": "week",
    "target": "units",
    "forecast": {
        "frequency": "7D", "calendar": {}, "lags": {"units_lag1": 1, "units_lag2": 2},
        "exogenous": ["price", "deal", "feat"],
        "rolling": {"units_roll_mean_lag1_w3": {"lag": 1, "window": 3, "stat": "mean"}},
    },
    "history": {"key": {"store": 2}, "time": "2025-02-17T00:00:00",
                "target": [10.0, 20.0, 60.0], "features": {"price": 1.0, "deal": 0, "feat": 0}},
}  # fmt: skip


def test_lags_left_out_are_computed_from_the_versions_history() -> None:
    rows: list[dict[str, Any]] = [
        {"week": "2025-02-24", "price": 2.0},  # the period after the history: from it alone
        {"week": "2025-02-24", "units_lag1": 5.0, "units_lag2": 6.0,
         "units_roll_mean_lag1_w3": 7.0},  # sent: kept as sent
        {"week": "2025-03-03", "price": 2.0},  # its lag 1 is a target nobody knows: as it was
        {"price": 2.0},  # no time: nothing to derive
    ]  # fmt: skip
    out = with_lags(rows, FeatureSchema.parse(SCHEMA))
    assert out[0] == {"week": "2025-02-24", "price": 2.0, "units_lag1": 60.0, "units_lag2": 20.0,
                      "units_roll_mean_lag1_w3": 30.0}  # fmt: skip
    assert out[1:] == rows[1:]
    assert with_lags(rows, FeatureSchema([], time_column="week")) is rows  # no lags recorded


def test_a_target_posted_in_the_sample_is_not_used_for_other_rows() -> None:
    """Sampled rows come from many requests: an actual one row posted fills nothing else."""
    rows: list[dict[str, Any]] = [{"week": "2025-02-24", "units": 999.0}, {"week": "2025-03-03"}]
    out = with_lags(rows, FeatureSchema.parse(SCHEMA))
    assert out[0]["units"] == 999.0 and out[0]["units_lag1"] == 60.0
    assert out[1] == rows[1]


OTHER = "store=3,brand=minute_maid"


def partition(key: str) -> pd.DataFrame:
    store, brand = (part.split("=")[1] for part in key.split(","))
    return sales().query(f"store == {store} and brand == '{brand}'").sort_values("week")


def replayed(df: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """The partition's own training rows with every lag known (56 of its 60), with the lags
    training computed."""
    y = df["units"]
    lags = {"units_lag1": y.shift(1), "units_lag2": y.shift(2),
            "units_roll_mean_lag1_w3": y.shift(1).rolling(3).mean()}  # fmt: skip
    for r in df.assign(**lags).dropna().tail(64).itertuples():
        yield {"price": r.price, "deal": r.deal, "feat": r.feat,
               **{name: float(getattr(r, name)) for name in DERIVED}}  # fmt: skip


@pytest.fixture(scope="module")
def drift(tmp_path_factory: pytest.TempPathFactory) -> dict[str, store.DriftRow]:
    """Two partitions trained with lags, one router scoring both, then its drift rows (flushed
    at shutdown): ``KEY`` gets its own training rows with the previous period's target five
    times what it was, sent in the rows; ``OTHER`` gets rows for the period after training
    that leave every lag out (the router computes them from the version's history). Requests
    of 16 rows: each is wholly sampled."""
    root = tmp_path_factory.mktemp("lags") / "registry"
    with Registry(root) as reg:
        train(LAG_SPEC, pd.concat([partition(KEY), partition(OTHER)]), reg, backend="local")
    shifted = [{**row, "units_lag1": row["units_lag1"] * 5} for row in replayed(partition(KEY))]
    df = partition(OTHER)
    after = str((df["week"].max() + pd.Timedelta(weeks=1)).date())
    left_out = [{"week": after, "price": row["price"], "deal": row["deal"], "feat": row["feat"]}
                for row in replayed(df)]  # fmt: skip
    settings = Settings(registry=root, admin_token=TOKEN, monitor=True)
    with running_server(replace(settings, monitor_flush_seconds=3600)) as base:
        for key, rows in ((KEY, shifted), (OTHER, left_out)):
            for start in range(0, len(rows), 16):
                got = httpx.post(
                    f"{base}/v1/partitions/{key}/predict", json={"rows": rows[start : start + 16]}
                )
                assert got.status_code == 200, got.text
    with Registry.open(root) as reg:
        return store.drift_rows(reg.store.engine)


@pytest.mark.slow  # one training of two partitions and a router: ~8 s on a busy machine
def test_a_shifted_lag_sent_in_the_rows_is_the_drifted_feature(
    drift: dict[str, store.DriftRow],
) -> None:
    """Training's own rows, except that the previous period's target is five times what it
    was: the router names ``units_lag1`` — not the other lag, not an exogenous feature."""
    found = drift[KEY]
    assert found.rows >= 50
    assert found.feature == "units_lag1" and found.score is not None and found.score > 1.0


@pytest.mark.slow  # one training of two partitions and a router: ~8 s on a busy machine
def test_lags_the_router_computes_from_history_drift_too(drift: dict[str, store.DriftRow]) -> None:
    """Requests for the period after training that leave every lag out: the router computes
    them from the version's history to score the rows, and the sample counts what it computed
    — every row has the same lags (the last targets), a point mass, so the drift comes from a
    lag feature, which no request sent (before lags were sampled it was ``price``, at 0)."""
    found = drift[OTHER]
    assert found.rows >= 50
    assert found.feature in DERIVED and found.score is not None and found.score > 1.0
