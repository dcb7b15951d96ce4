"""``manymodels serve --no-monitor``: no row is sampled and nothing is flushed, actuals still
count."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from routerkit import KEY, feature_rows, ready_line
from sqlalchemy import func, select

from manymodels.registry import Registry
from manymodels.registry import schema as t
from serving.local import running_server
from serving.settings import Settings


@pytest.mark.slow  # a router process: 4 s idle, 20 s on a loaded machine
def test_the_flag_reaches_the_router(registry_path: Path) -> None:
    cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--registry", str(registry_path),
           "--port", "0", "--no-monitor"]  # fmt: skip
    assert ready_line(cmd)["monitor"] is False


def test_without_monitoring_scored_rows_are_neither_sampled_nor_flushed(
    settings: Settings,
) -> None:
    """Scored traffic leaves no drift row (and /metrics counts no sampled row) when the
    router runs with monitoring off; the same traffic with it on leaves one."""
    rows = feature_rows(20)
    for monitor, drift_rows in ((False, 0), (True, 1)):
        with running_server(replace(settings, monitor=monitor)) as base:
            for _ in range(5):
                got = httpx.post(f"{base}/v1/partitions/{KEY}/predict", json={"rows": rows})
                assert got.status_code == 200, got.text
            metrics = httpx.get(f"{base}/metrics").text
            sampled = next(
                float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith("manymodels_monitor_sampled_rows_total")
            )
            assert (sampled > 0) is monitor, metrics
            # off, it reads no drift count: it said 0 drifted whatever the registry held
            assert ("manymodels_partitions_drifted " in metrics) is monitor, metrics
        # the router flushed at shutdown: only the monitored run wrote a drift row
        with Registry.open(settings.registry) as reg, reg.store.engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(t.monitor_drift)).scalar_one()
        assert n == drift_rows
