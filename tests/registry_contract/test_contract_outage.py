"""The router while its PostgreSQL server is down, then back: every read that needs the
database answered 500 "internal server error" with a traceback logged twice (the driver's
own ``OperationalError``, which no handler knew); it is a 503 with a JSON body saying the
registry's database is unavailable, and the router answers again once the server is back,
without a restart. A prediction's 503 (``/v1`` and ``/v2``: a cold load) had no ``Retry-After``,
which the README promises for an outage and ``GET /v1/partitions/{key}``'s had."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from factories import linear_frame, spec_dict
from pgcluster import PORT, PostgresServer, running_own_server

from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    """A server of each test's own (the module-wide one of ``conftest``'s, left stopped by a
    test that failed while it was down, would fail the next test too)."""
    yield from running_own_server()


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    server._run("pg_ctl", "-D", str(server.data), "-w", *args)  # the fixture's own runner


def test_the_router_answers_503_while_postgresql_is_down_and_recovers(
    server: PostgresServer, tmp_path: Path
) -> None:
    db_url = server.database()
    root = tmp_path / "reg"
    with Registry(root, db_url=db_url) as reg:
        train(spec_dict(features=["x0", "x1"]), linear_frame(4), reg, backend="local")
    row = {"t": 5, "x0": 1.0, "x1": 2.0}
    settings = Settings(registry=root, registry_db=db_url, refresh_seconds=0.05)
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=60) as http:
        first = http.post("/v1/partitions/pid=0/predict", json={"rows": [row]})
        assert first.is_success, first.text
        _pg_ctl(server, "-m", "fast", "stop")
        for method, path, body in [
            ("GET", "/v1/partitions/pid=0", None),
            ("POST", "/v1/partitions/pid=2/predict", {"rows": [row]}),  # a cold load
            ("GET", "/v1/runs", None),
        ]:
            r = http.request(method, path, json=body)
            assert r.status_code == 503, (path, r.text)
            assert "registry database" in r.json()["detail"], r.text
            assert r.headers.get("retry-after") == "5", (path, r.headers)
        # the same cold load on the V2 protocol: its 503 tells when to try again too
        tensors = {
            "inputs": [
                {"name": name, "datatype": "FP64", "shape": [1], "data": [row[name]]}
                for name in ("x0", "x1")
            ]
        }
        v2 = http.post("/v2/models/pid=3/infer", json=tensors)
        assert v2.status_code == 503, v2.text
        assert "registry database" in v2.json()["error"], v2.text
        assert v2.headers.get("retry-after") == "5", v2.headers
        assert http.get("/readyz").status_code == 503
        options = f"-c listen_addresses='' -k {server.root} -p {PORT} -c fsync=off"
        _pg_ctl(server, "-l", str(server.log), "-o", options, "start")
        assert http.post("/v1/partitions/pid=2/predict", json={"rows": [row]}).is_success
        assert http.get("/v1/partitions/pid=0").is_success


def test_readiness_tells_why_the_registry_is_unreachable_to_a_token_only(
    server: PostgresServer, tmp_path: Path
) -> None:
    """With read tokens set, /readyz's 503 gave anyone the database driver's reason, which
    names the database's host or socket; a probe needs only the status (as its 200 without a
    token has had no counts since 276a855)."""
    db_url = server.database()
    root = tmp_path / "reg"
    with Registry(root, db_url=db_url) as reg:
        train(spec_dict(features=["x0", "x1"]), linear_frame(4), reg, backend="local")
    reader = {"Authorization": "Bearer read-token-3c8e"}
    settings = Settings(registry=root, registry_db=db_url, read_token="read-token-3c8e")
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=60) as http:
        assert http.get("/readyz").json() == {"status": "ready"}
        _pg_ctl(server, "-m", "fast", "stop")
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            r = http.get("/readyz", headers=headers)
            assert r.status_code == 503 and r.json() == {"detail": "registry unreachable"}
            assert r.headers.get("retry-after") == "5", r.headers  # an outage, as others
        said = http.get("/readyz", headers=reader)
        assert said.status_code == 503 and said.headers.get("retry-after") == "5"
        why = said.json()["detail"]
        assert why.startswith("registry unreachable: registry database unavailable: "), why
        assert ".s.PGSQL" in why  # the driver's reason (local paths shown to an admin only)
