"""The ``holiday_sets`` table (schema 13): each distinct set of a spec's holidays once, which
versions name by hash (``manymodels.holiday_sets``). Written in the transaction that writes
the versions naming them; deleted by ``gc`` once no version names one
(``unused_holiday_sets`` finds them, ``delete_holiday_sets`` deletes them): a calendar
edited every year left every former set behind.

A set is deleted only by one statement under the registry's write lock (``WriteTransaction``:
SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's advisory lock at READ COMMITTED), which every
writer of versions holds from its first statement to its commit: the deletion sees the
versions of every writer before it, and a writer after it finds no set to conflict with and
stores it again. The read before that statement only narrows it to the sets found unused:
it decides nothing, and keeps the sets in use from being read under the lock."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from manymodels import holiday_sets
from manymodels.registry import schema as t
from manymodels.registry.base import StoreBase
from manymodels.registry.entities import NewVersion


def by_hash(versions: Sequence[NewVersion]) -> tuple[list[NewVersion], dict[str, str]]:
    """``versions`` as stored — each plan's holidays replaced by their set's hash — and the
    sets they name (``{sha256: dates as stored}``). Versions of a run share one schema
    object (or a few): each distinct one is rewritten once."""
    done: dict[int, tuple[object, tuple[str, str] | None]] = {}
    sets: dict[str, str] = {}
    out = []
    for v in versions:
        if id(v.feature_schema) not in done:
            done[id(v.feature_schema)] = holiday_sets.stored_form(v.feature_schema)
        schema, named = done[id(v.feature_schema)]
        if named is None:
            out.append(v)
            continue
        sets[named[0]] = named[1]
        out.append(dataclasses.replace(v, feature_schema=schema))  # type: ignore[arg-type]
    return out, sets


def keep(conn: Connection, sets: dict[str, str]) -> None:
    """Insert the sets not stored yet: one that is (another run, another writer at once on
    PostgreSQL) is left as it is — equal hashes, equal dates."""
    rows = [{"sha256": sha, "dates_json": text} for sha, text in sets.items()]
    if conn.dialect.name == "postgresql":
        conn.execute(postgresql.insert(t.holiday_sets).on_conflict_do_nothing(), rows)
    elif conn.dialect.name == "sqlite":
        conn.execute(sqlite.insert(t.holiday_sets).on_conflict_do_nothing(), rows)
    else:  # another database: under the write lock, those present are read first
        q = select(t.holiday_sets.c.sha256).where(t.holiday_sets.c.sha256.in_(list(sets)))
        present = set(conn.execute(q).scalars())
        if fresh := [r for r in rows if r["sha256"] not in present]:
            conn.execute(insert(t.holiday_sets), fresh)


class HolidaySetsMixin(StoreBase):
    def holiday_set(self, sha256: str) -> str | None:
        """One set's dates as stored (compact JSON), by its hash; None when none is: what
        ``holiday_sets.dates`` asks an open registry for a set this process has not seen."""
        q = select(t.holiday_sets.c.dates_json).where(t.holiday_sets.c.sha256 == sha256)
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def unused_holiday_sets(self, *, exclude: Sequence[tuple[str, int]] = ()) -> list[str]:
        """The hashes of the sets no version names (optionally as if the versions ``exclude``
        names were deleted: what ``gc --dry-run`` would free after its pruning): a read,
        outside the write lock, of the sets ``gc`` hands ``delete_holiday_sets`` to check again
        under it (or, a dry run, counts).
        Each set is looked for from the newest version back, to the first that names it and is
        not excluded (a set in use: at once, or past at most ``len(exclude)`` rows); only a set
        none names reads every plan (SQLite: 0.45 s at 300,000 versions)."""
        v = t.model_versions.c
        gone = set(exclude)
        with self.engine.connect() as conn:
            held = conn.execute(select(t.holiday_sets.c.sha256)).scalars().all()
            page = len(gone) + 1
            return [
                sha
                for sha in held
                if not _kept(conn, _naming(sha, v.key, v.version).limit(page), gone)
            ]

    def delete_holiday_sets(self, among: Sequence[str] | None = None) -> int:
        """Delete the sets no version names, of ``among`` (``unused_holiday_sets``' read;
        every set when ``None``), in one statement under the write lock every writer of
        versions holds (the module's docstring): whether a set is named is decided there,
        never by the earlier read, so a set a version names is never deleted; how many went.
        ``among`` keeps the lock to the unused sets: each set in use was read under it too,
        back to the newest version naming it — past every newer version of the other specs
        for a calendar only old versions name (20 such sets, 300,000 versions: 15.6 s of
        every writer waiting on SQLite, whose writers give up after 30 s). None to delete:
        no lock taken."""
        if among is not None and not among:
            return 0
        unnamed = _unnamed(t.holiday_sets.c.sha256)
        chosen = () if among is None else (t.holiday_sets.c.sha256.in_(list(among)),)
        gone = delete(t.holiday_sets).where(*chosen, unnamed)
        with self._begin() as conn:  # under the write lock every writer of versions holds
            return int(conn.execute(gone).rowcount)


def _kept(conn: Connection, versions: Select[Any], gone: set[tuple[str, int]]) -> bool:
    """Whether one of ``versions`` (key, version) is not in ``gone``: read a page at a time
    (PostgreSQL: a server-side cursor, closed here) to the first that is."""
    with conn.execution_options(yield_per=64).execute(versions) as rows:
        return any((key, version) not in gone for key, version in rows)


def _unnamed(sha: Any) -> Any:
    """Whether no version's plan names the set whose hash is ``sha`` (a column): the newest
    naming version's id (``_naming``), a scalar subquery, as ``EXISTS`` drops its order on
    SQLite and read a set in use from the oldest version on (0.3 s at 300,000 versions)."""
    return _naming(sha, t.model_versions.c.id).limit(1).scalar_subquery().is_(None)


def _naming(sha: Any, *columns: Any) -> Select[Any]:
    """``columns`` of the versions whose plan names the set whose hash is ``sha`` (a hash, or
    a column of them), newest first (a set in use is named by the versions written last):
    those whose JSON holds the hash (64 hex digits, elsewhere only by chance, which keeps a
    set: safe). The one test of "a set is named" of gc's read (``unused_holiday_sets``,
    which a dry run counts) and of its DELETE (``_unnamed``): they differ only in what the
    read may skip — the versions a dry run's pruning would delete (``_kept``); a real gc has
    deleted them before it reads."""
    v = t.model_versions.c
    plan = v.feature_schema_json.like(literal("%").concat(sha).concat("%"))
    return select(*columns).where(plan).order_by(v.id.desc())
