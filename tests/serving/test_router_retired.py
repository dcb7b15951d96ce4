"""A partition taken out of production (``manymodels retire``), as a running router (real
uvicorn) sees it: answered as a partition with no model — the fallback where the registry has
one, else the 404 an unknown key gets — once its alias refresh reads the retirement; and put
back by the router's own rollback."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
from routerkit import KEY, TOKEN, admin, feature_rows

from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings


def _predict(base: str, key: str = KEY) -> httpx.Response:
    return httpx.post(f"{base}/v1/partitions/{key}/predict", json={"rows": feature_rows(2)})


def _table_size(base: str) -> float:
    """The router's ``manymodels_alias_table_size`` gauge: the partitions it serves."""
    text = httpx.get(f"{base}/metrics").text
    (line,) = [s for s in text.splitlines() if s.startswith("manymodels_alias_table_size ")]
    return float(line.split()[1])


def _until(base: str, done: object, what: str) -> httpx.Response:
    """The first answer for which ``done`` holds, within ten refresh intervals."""
    started = time.monotonic()
    while not done(r := _predict(base)):  # type: ignore[operator]
        assert time.monotonic() - started < 2.0, f"{what}: {r.status_code} {r.text}"
        time.sleep(0.05)
    return r


def test_a_retired_partition_is_served_by_the_fallback_until_rolled_back(
    server: str, registry_path: Path
) -> None:
    first = _predict(server).json()
    assert (first["version"], first["fallback"]) == (1, False)
    size = _table_size(server)
    with Registry.open(registry_path) as other:  # the CLI, in another process
        other.retire([KEY], reason="old target")
    r = _until(server, lambda r: r.json()["fallback"], "retirement not picked up")
    assert r.status_code == 200 and r.json()["predictions"] != first["predictions"]
    assert _table_size(server) == size - 1  # the key left the table, not kept as None
    back = httpx.post(f"{server}/v1/partitions/{KEY}/rollback", headers=admin())
    assert back.status_code == 200, back.text
    assert (back.json()["from_version"], back.json()["to_version"]) == (None, 1)
    now = _predict(server).json()  # the router's own move: applied at once
    assert (now["version"], now["fallback"], now["predictions"]) == (
        1, False, first["predictions"]
    )  # fmt: skip
    assert _table_size(server) == size


def test_a_retired_partition_without_a_fallback_is_a_404(
    trained_no_fallback: Path, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(trained_no_fallback, tmp_path / "registry"))
    settings = Settings(registry=root, admin_token=TOKEN, refresh_seconds=0.2)
    with running_server(settings) as base:
        assert _predict(base).status_code == 200
        with Registry.open(root) as other:
            other.retire([KEY])
        r = _until(base, lambda r: r.status_code != 200, "retirement not picked up")
        assert r.status_code == 404 and KEY in r.json()["detail"], r.text
