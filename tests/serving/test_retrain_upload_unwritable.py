"""A retrain upload whose checked rows the artifact store cannot write (a file stands where
the store must make a directory: a real fault, which chmod cannot make for root) is the
server's fault: a 500 with a JSON body naming it, where the raw ``ArtifactError`` answered a
409 Conflict, as if the client could change it. Nothing is queued, no version is made."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import linear_frame, spec_dict
from routerkit import TOKEN, admin, open_client

from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.settings import Settings

HEX = "0123456789abcdef"


def block_new_directories(artifacts: Path) -> int:
    """A file at every fan-out directory the store has not made (``ab/`` and ``ab/cd/``): a
    put of new bytes then finds a file where it must create or enter a directory (ENOTDIR),
    whatever their sha256. Returns how many were placed."""
    placed = 0
    for a in (x + y for x in HEX for y in HEX):
        top = artifacts / a
        if not top.exists():
            top.write_bytes(b"")
            placed += 1
            continue
        for b in (x + y for x in HEX for y in HEX):
            if not (top / b).exists():
                (top / b).write_bytes(b"")
                placed += 1
    return placed


@pytest.mark.slow  # a trained registry: ~2.7 s
def test_rows_the_artifact_store_cannot_write_are_a_500_not_a_conflict(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    train(spec_dict(), linear_frame(2, 30), root, backend="local")
    assert block_new_directories(root / "artifacts") > 0
    body = b"pid,t,x0,x1,y\n0,30,1.5,2.5,3.0\n0,31,0.5,1.5,2.0\n"
    with open_client(Settings(registry=root, admin_token=TOKEN)) as client:
        r = client.post(
            "/v1/partitions/pid=0/retrain",
            files={"file": ("new.csv", body, "text/csv")},
            headers=admin(),
        )
        assert r.status_code == 500, r.text
        detail = r.json()["detail"]
        assert detail.startswith("the uploaded rows could not be stored: cannot write artifact")
        assert "Not a directory" in detail, detail
        assert "Location" not in r.headers
    with Registry.open(root) as reg:
        assert [v.version for v in reg.list_versions("pid=0")] == [1]
