"""The ``holiday_sets`` table (schema 13): each distinct set of a spec's holidays once, which
versions name by hash (``manymodels.holiday_sets``). Written in the transaction that writes
the versions naming them; never deleted (a set is a few kB, one per calendar: ``gc`` leaves
them all, so no version can lose its own)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sqlalchemy import insert, select
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
