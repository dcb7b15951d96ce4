"""Reads of the keys a command names: O(keys named) rows, by primary key, at any number of
partitions. ``alias_table`` and the listings read the whole table or a page of it; a command
about a few partitions (``forecast --partitions``, ``score`` of a few keys' rows) reads these.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from manymodels.keys import FALLBACK_KEY
from manymodels.registry import schema as t
from manymodels.registry.base import StoreBase
from manymodels.registry.engine import batches
from manymodels.registry.entities import RETIRED


def alias_versions_in(conn: Connection, keys: Sequence[str], alias: str) -> dict[str, int]:
    """``{key: version}`` of ``alias`` for those of ``keys`` that have it, on ``conn`` (a
    write transaction's own, when an alias move reads what it replaces)."""
    c = t.aliases.c
    out: dict[str, int] = {}
    for batch in batches(keys):
        q = select(c.key, c.version).where(and_(c.alias == alias, c.key.in_(batch)))
        out.update((k, v) for k, v in conn.execute(q))
    return out


def retired_in(conn: Connection, key: str) -> int | None:
    """The version ``retire`` moved ``key``'s production away from (its ``RETIRED`` row), or
    ``None``: one primary-key read on ``conn`` (a write transaction's own, when an alias move
    refuses a key). Only a refusal's path reads it (a retired key has no production)."""
    c = t.aliases.c
    q = select(c.version).where(and_(c.key == key, c.alias == RETIRED))
    version: int | None = conn.execute(q).scalar()
    return version


class NamedReadsMixin(StoreBase):
    """``SqlStore``'s reads of named keys."""

    def retired_from(self, key: str) -> int | None:
        """The version ``key`` was retired from (``retired_in``), or ``None``: what a refusal
        of a retired partition says instead of "never promoted" (the router's 404s)."""
        with self.engine.connect() as conn:
            return retired_in(conn, key)

    def alias_versions(self, keys: Sequence[str], alias: str = "production") -> dict[str, int]:
        """``{key: version}`` of ``alias`` for those of ``keys`` that have it: the rows of the
        keys named, by the primary key's index in batched ``IN`` lists (O(len(keys)), where
        ``alias_table`` reads every partition's)."""
        with self.engine.connect() as conn:
            return alias_versions_in(conn, sorted(set(keys)), alias)

    def alias_in_use(self, alias: str) -> bool:
        """Whether a partition other than the fallback has ``alias``: one row of the
        ``(alias, …)`` index, to tell a misspelt alias from one the keys asked for lack."""
        c = t.aliases.c
        q = select(c.key).where(and_(c.alias == alias, c.key != FALLBACK_KEY)).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None

    def one_at_alias(self, alias: str) -> tuple[str, int] | None:
        """``(key, version)`` of one partition other than the fallback with ``alias``: one row
        of the ``(alias, …)`` index (what versions of one spec look like, when the keys a
        command was given have none)."""
        c = t.aliases.c
        q = select(c.key, c.version).where(and_(c.alias == alias, c.key != FALLBACK_KEY))
        with self.engine.connect() as conn:
            row = conn.execute(q.limit(1)).first()
        return None if row is None else (row[0], row[1])

    def key_values_of(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``{key: its key values as recorded}`` (``{"code": "007"}``, ``{"code": 7}``) for
        those of ``keys`` that are partitions: the types the data's own keys were trained
        with, by primary key."""
        c = t.partitions.c
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for batch in batches(sorted(set(keys))):
                q = select(c.key, c.key_json).where(c.key.in_(batch))
                out.update((k, json.loads(text)) for k, text in conn.execute(q))
        return out
