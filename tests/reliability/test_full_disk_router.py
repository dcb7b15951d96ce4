"""A router whose registry's disk fills up answers its writes 507 Insufficient Storage, with one
JSON line saying so: a retrain's rows that could not be stored answered 409 Conflict (found by
the outage attack), which clients read as "someone else changed it" and never as a full disk.
Once there is room again the same requests succeed.

The disk is real: the whole registry (``registry.db`` and ``artifacts/``) on a 16 MiB tmpfs
that a file then fills (root only; a user's machine without root skips, CI — which runs as root
— never does).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import linear_frame, open_client, spec_dict
from tmpfs import mounted

from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.settings import Settings

pytestmark = pytest.mark.slow

TOKEN = "full-disk-admin-token"
ADMIN = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with mounted(tmp_path / "disk", "16m") as mnt:
        yield mnt


def _fill(path: Path) -> None:
    """Write ``path`` until the disk refuses another byte."""
    block = b"\0" * (1 << 16)
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        try:
            while True:  # the last partial block
                f.write(b"\0" * 512)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e


def _rows() -> list[dict[str, Any]]:
    new = linear_frame(1, 30, seed=5).assign(t=lambda d: d["t"] + 30).drop(columns=["pid"])
    return [dict(r) for r in new.to_dict("records")]


def test_a_full_disk_under_the_router_is_a_507_then_writes_work_again(disk: Path) -> None:
    root = disk / "reg"
    spec = spec_dict(features=["x0", "x1"], promotion={"policy": "manual"})
    with Registry(root) as reg:  # v1 of each partition, and a v2 candidate to promote
        train(spec, linear_frame(3, 30), reg, backend="local")
        train(spec, linear_frame(3, 30, seed=1), reg, backend="local")
    settings = Settings(registry=root, admin_token=TOKEN, retrain_backend="local")
    with open_client(settings) as client:
        _fill(disk / "filler")
        retrain = client.post("/v1/partitions/pid=0/retrain", json={"rows": _rows()},
                              headers=ADMIN)  # fmt: skip
        assert retrain.status_code == 507, retrain.text
        detail = retrain.json()["detail"]
        assert detail.startswith("insufficient storage") and "No space left" in detail, detail
        assert "\n" not in detail
        promote = client.post("/v1/partitions/pid=1/promote", json={"version": 2}, headers=ADMIN)
        assert promote.status_code == 507, promote.text  # its database could not grow
        assert promote.json()["detail"].startswith("insufficient storage"), promote.text
        assert client.get("/v1/jobs", headers=ADMIN).json()["jobs"] == []

        (disk / "filler").unlink()
        again = client.post("/v1/partitions/pid=0/retrain", json={"rows": _rows()}, headers=ADMIN)
        assert again.status_code == 202, again.text
        promote = client.post("/v1/partitions/pid=2/promote", json={"version": 2}, headers=ADMIN)
        assert promote.status_code == 200, promote.text
