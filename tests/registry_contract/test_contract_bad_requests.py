"""A client's mistake is a 4xx on every database, never a 5xx (real uvicorn over SQLite and a
real PostgreSQL server).

A NUL character (``%00``) in text a client sends: PostgreSQL's text cannot hold one and psycopg
refuses it before sending, so a run, a job or a failure looked up by such an id, a page of
partitions after or under such a key, a promotion whose reason held one, each was a 500 (with a
traceback in the router's log) on PostgreSQL, where SQLite answered 404 or an empty page. And a
V2 model version past PostgreSQL's 32-bit integers was a 503.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from factories import RIDGE, SALES_SPEC

import manymodels as mm
from manymodels.exceptions import DataError, ManyModelsError, RunNotFound
from manymodels.registry import Registry
from manymodels.samples import store_sales
from serving.local import running_server
from serving.settings import Settings

TOKEN = "nul-text-admin-token"
KEY = "store=1,brand=dominicks"
SPEC = {
    **SALES_SPEC,
    "name": "nul",
    "candidates": [{"estimator": RIDGE, "params": {"alpha": [1.0]}}],
    "promotion": {"policy": "always"},
}
GETS = [
    ("/v1/runs/ab%00c", {}),
    ("/v1/jobs/ab%00c", {}),
    ("/v1/runs", {"after": "a\x00b"}),
    ("/v1/partitions", {"prefix": "a\x00b"}),
    ("/v1/partitions", {"after": "a\x00b"}),
    ("/v1/failures", {"run": "a\x00b"}),
    ("/v1/failures", {"prefix": "a\x00b"}),
]


@pytest.mark.slow
def test_a_nul_in_an_id_a_key_prefix_or_a_reason_is_a_4xx(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        for weeks in (30, 34):  # v1, then v2 in production: a promotion to v1 moves it
            mm.train(SPEC, store_sales(n_stores=1, weeks=weeks), registry=reg, backend="local")
        assert reg.get_version(KEY).version == 2
    postgresql = not db_url.startswith("sqlite")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    settings = Settings(registry=root, registry_db=db_url, admin_token=TOKEN)
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=30) as http:
        for path, params in GETS:
            r = http.get(path, params=params, headers=headers)
            assert r.status_code < 500, (path, params, r.status_code, r.text)
            if postgresql:
                assert r.status_code == 422, (path, params, r.text)
                assert "NUL character" in r.json()["detail"], r.text
        move = {"version": 1, "reason": "rolled\x00back"}
        r = http.post(f"/v1/partitions/{KEY}/promote", json=move, headers=headers)
        if postgresql:
            assert r.status_code == 422 and "NUL character" in r.json()["detail"], r.text
            # nothing was written: production stays on v2, and a clean reason still moves it
            r = http.post(f"/v1/partitions/{KEY}/promote", json={"version": 1}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["to_version"] == 1 and r.json()["moved"]
    with Registry(root, db_url=db_url) as reg:  # the library says so too, as its own error
        with pytest.raises(DataError if postgresql else RunNotFound) as caught:
            reg.get_run("ab\x00c")
        assert isinstance(caught.value, ManyModelsError)
        assert reg.get_version(KEY).version == 1


@pytest.mark.slow
def test_a_v2_version_past_the_registrys_integers_is_a_404(db_url: str, tmp_path: Path) -> None:
    """``/v2/models/{key}/versions/3000000000`` (metadata and infer) was a 503 "registry
    database unavailable: integer out of range" on PostgreSQL, whose version column is a
    32-bit integer; SQLite, and the /v1 routes' ``?version=`` bound, said the version does not
    exist. A version of 4,301 digits (past Python's int-from-text limit) is a 404 too."""
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        mm.train(SPEC, store_sales(n_stores=1, weeks=30), registry=reg, backend="local")
    inputs = [
        {"name": "price", "datatype": "FP64", "shape": [1], "data": [2.1]},
        {"name": "deal", "datatype": "INT64", "shape": [1], "data": [1]},
        {"name": "feat", "datatype": "INT64", "shape": [1], "data": [0]},
    ]
    settings = Settings(registry=root, registry_db=db_url)
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=30) as http:
        for n in ("2147483647", "2147483648", "3000000000", "9" * 4301):
            model = f"/v2/models/{KEY}/versions/{n}"
            r = http.get(model)
            assert r.status_code == 404, (n[:12], r.text)
            r = http.post(f"{model}/infer", json={"inputs": inputs})
            assert r.status_code == 404, (n[:12], r.text)
        r = http.post(f"/v2/models/{KEY}/versions/1/infer", json={"inputs": inputs})
        assert r.status_code == 200, r.text
