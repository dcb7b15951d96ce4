"""A version whose artifact passes its checks but does not load is refused with a 500 naming
why, like a tampered one — not "internal server error" with a traceback logged on every
request for it, nor the 409 it was next (a status telling the client to change its request).

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
from routerkit import KEY, TOKEN, TWO_VERSIONS, admin, feature_rows

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


def test_an_artifact_that_does_not_load_is_a_500_naming_why(registry_path: Path) -> None:
    point_at(registry_path, FOREIGN)
    rows = {"rows": feature_rows(2)}
    with running_server(Settings(registry=registry_path)) as url, httpx.Client(base_url=url) as c:
        r = c.post(f"/v1/partitions/{KEY}/predict", json=rows)
        assert r.status_code == 500, r.text
        detail = r.json()["detail"]
        assert f"the artifact of partition '{KEY}' version 1 does not load" in detail
        assert "AttributeError" in detail and "model not served" in detail
        v2 = c.post(
            f"/v2/models/{KEY}/infer",
            json={"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64",
                              "data": [2.0, 1, 0]}]},
        )  # fmt: skip
        assert v2.status_code == 500 and "does not load" in v2.json()["error"], v2.text
        other = c.post("/v1/partitions/store=1,brand=tropicana/predict", json=rows)
        assert other.status_code == 200, other.text  # only that partition is refused


def test_a_deleted_artifact_is_a_500_on_every_route_and_its_promotion_a_409(
    registry_path: Path,
) -> None:
    """A production artifact deleted from the store: a 500 with the JSON body naming partition
    and version on /v1, the batch route and V2 (it was a 409 Conflict, which tells a client to
    change its request; no request mends a deleted file). Promoting a version whose artifact is
    gone stays a 409, nothing moved: that request asks for a version in a state that refuses
    it, and another version can be asked for."""
    candidate = TWO_VERSIONS[0]
    with Registry.open(registry_path) as reg:
        for key, version in ((KEY, 1), (candidate, 2)):
            reg.artifacts.delete(reg.get_version(key, version).artifact_sha256)
    said = (
        f"the artifact of partition '{KEY}' version 1 is missing from the artifact store; "
        "model not served"
    )
    row = feature_rows(1)[0]
    settings = Settings(registry=registry_path, admin_token=TOKEN)
    with running_server(settings) as url, httpx.Client(base_url=url) as c:
        one = c.post(f"/v1/partitions/{KEY}/predict", json={"rows": [row]})
        batch = c.post("/v1/predict", json={"rows": [{"store": 2, "brand": "tropicana", **row}]})
        v2 = c.post(
            f"/v2/models/{KEY}/infer",
            json={"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64",
                              "data": [2.0, 1, 0]}]},
        )  # fmt: skip
        promote = c.post(f"/v1/partitions/{candidate}/promote", json={"version": 2},
                         headers=admin())  # fmt: skip
        served = c.post(f"/v1/partitions/{candidate}/predict", json={"rows": [row]})
    assert one.status_code == 500 and one.json() == {"detail": said}, one.text
    assert batch.status_code == 500 and batch.json() == {"detail": said}, batch.text
    assert v2.status_code == 500 and v2.json() == {"error": said}, v2.text
    assert promote.status_code == 409, promote.text
    assert f"'{candidate}'" in promote.json()["detail"] and "missing" in promote.json()["detail"]
    assert served.status_code == 200 and served.json()["version"] == 1, served.text
