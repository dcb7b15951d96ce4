"""The database engine and write transactions: SQLite made safe for one writer, many readers
(and PostgreSQL given the same guarantees with an advisory lock, ``POSTGRESQL_WRITE_BEGIN``).

SQLite runs in WAL mode (readers never block the writer) with a busy timeout, and every write
transaction takes the write lock at its start (``BEGIN IMMEDIATE``), so the reads it makes
before writing see the state it will write over. Database errors become registry errors here.

A registry this process cannot write (a read-only mount, a directory of another user) is
opened read-only, and every write to it is refused with ``ReadOnlyRegistry`` before it starts.
SQLite reads a WAL database through its ``-shm`` file, which a plain open — and even
``?mode=ro`` — creates when it is missing: on a read-only directory that is "unable to open
database file" (https://www.sqlite.org/wal.html#readonly). Each connection chooses:

- ``?mode=ro`` when the ``-shm`` file exists (a writer has the database open through another,
  writable mount, or left it there): SQLite ≥ 3.22 reads it from a read-only ``-shm``, takes
  its read locks, and sees every commit of that writer — correct with writers about;
- ``?immutable=1`` only when the *filesystem* is mounted read-only and there is no ``-wal``
  content. Immutable means no locks and no change detection, and SQLite does not even look at
  a ``-wal`` file, so it is correct only while nobody writes. Nobody writes a read-only
  filesystem itself; a read-only *bind* of a writable directory (a container's ``:ro``
  volume) can be written through its source, but a writer with the database open has its
  ``-wal`` and ``-shm`` beside it, and then the next connection uses ``mode=ro``. Read-only
  engines pool no connections, so each read transaction decides afresh; what remains is a
  writer that opens, commits *and* checkpoints into the file during one read transaction of
  a few milliseconds, which that read may see half of (an error, or rows of both states).
- A directory that is only closed to this user (its filesystem is writable, so someone may
  be writing) is never opened immutable: without a ``-shm`` file it cannot be read, and the
  error says so.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
import urllib.parse
import weakref
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    Engine,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import NullPool

from manymodels.exceptions import (
    ReadOnlyRegistry,
    RegistryError,
    VersionConflict,
    first_line,
)
from manymodels.registry import pg_silence
from manymodels.registry.pg_connect import pg_connect_arguments, with_psycopg
from manymodels.registry.pg_text import refuse_nul_text

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


# engine → (the database's directory, why it cannot be written), for read-only engines
_READ_ONLY: weakref.WeakKeyDictionary[Engine, tuple[str, str]] = weakref.WeakKeyDictionary()


def sqlite_file(url: str) -> str | None:
    """The absolute path of the SQLite file ``url`` names; ``None`` for another database, an
    in-memory one or a ``file:`` URI (SQLite's own rules apply to those)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    return None if name.startswith("file:") else os.path.abspath(name)


def mounted_read_only(path: str) -> bool:
    """Whether the filesystem holding ``path`` is mounted read-only (for everyone, root too)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # gone, or no statvfs (Windows): not known to be
        return False


def read_only_reason(directory: str, file: str | None = None) -> str | None:
    """Why this process cannot write in ``directory`` (and to ``file`` there), or ``None``.

    ``os.access`` rather than a trial write: it writes nothing, and answers EROFS for root on
    a read-only mount, where permission bits alone would say yes."""
    if not os.path.isdir(directory):
        return None  # nothing there yet: whatever creates it reports its own error
    if mounted_read_only(directory):
        return "its filesystem is mounted read-only"
    if not os.access(directory, os.W_OK) or (
        file is not None and os.path.exists(file) and not os.access(file, os.W_OK)
    ):
        return "this user may not write to it"
    return None


def read_only_error(directory: str, why: str, doing: str = "") -> ReadOnlyRegistry:
    doing = f": {doing}" if doing else ": it can be read, not written"
    return ReadOnlyRegistry(f"registry at {directory} is read-only ({why}){doing}")


def engine_read_only(engine: Engine) -> tuple[str, str] | None:
    """``(directory, why)`` when ``engine`` was opened read-only, else ``None``."""
    return _READ_ONLY.get(engine)


def _connect_read_only(path: str, why: str) -> sqlite3.Connection:
    """A read-only connection: ``mode=ro`` when SQLite can read the WAL, ``immutable=1`` only on
    read-only media with nothing in a ``-wal`` file (see the module's docstring)."""
    directory = os.path.dirname(path)
    if not os.path.exists(path):
        raise read_only_error(directory, why, "cannot create its database")
    on_read_only_media = mounted_read_only(directory)
    failure: sqlite3.OperationalError | None = None
    if os.path.exists(f"{path}-shm") or not on_read_only_media:
        conn = _sqlite_connect(path, "mode=ro")
        try:
            conn.execute("PRAGMA schema_version").fetchone()  # reads the header, and the WAL
            return conn
        except sqlite3.OperationalError as e:
            conn.close()
            failure = e
    if on_read_only_media and _wal_bytes(path) == 0:
        return _sqlite_connect(path, "immutable=1")
    if on_read_only_media:
        raise RegistryError(
            f"cannot read registry database {path}: it is on a read-only filesystem with "
            "changes still in its -wal file, which SQLite reads only through a -shm file it "
            "cannot create there (open the registry once where it is writable — any command "
            "folds the -wal into the database — then mount it read-only again)"
        )
    raise RegistryError(
        f"cannot read registry database {path} ({failure}): this user may not write to its "
        "directory, and SQLite reads a WAL database through a -shm file it must create there "
        "(give this user write access, or mount the registry read-only: a read-only mount is "
        "read without one)"
    )


def _sqlite_connect(path: str, mode: str) -> sqlite3.Connection:
    uri = f"file:{urllib.parse.quote(path)}?{mode}"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)


def _wal_bytes(path: str) -> int:
    try:
        return os.path.getsize(f"{path}-wal")
    except OSError:
        return 0


def _refuse_unknown_scheme(url: str) -> None:
    """``RegistryError`` for a URL whose scheme names no database SQLAlchemy knows (a typo),
    or one it knows that is not SQLite or PostgreSQL: a typo
    (``postgresq://``) read "NoSuchModuleError: Can't load plugin: sqlalchemy.dialects:
    postgresq", SQLAlchemy's words for its plugin system, not what to write instead."""
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except NoSuchModuleError:
        shown = parsed.render_as_string(hide_password=True)
        raise RegistryError(
            f"registry database {shown}: {parsed.drivername!r} is no database scheme "
            "manymodels knows (give postgresql+psycopg://… or sqlite:///…)"
        ) from None
    except Exception:  # an unreadable URL: create_engine says so, as it always has
        return
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):  # a database SQLAlchemy knows, we do not
        # "the driver is not installed: no module 'MySQLdb'" sent a user to install one, to
        # meet a schema and locks written for these two only
        shown = parsed.render_as_string(hide_password=True)
        raise RegistryError(
            f"registry database {shown}: a registry is kept in SQLite or PostgreSQL, not "
            f"{backend} (give postgresql+psycopg://… or sqlite:///…)"
        )


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

    A SQLite file this process cannot write is opened read-only (the module's docstring says
    how), and a write transaction on it raises ``ReadOnlyRegistry`` before it begins.

    On PostgreSQL a write transaction takes an advisory lock instead (``POSTGRESQL_WRITE_BEGIN``).
    """
    url = with_psycopg(url)
    _refuse_unknown_scheme(url)
    is_sqlite = url.startswith("sqlite")
    path = sqlite_file(url) if is_sqlite else None
    why = read_only_reason(os.path.dirname(path), path) if path is not None else None
    if path is not None and why is not None:
        engine = create_engine(
            url, creator=functools.partial(_connect_read_only, path, why), poolclass=NullPool
        )
        _READ_ONLY[engine] = (os.path.dirname(path), why)
    elif is_sqlite:
        engine = create_engine(
            url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False}
        )
    else:
        postgresql = make_url(url).get_backend_name() == "postgresql"
        try:
            engine = (
                create_engine(
                    url,
                    isolation_level="REPEATABLE READ",
                    pool_pre_ping=True,
                    connect_args=pg_connect_arguments(url),
                )
                if postgresql
                else create_engine(url)
            )
        except ModuleNotFoundError as e:  # the URL's driver is not installed
            extra = (
                " (PostgreSQL: a postgresql+psycopg:// URL, pip install 'manymodels[postgres]')"
                if postgresql
                else ""
            )
            raise RegistryError(
                f"the registry database's driver is not installed: no module {e.name!r}{extra}"
            ) from e
    if is_sqlite:
        read_only = _READ_ONLY.get(engine)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # no implicit BEGIN: _begin_sqlite issues it
            cur = dbapi_conn.cursor()
            if read_only is None:
                _wal(cur)
                cur.execute("PRAGMA synchronous=NORMAL")
            else:
                cur.execute("PRAGMA query_only=ON")  # a write that slipped through fails too
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_sqlite(conn: Connection) -> None:
            write = conn.get_execution_options().get(WRITE_OPTION)
            if write and read_only is not None:
                raise read_only_error(*read_only)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    elif engine.dialect.name == "postgresql":
        if engine.dialect.driver == "psycopg":  # its waits for an answer are bounded
            event.listen(engine, "do_connect", pg_silence.connect)
            event.listen(engine, "before_cursor_execute", pg_silence.tag_statement, retval=True)
        refuse_nul_text(engine)  # a NUL in text: the caller's mistake, not a crash

        @event.listens_for(engine, "begin")
        def _begin_postgresql(conn: Connection) -> None:
            if conn.get_execution_options().get(WRITE_OPTION):
                # any lock it waits for may be held up to its lock_timeout
                pg_silence.lock_waits(conn, BUSY_TIMEOUT_SECONDS)
                for statement in POSTGRESQL_WRITE_BEGIN:
                    conn.exec_driver_sql(statement)

        @event.listens_for(engine, "commit")  # before the COMMIT is sent
        @event.listens_for(engine, "rollback")
        def _ended_postgresql(conn: Connection) -> None:
            pg_silence.lock_waits(conn, 0.0)

    return engine


# PostgreSQL has no database-wide write lock to take with ``BEGIN IMMEDIATE``; a write
# transaction takes this transaction-scoped advisory lock first instead (released at commit or
# rollback), so writers are serialised exactly as on SQLite: the next version number, where an
# alias points and the alias history are read under the lock that covers their write, from
# every process. It runs at READ COMMITTED (each statement sees what committed before it, so
# everything after the lock sees the previous writer's commit), while reads keep one snapshot
# per transaction (the engine's REPEATABLE READ), as SQLite's deferred ``BEGIN`` does.
POSTGRESQL_WRITE_LOCK = 0x6D616E796D6F64  # "manymod"; advisory locks are per database
POSTGRESQL_WRITE_BEGIN = (
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
    f"SET LOCAL lock_timeout = '{int(BUSY_TIMEOUT_SECONDS * 1000)}ms'",
    f"SELECT pg_advisory_xact_lock({POSTGRESQL_WRITE_LOCK})",
)


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
            raise RegistryError(f"registry database unavailable: {first_line(e.orig or e)}") from e
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
            raise VersionConflict(
                f"registry write conflicted with another writer: {first_line(e.orig or e)}"
            ) from e
        except OperationalError as e:
            raise _write_failed(self._engine, e) from e
        finally:
            self._conn.close()
        if isinstance(ev, IntegrityError):
            raise VersionConflict(
                f"registry write conflicted with another writer: {first_line(ev.orig or ev)}"
            ) from ev
        if isinstance(ev, OperationalError):
            raise _write_failed(self._engine, ev) from ev
        return False


def _write_failed(engine: Engine, error: OperationalError) -> RegistryError:
    """``ReadOnlyRegistry`` when SQLite says the database became read-only (remounted under a
    running process), a plain ``RegistryError`` otherwise."""
    name = getattr(error.orig, "sqlite_errorname", "")
    path = sqlite_file(str(engine.url))
    if name.startswith("SQLITE_READONLY") and path is not None:
        directory = os.path.dirname(path)
        why = read_only_reason(directory, path) or f"SQLite says: {first_line(error.orig or error)}"
        return read_only_error(directory, why)
    return RegistryError(f"registry write failed: {first_line(error.orig or error)}")


def _wal(cur: Any) -> None:
    """Switch a SQLite database to WAL, waiting for the lock as a write would.

    The switch of a *new* file needs its exclusive lock, and SQLite answers "database is
    locked" at once rather than through the busy timeout: in 2 of 40 rounds of six processes
    opening one new registry together, one failed (tests/registry_contract). Once a file is
    in WAL mode (persistent), the pragma takes no lock and returns at once."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
