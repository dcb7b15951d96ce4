"""The forecast route (``serving.routes.forecast``) read as the library reads a forecast's
``future`` table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from routerkit import FEATURES, KEY

from manymodels.forecasting import forecast


def test_an_empty_future_carries_the_last_values_forward_as_an_empty_table_does(
    client: Any, registry_path: Path
) -> None:
    """``"future": []`` was a 422 "future: 0 row(s) without 'week' for a horizon of 2; give
    one row per step, or a 'week' in each row", about times no row lacked. The library and
    ``forecast --future`` take a table with no rows for a partition as its last known values
    carried forward; the route now answers ``[]`` so, naming them in ``carried``."""
    empty = pd.DataFrame(columns=["store", "brand", "week", *FEATURES])
    library = forecast(registry_path, [KEY], horizon=2, future=empty)["prediction"].tolist()
    omitted = client.post(f"/v1/partitions/{KEY}/forecast", json={"horizon": 2})
    r = client.post(f"/v1/partitions/{KEY}/forecast", json={"horizon": 2, "future": []})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["prediction"] for p in body["forecast"]] == pytest.approx(library)
    assert body == omitted.json() and body["carried"] == FEATURES
