"""Schema 15 on every database: a retrain job's run's warnings move from ``data_json``, where
schema 14 kept them beside the upload's fields, into ``jobs.warnings_json``, and the router's
job views (``GET /v1/jobs/{id}``, ``GET /v1/jobs``) answer the same JSON before and after."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from factories import linear_frame, spec_dict
from sqlalchemy import select

from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.registry.engine import now
from manymodels.registry.jobs import JobRecord, router_id
from serving.app import create_app
from serving.settings import Settings

TOKEN = "job-warnings-admin-token"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
PART = "pid=0"
DATA = {"sha256": "ab" * 32, "size": 10, "rows": 2, "format": "json", "filename": None}
SAID = ["the week column holds more than one day of the week", "a gap of 2 periods"]


@contextmanager
def _router(root: Path, db_url: str) -> Iterator[Any]:
    settings = Settings(registry=root, registry_db=db_url, admin_token=TOKEN)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    with TestClient(create_app(settings)) as client:
        yield client


def _views(root: Path, db_url: str) -> dict[str, Any]:
    """Each job's ``GET /v1/jobs/{id}`` and the list, as a router serves them."""
    with _router(root, db_url) as client:
        listed = client.get("/v1/jobs", headers=ADMIN)
        assert listed.status_code == 200, listed.text
        out: dict[str, Any] = {"list": listed.json()}
        for job_id in ("warned", "quiet"):
            r = client.get(f"/v1/jobs/{job_id}", headers=ADMIN)
            assert r.status_code == 200, r.text
            out[job_id] = r.json()
    return out


def _stored(db_url: str, root: Path) -> dict[str, tuple[Any, Any]]:
    """Each job's ``data_json`` and ``warnings_json``, parsed."""
    with Registry.open(root, db_url=db_url) as reg, reg.store.engine.connect() as conn:
        c = t.jobs.c
        rows = conn.execute(select(c.job_id, c.data_json, c.warnings_json))
        return {i: (json.loads(d), w and json.loads(w)) for i, d, w in rows}


def test_a_schema_14_registry_moves_its_jobs_warnings_to_their_column(
    db_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        run = train(spec_dict(), linear_frame(1, 30), reg, backend="local").run
        for job_id, said in (("warned", tuple(SAID)), ("quiet", ())):
            at = now()
            queued = JobRecord(job_id, PART, "queued", "local", router_id(), at, at, data=DATA)
            reg.jobs.submit(queued, lease=60)
            reg.jobs.finish(job_id, "succeeded", history=5, run_id=run.run_id, version=1,
                            production=1, warnings=said)  # fmt: skip
    before = _views(root, db_url)
    assert before["warned"]["warnings"] == SAID and before["quiet"]["warnings"] == []
    assert before["warned"]["decision"] is not None and before["warned"]["version"] == 1
    assert [j["warnings"] for j in before["list"]["jobs"]] == [[], SAID]

    with Registry.open(root, db_url=db_url) as reg, reg.store.engine.begin() as conn:
        # as manymodels wrote schema 14: the warnings in data_json, beside the upload's fields
        c = t.jobs.c
        conn.execute(
            t.jobs.update()
            .where(c.job_id == "warned")
            .values(data_json=json.dumps({**DATA, "warnings": SAID}))
        )
        conn.exec_driver_sql("ALTER TABLE jobs DROP COLUMN warnings_json")
        conn.exec_driver_sql("UPDATE meta SET value = '14' WHERE name = 'schema_version'")
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '14'")

    assert _stored(db_url, root) == {"warned": (DATA, SAID), "quiet": (DATA, None)}
    with Registry.open(root, db_url=db_url) as reg:
        assert reg.store.get_meta("schema_version") == t.SCHEMA_VERSION == "15"
    assert _views(root, db_url) == before
