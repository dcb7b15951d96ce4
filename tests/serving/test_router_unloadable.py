"""A version whose artifact passes its checks but does not load is refused with a 409, like a
tampered one — not a 500 with a traceback logged on every request for it.

Its bytes match the sha256 its row records, so they are read: a pickle naming a class this
release does not have (one renamed since the model was stored: what a library upgrade does to
old pickles), or a skops file another skops wrote, or one crafted by whoever can write the
database and the store. Batch scoring already said "its artifact does not load (…)"; the
router answered every request to that partition "internal server error".
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
from routerkit import KEY, feature_rows

from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings

# protocol 0: GLOBAL manymodels.candidates.RenamedSince, then STOP — no code runs, the class
# is simply not there
FOREIGN = b"cmanymodels.candidates\nRenamedSince\n."


def point_at(root: Path, data: bytes) -> None:
    with Registry.open(root) as reg:
        sha, size = reg.artifacts.put(data)
        version = reg.get_version(KEY).version
    with sqlite3.connect(root / "registry.db") as conn:
        conn.execute(
            "UPDATE model_versions SET artifact_sha256 = ?, artifact_size = ? "
            "WHERE key = ? AND version = ?",
            (sha, size, KEY, version),
        )


def test_an_artifact_that_does_not_load_is_a_409_naming_why(registry_path: Path) -> None:
    point_at(registry_path, FOREIGN)
    rows = {"rows": feature_rows(2)}
    with running_server(Settings(registry=registry_path)) as url, httpx.Client(base_url=url) as c:
        r = c.post(f"/v1/partitions/{KEY}/predict", json=rows)
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert f"the artifact of partition '{KEY}' version 1 does not load" in detail
        assert "AttributeError" in detail and "model not served" in detail
        v2 = c.post(
            f"/v2/models/{KEY}/infer",
            json={"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64",
                              "data": [2.0, 1, 0]}]},
        )  # fmt: skip
        assert v2.status_code == 409 and "does not load" in v2.json()["error"], v2.text
        other = c.post("/v1/partitions/store=1,brand=tropicana/predict", json=rows)
        assert other.status_code == 200, other.text  # only that partition is refused
