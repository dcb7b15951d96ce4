"""The fallback model takes no actuals and has no monitor row (docs/monitoring.md: the
monitor lists production partitions; the route's own words: "actuals never go to the
fallback"). Posted to ``/v1/partitions/__fallback__/actuals`` they were scored and recorded
(200, ``"rows": 1``) under a key every monitor query leaves out: counted, answered as
recorded, and read by nothing. The real router over a copy of the sales registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from routerkit import doubled_rows

from manymodels.monitoring import store
from manymodels.registry import Registry

FALLBACK = "__fallback__"


def test_actuals_posted_to_the_fallback_are_refused_and_write_nothing(
    client: Any, registry_path: Path
) -> None:
    rows = doubled_rows(2, "tropicana", 3)
    got = client.post(f"/v1/partitions/{FALLBACK}/actuals", json={"rows": rows})
    assert got.status_code == 422, got.text
    assert got.json()["detail"].startswith(f"the fallback model ({FALLBACK}) takes no actuals")
    with Registry.open(registry_path) as reg:
        version = reg.get_version(FALLBACK).version
        assert store.live_sums(reg.store.engine, [(FALLBACK, version)]) == {}


def test_the_monitor_says_the_fallback_is_not_in_it(client: Any) -> None:
    """By key, the fallback read as a partition with no monitor row yet (200, no row)."""
    got = client.get("/v1/monitor", params={"key": FALLBACK})
    assert got.status_code == 404, got.text
    assert got.json()["detail"] == f"the fallback model ({FALLBACK}) is not in the monitor: " \
        "it lists partitions"  # fmt: skip
