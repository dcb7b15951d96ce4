"""The database engine and write transactions: SQLite made safe for one writer, many readers.

SQLite runs in WAL mode (readers never block the writer) with a busy timeout, and every write
transaction takes the write lock at its start (``BEGIN IMMEDIATE``), so the reads it makes
before writing see the state it will write over. Database errors become registry errors here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    Engine,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from manymodels.exceptions import (
    RegistryError,
    VersionConflict,
)

Move = tuple[str, str, int, str, str]  # key, alias, version, reason, action
BATCH = 500  # keys per IN (...) clause: well under every database's bound-parameter limit
BUSY_TIMEOUT_SECONDS = 30.0  # how long a SQLite writer waits for the write lock
WRITE_OPTION = "manymodels_write"  # execution option: this connection's transaction writes


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def batches(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def make_engine(url: str) -> Engine:
    """An engine; for SQLite, WAL (readers never block the writer), a busy timeout, and
    serialised writes.

    pysqlite defers ``BEGIN`` until the first INSERT/UPDATE, so the reads a write transaction
    makes before writing (the next version number, where an alias points, the alias history)
    would run outside the write lock and two writers could both act on the same stale state.
    Following SQLAlchemy's pysqlite recipe we issue ``BEGIN`` ourselves: ``BEGIN IMMEDIATE``
    (take the write lock now, waiting up to the busy timeout) for a write transaction — a
    connection opened by ``SqlStore._begin`` — and a plain deferred ``BEGIN`` for reads, which
    under WAL never block and are never blocked.
    """
    is_sqlite = url.startswith("sqlite")
    engine = create_engine(
        url,
        connect_args=(
            {"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False} if is_sqlite else {}
        ),
    )
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # no implicit BEGIN: _begin_sqlite issues it
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_sqlite(conn: Connection) -> None:
            write = conn.get_execution_options().get(WRITE_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class WriteTransaction:
    """``with store._begin() as conn``: one write transaction; DB errors become registry errors.

    The connection is marked as a writer, so on SQLite its transaction starts with
    ``BEGIN IMMEDIATE``: it holds the write lock from its first read to its commit, and writes
    are serialised (see ``make_engine``).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._cm: Any = None

    def __enter__(self) -> Connection:
        conn: Connection | None = None
        try:
            conn = self._engine.connect().execution_options(**{WRITE_OPTION: True})
            self._cm = conn.begin()
            self._cm.__enter__()
        except OperationalError as e:
            if conn is not None:
                conn.close()
            raise RegistryError(f"registry database unavailable: {e.orig}") from e
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        self._conn = conn
        return conn

    def __exit__(self, et: Any, ev: Any, tb: Any) -> Literal[False]:
        assert self._conn is not None
        try:
            self._cm.__exit__(et, ev, tb)
        except IntegrityError as e:
            raise VersionConflict(f"registry write conflicted with another writer: {e.orig}") from e
        except OperationalError as e:
            raise RegistryError(f"registry write failed: {e.orig}") from e
        finally:
            self._conn.close()
        if isinstance(ev, IntegrityError):
            raise VersionConflict(
                f"registry write conflicted with another writer: {ev.orig}"
            ) from ev
        if isinstance(ev, OperationalError):
            raise RegistryError(f"registry write failed: {ev.orig}") from ev
        return False
