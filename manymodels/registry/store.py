"""SQL store: entities in, entities out; database errors translated at this boundary.

``SqlStore`` is composed of one mixin per job — ``runs`` (runs and their outcomes), ``writes``
(versions, aliases, pruning), ``reads`` and ``checks`` (consistency reads) — on a shared
``base``; this module opens the database (creating or checking its schema) and combines them.
A database is only created on request (``create=True``); opening one that is missing, empty
or another program's is an error.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from sqlalchemy import URL, insert, inspect, make_url, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from manymodels import holiday_sets
from manymodels.exceptions import NoRegistry, RegistryError, first_line
from manymodels.registry import pg_silence
from manymodels.registry import schema as t
from manymodels.registry.base import meta_value, put_meta
from manymodels.registry.bulk import _bulk_insert as _bulk_insert
from manymodels.registry.bulk import _insert_rows as _insert_rows
from manymodels.registry.checks import ChecksMixin
from manymodels.registry.damage import watch_damage
from manymodels.registry.engine import (
    WRITE_OPTION,
    engine_read_only,
    make_engine,
    now,
    read_only_error,
    sqlite_file,
)
from manymodels.registry.holiday_rows import HolidaySetsMixin
from manymodels.registry.jobs import JobTable
from manymodels.registry.listing import ListingMixin
from manymodels.registry.migrations import check_version, record_new, upgrade
from manymodels.registry.model_rows import ModelRowsMixin
from manymodels.registry.named import NamedReadsMixin
from manymodels.registry.reads import ProductionRef
from manymodels.registry.references import ReferencesMixin
from manymodels.registry.runs import RunsMixin
from manymodels.registry.writes import _PARTITION_COLUMNS as _PARTITION_COLUMNS
from manymodels.registry.writes import _RUN_PARTITION_COLUMNS as _RUN_PARTITION_COLUMNS
from manymodels.registry.writes import WritesMixin

# ``now`` and ``ProductionRef`` (and, for the tests of ``record()``'s fast path, the ``as``
# imports above) are re-exported: they were defined or imported here before the split, and
# the pipeline, serving, tests and benchmarks import them from here.
__all__ = ["ProductionRef", "SqlStore", "now"]


class SqlStore(
    RunsMixin,
    WritesMixin,
    ListingMixin,
    ChecksMixin,
    ModelRowsMixin,
    NamedReadsMixin,
    ReferencesMixin,
    HolidaySetsMixin,
):
    """The registry's metadata in a SQL database.

    ``create=False`` opens an existing registry only: a missing SQLite file or a database
    without tables is ``NoRegistry``, and nothing is written to it (not even SQLite's WAL
    header), so reading a wrong path never leaves an empty registry behind. ``create=True``
    makes the tables of an empty database. A database holding other tables than a
    registry's is refused either way. ``before_create`` is called once the database is found
    empty, before its tables are made: what must hold for a new registry (its artifact
    store's bucket) refuses it with nothing made — for a SQLite file not there yet, before
    the file and its directory are made.
    """

    def __init__(
        self, url: str, *, create: bool = True, before_create: Callable[[], None] | None = None
    ) -> None:
        self.url = url
        self._before_create = before_create
        where = describe_url(url)
        try:
            make_url(url)
        except (SQLAlchemyError, ValueError) as e:  # ValueError: a port that is no number
            # the exception's text may quote the URL, password and all: not shown
            raise RegistryError(
                f"cannot open registry database {where}: not a database URL SQLAlchemy can "
                f"read ({type(e).__name__}; the form is dialect+driver://user@host/database)"
            ) from None
        if create and before_create is not None and _missing_sqlite_file(url):
            # a new SQLite file: its store's checks first, the file and its directories made
            # only once they pass. Made first, a refusal left them behind (a 4 KB file, no
            # table), and deleting it after is unsound: a train of the same new path that
            # opened it meanwhile failed ('disk I/O error') or lost its run into the unlinked
            # file. Another process making the file meanwhile ran the same checks first.
            before_create()
            self._before_create = None  # asked: not again once the file is found empty
        made = _make_sqlite_directory(url, where) if create else None
        if not create:
            _require_sqlite_file(url, where)
        try:
            try:
                self.engine = make_engine(url)
            except SQLAlchemyError as e:
                raise _open_error(where, e) from e
            except (ValueError, TypeError) as e:  # a query option's value (?timeout=abc):
                raise RegistryError(  # a traceback from SQLAlchemy's coercion before
                    f"cannot open registry database {where}: a query option's value cannot "
                    f"be read ({type(e).__name__}: {first_line(e)})"
                ) from None
            try:
                self._open(where, create=create)
            except SQLAlchemyError as e:
                self.engine.dispose()
                raise _open_error(where, e) from e
            except BaseException:
                self.engine.dispose()
                raise
            if self.engine.dialect.name == "sqlite":  # after the open, whose errors say "open"
                watch_damage(self.engine, where)
        except BaseException:
            if made is not None:
                _remove_made(*made)
            raise
        holiday_sets.watch(self.holiday_set)  # sets its versions name, asked for by hash

    def _open(self, where: str, *, create: bool) -> None:
        found = self._schema_version(where)
        if found is None:  # an empty database
            if not create:
                raise NoRegistry(f"registry database {where} is empty: it holds no registry")
            if self._before_create is not None:
                self._before_create()
            found = self._create()
        check_version(found, where)  # a newer registry is refused before anything is written
        if found != t.SCHEMA_VERSION:
            if (read_only := engine_read_only(self.engine)) is not None:
                raise read_only_error(
                    *read_only,
                    f"its schema (version {found}) must first be upgraded to version "
                    f"{t.SCHEMA_VERSION}, which writes: open it once where it is writable",
                )
            conn = self.engine.connect().execution_options(**{WRITE_OPTION: True})
            # a step may rebuild the indexes of a big table in one silent statement (schema
            # 9: 22 s for 6 million versions): not cut while the server says it is at work
            with pg_silence.long_statements(), conn, conn.begin():
                # read again under the write lock: another process may have upgraded it
                now_found = conn.execute(
                    select(t.meta.c.value).where(t.meta.c.name == "schema_version")
                ).scalar()
                if now_found != t.SCHEMA_VERSION:
                    upgrade(conn, str(now_found), where)

    def _create(self) -> str:
        """Make every table and record the schema version, under the write lock; returns
        the recorded version (another process may have made them first)."""
        conn = self.engine.connect().execution_options(**{WRITE_OPTION: True})
        with conn, conn.begin():
            t.metadata.create_all(conn)
            found = conn.execute(
                select(t.meta.c.value).where(t.meta.c.name == "schema_version")
            ).scalar()
            if found is None:
                found = t.SCHEMA_VERSION
                conn.execute(insert(t.meta).values(name="schema_version", value=found))
                record_new(conn)
        return str(found)

    @cached_property
    def jobs(self) -> JobTable:
        """The routers' retrain jobs (``manymodels.registry.jobs``)."""
        return JobTable(self.engine)

    def close(self) -> None:
        holiday_sets.unwatch(self.holiday_set)  # another registry's set is not asked of it
        self.engine.dispose()

    def ping(self) -> None:
        """Raise ``RegistryError`` unless the database answers (a readiness check)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1)).scalar()
        except SQLAlchemyError as e:
            why = first_line(getattr(e, "orig", None) or e)  # not SQLAlchemy's 2-4 lines
            raise RegistryError(f"registry database unavailable: {why}") from e

    def _schema_version(self, where: str) -> str | None:
        """The recorded schema version; ``None`` for an empty database (a read only: opening
        an existing registry takes no write lock).

        A database with tables but no ``meta`` table is someone else's: refused, never
        written into. A registry missing one of today's tables gets it with the version
        recorded (as it did before opening checked this) when it is at today's version — an
        older one gets its tables from its migrations; one missing its version row is recorded
        as today's.
        """
        with self.engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            if not names:
                return None
            if t.meta.name not in names:
                shown = ", ".join(sorted(names)[:5]) + (", …" if len(names) > 5 else "")
                raise RegistryError(
                    f"registry database {where} is not a manymodels registry (it holds other "
                    f"tables: {shown}); refusing to write into it"
                )
            found = conn.execute(
                select(t.meta.c.value).where(t.meta.c.name == "schema_version")
            ).scalar()
        if found is None or (found == t.SCHEMA_VERSION and not set(t.metadata.tables) <= names):
            return self._create()
        return str(found)

    # ---------------------------------------------------------------------------- meta
    def get_meta(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            return meta_value(conn, name)

    def meta_once(self, name: str, value: str) -> str:
        """The ``meta`` row ``name``, written as ``value`` if it is not there yet: in one write
        transaction, so two processes asking at once get the same answer."""
        conn = self.engine.connect().execution_options(**{WRITE_OPTION: True})
        with conn, conn.begin():
            found = meta_value(conn, name)
            if found is not None:
                return found
            put_meta(conn, name, value)
            return value

    def set_meta(self, name: str, value: str | None) -> None:
        """Write (or, with ``None``, remove) one ``meta`` row, in one transaction."""
        conn = self.engine.connect().execution_options(**{WRITE_OPTION: True})
        with conn, conn.begin():
            put_meta(conn, name, value)


def _open_error(where: str, e: SQLAlchemyError) -> RegistryError:
    """One line: the driver's own message, without SQLAlchemy's SQL echo and link."""
    cause = e.orig if isinstance(e, DBAPIError) and e.orig is not None else e
    return RegistryError(
        f"cannot open registry database {where}: {type(e).__name__}: {first_line(cause)}"
    )


def describe_url(url: str) -> str:
    """How messages name a database: a SQLite file by its path, others by URL without the
    password."""
    try:
        parsed = make_url(url)
    except Exception:  # SQLAlchemy's own, or ValueError for a port that is not a number
        return _masked(url)
    if url.count("@") > 1:  # an unencoded "@" in a password: part of it would show as host
        return _masked(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return str(parsed.database)
    shown = _without_query_secrets(parsed).render_as_string(hide_password=True)
    return shown.replace("%2A%2A%2A", "***")  # the query's mask, as the password's reads


def _masked(url: str) -> str:
    """A URL SQLAlchemy cannot read, for a message: whatever stands before its last ``@``
    (after the scheme) and any ``password=`` value hidden, however malformed the rest."""
    if "@" in url:
        head, _, host = url.rpartition("@")
        scheme = head.split("//", 1)[0] + "//" if "//" in head else ""
        url = f"{scheme}***@{host}"
    return re.sub(r"(?i)(password=)[^&;]*", r"\1***", url)


def _without_query_secrets(parsed: URL) -> URL:
    """``?password=…`` (libpq reads it there too) masked like the URL's own password."""
    hidden = {k: "***" for k in parsed.query if "password" in k.lower()}
    return parsed.update_query_dict(hidden) if hidden else parsed


def url_without_password(url: str) -> str:
    """A database URL to print in a command for someone to run: the URL itself, its password
    left out (a ``~/.pgpass`` or ``PGPASSWORD`` supplies it, as the docs advise)."""
    try:
        parsed = make_url(url)
    except Exception:
        return describe_url(url)
    if url.count("@") > 1:
        return describe_url(url)
    bare = parsed._replace(password=None)  # set(password=None) keeps it
    query = {k: v for k, v in bare.query.items() if "password" not in k.lower()}
    return bare.set(query=query).render_as_string(hide_password=False)


def _make_sqlite_directory(url: str, where: str) -> tuple[Path, Path] | None:
    """The directory of a new SQLite database, made as a new registry's directory is
    (``--registry a/b/reg`` makes ``a/b/reg``): SQLite creates the file, not its directory,
    and ``--registry-db sqlite:///new-dir/r.db`` failed with "unable to open database file".
    Returns ``(directory, the first directory made)`` for a failed start to take back, or
    ``None`` when nothing was made."""
    path = sqlite_file(url)
    if path is None or os.path.lexists(path):
        return None
    directory = Path(path).parent
    if directory.is_dir():
        return None
    name = make_url(url).database or ""
    if name.startswith("~"):  # neither a shell nor SQLite expands it inside a URL
        raise RegistryError(
            f"cannot create the directory of registry database {where}: '~' is not expanded "
            f"in a URL (a directory named '~' would be made here); give the full path, "
            f"sqlite:///{os.path.expanduser(name)}"
        )
    first = next((p for p in reversed([directory, *directory.parents]) if not p.exists()), None)
    try:
        directory.mkdir(parents=True, exist_ok=True)  # another process may race us
    except OSError as e:  # a parent that is a file, a read-only filesystem…
        raise RegistryError(
            f"cannot create the directory of registry database {where}: {first_line(e)}"
        ) from None
    return (directory, first) if first is not None else None


def _missing_sqlite_file(url: str) -> bool:
    """Whether ``url`` names a SQLite file that is not there (nor a dangling link to one):
    opening it would create it."""
    path = sqlite_file(url)
    return path is not None and not os.path.lexists(path)


def _remove_made(directory: Path, first: Path) -> None:
    """Remove the directories ``_make_sqlite_directory`` made, if still empty: a failed start
    leaves none behind (a database file made in one stays, and so does its directory)."""
    with contextlib.suppress(OSError):
        for made in [directory, *directory.parents]:
            made.rmdir()
            if made == first:
                break


def _require_sqlite_file(url: str, where: str) -> None:
    """``NoRegistry`` for a SQLite file that is missing or empty (0 bytes), checked before
    connecting: SQLite would create the one and write a header into the other."""
    try:
        parsed = make_url(url)
    except SQLAlchemyError:
        return  # connecting says why
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(str(parsed.database))
    if str(parsed.database).startswith("file:"):
        return  # a URI filename: SQLite's own rules apply
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NoRegistry(f"no registry database at {where}") from None
    except OSError:
        return  # unreadable: connecting says why
    if size == 0:
        raise NoRegistry(f"registry database {where} is empty: it holds no registry")
