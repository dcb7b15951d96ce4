"""A PostgreSQL registry behind PgBouncer in transaction pooling, the usual way many routers
and workers share a database's few connections: each transaction of a client may run on
another server connection.

psycopg prepares a statement on the server once a connection has run it five times
(``prepare_threshold``); a prepared statement lives in one server connection, which the
pooler then hands to another client, or not back to this one. Every read a router repeats
(an alias, a version, a partition) failed after a few requests: "prepared statement
"_pg3_0" already exists" on the connection that met another's, "… does not exist" on the one
that did not find its own — a 503 from the router, an ``error: registry database
unavailable`` from a command. Statements are no longer prepared on the server.

A real PgBouncer 1.18 (Debian's ``pgbouncer``; skipped without it) in front of a real server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pgcluster import PGBOUNCER_PORT, PostgresServer, pgbouncer
from sqlalchemy import make_url, select

from manymodels.registry import Registry
from manymodels.registry import schema as t

REPEATS = 8  # past psycopg's prepare_threshold (5)


@pytest.fixture(scope="module")
def pooled(server: PostgresServer) -> Iterator[tuple[PostgresServer, Path]]:
    """The module's own server behind a PgBouncer of one server connection per database:
    every client's transactions meet on it, as a busy pool's would, in turn."""
    with pgbouncer(server, pool_size=1) as root:
        yield server, root


def test_two_pooled_connections_repeating_a_read_through_the_pooler_do_not_fail(
    pooled: tuple[PostgresServer, Path], tmp_path: Path
) -> None:
    """Two of a registry's pooled connections (two threads of a router, two routers' alike)
    each repeat the same reads, a transaction at a time. Was: ``DuplicatePreparedStatement:
    prepared statement "_pg3_0" already exists`` at the second one's fifth read."""
    server, root = pooled
    name = make_url(server.database()).database
    db_url = f"postgresql+psycopg://postgres@/{name}?host={root}&port={PGBOUNCER_PORT}"
    with Registry(tmp_path / "registry", db_url=db_url) as reg:
        engine = reg.store.engine
        with engine.connect() as a, engine.connect() as b:  # two client connections
            for _ in range(REPEATS):
                for conn in (a, b):
                    found = conn.execute(select(t.meta.c.value).where(t.meta.c.name == "x"))
                    assert found.scalar() is None
                    conn.commit()  # the transaction ends: the pooler takes its connection back
        for _ in range(REPEATS):  # and the registry's own reads, through its pool
            reg.list_partitions(limit=5)
            assert reg.count_partitions() == 0
