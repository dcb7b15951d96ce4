"""Fixtures of the registry contract suite: every test runs once per database — a SQLite file
and a real PostgreSQL server (one per session, a fresh database per test).

Without PostgreSQL's binaries or its driver the PostgreSQL half is skipped with the reason on a
user's machine, and fails in CI (``CI=true``), where a missing server is a broken set-up.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pgcluster import (
    CLOCK_AHEAD,
    CONNECT,
    SILENCE,
    PostgresServer,
    find_icu_bin_dir,
    running,
    running_own_server,
    unavailable,
)

from manymodels.registry import Registry, pg_connect, pg_silence

DATABASES = ["sqlite", "postgresql"]

Plans = Callable[[Registry, Iterable[tuple[str, Any]]], list[tuple[str, str]]]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, under a temporary directory."""
    yield from running_own_server()


@pytest.fixture(scope="session")
def icu_postgres() -> Iterator[PostgresServer]:
    """A server built with ICU, for databases of a linguistic collation
    (``test_contract_collation``): the pgserver wheel's is built without, Debian's
    ``postgresql`` with (CI installs it)."""
    bin_dir = find_icu_bin_dir()
    if bin_dir is None:
        reason = "no PostgreSQL server built with ICU (apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL with ICU is required in CI: {reason}")
        pytest.skip(reason)
    if importlib.util.find_spec("psycopg") is None:
        unavailable("no PostgreSQL driver (psycopg)")
    yield from running(PostgresServer(bin_dir, in_memory=True))


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the requesting module's own, for tests that freeze it or hold it
    busy: no test of another module meets it so."""
    yield from running_own_server()


@pytest.fixture
def short_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry's silence and connect bounds shortened to ``pgcluster.SILENCE`` and
    ``CONNECT``: a frozen or silent server is given up on in seconds, not minutes."""
    monkeypatch.setattr(pg_silence, "PG_SILENCE_SECONDS", SILENCE)
    monkeypatch.setattr(pg_connect, "PG_CONNECT_TIMEOUT_SECONDS", CONNECT)


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty registry database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.database()


@pytest.fixture
def reg(db_url: str, tmp_path: Path) -> Iterator[Registry]:
    """A new registry on ``db_url``, its artifacts in a local directory."""
    with Registry(tmp_path / "registry", db_url=db_url) as registry:
        yield registry


@pytest.fixture
def clock_ahead(postgres: PostgresServer, tmp_path: Path) -> Iterator[Registry]:
    """A new registry on a PostgreSQL server whose clock reads ``CLOCK_AHEAD`` seconds ahead of
    this host's (``PostgresServer.skewed_database``): this host's clock runs 20 min behind
    the database's, as one host's of several sharing one server can. PostgreSQL only: SQLite
    is a file on this host, its clock this host's."""
    with Registry(tmp_path / "registry", db_url=postgres.skewed_database(CLOCK_AHEAD)) as registry:
        yield registry


def _plans(reg: Registry, statements: Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
    """Each of ``statements`` (text, parameters) with its plan on ``reg``'s database, the steps
    joined by `` | ``: SQLite's ``EXPLAIN QUERY PLAN``, PostgreSQL's ``EXPLAIN`` with sequential
    scans off — a test's few rows would be scanned, index or not, and the question is whether
    the query *can* walk the index at 100,000 partitions."""
    with reg.store.engine.connect() as conn:
        postgres = reg.store.engine.dialect.name == "postgresql"
        if postgres:
            conn.exec_driver_sql("SET enable_seqscan = off")
        explain = "EXPLAIN" if postgres else "EXPLAIN QUERY PLAN"
        found = []
        for statement, parameters in statements:
            rows = conn.exec_driver_sql(f"{explain} {statement}", parameters)
            found.append((statement, " | ".join(str(r[-1]) for r in rows)))
        return found


@pytest.fixture
def plans() -> Plans:
    """``_plans``: the query plans of the statements a test captured, on either database."""
    return _plans
