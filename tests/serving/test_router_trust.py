"""A registry told to trust no pickles while the router runs: models already in memory go too."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from routerkit import KEY, feature_rows, open_client

from manymodels.registry import Registry
from manymodels.registry.client import FORMATS_TTL
from serving.settings import Settings


def test_pickled_models_already_cached_stop_answering_once_pickles_are_refused(
    settings: Settings, registry_path: Path
) -> None:
    rows = {"rows": feature_rows(2)}
    with open_client(settings) as client:
        assert client.post(f"/v1/partitions/{KEY}/predict", json=rows).status_code == 200
        service: Any = client.app.state.service
        assert (KEY, 1) in service.cache
        time.sleep(FORMATS_TTL + 3 * settings.refresh_seconds)
        assert (KEY, 1) in service.cache  # the policy did not change: nothing dropped
        with Registry.open(registry_path) as reg:
            reg.set_trusted_formats(frozenset({"skops"}))
        deadline = time.monotonic() + FORMATS_TTL + 10 * settings.refresh_seconds + 5
        while (KEY, 1) in service.cache and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (KEY, 1) not in service.cache
        answer = client.post(f"/v1/partitions/{KEY}/predict", json=rows)
    assert answer.status_code == 500, answer.text
    assert "v1" in answer.json()["detail"]
