"""Browsing a SQLite registry with the standard library: the reads of ``models list``,
``models show``, ``runs list`` and ``runs show``, without SQLAlchemy.

Importing SQLAlchemy alone costs ~0.3 s, six times what starting Python and ``manymodels``
does, and a person browsing a registry waits for it on every command (issue #13). These
reads are the same queries as ``SqlStore``'s (``reads.py``, ``runs.py``), in plain SQL over
``sqlite3``, and return the same entities through the same row mappers (``rows.py``).

It is a fast path, never the only one: ``open_browser`` answers ``None`` for anything it is
not sure of (no SQLite file, a schema version it was not written for), and every read raises
``Unsure`` where ``SqlStore`` would raise an error (an unknown key or run). The caller then
does the same work through ``Registry``, which says what is wrong in its own words — so the
two paths can only differ in speed.
"""

from __future__ import annotations

import json
import sqlite3
from collections import namedtuple
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from manymodels import holiday_sets
from manymodels.registry.entities import (
    AliasMove,
    ModelVersion,
    PartitionOutcome,
    PartitionSummary,
    Run,
)
from manymodels.registry.rows import move_entity, run_entity, summary_entity, version_entity

READABLE_SCHEMAS = ("4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15")
"""Schema versions these queries were checked against (a registry of an older one goes through
``Registry``, which upgrades it). Whoever adds a version adds it here after checking them:
``tests/test_cli_browse.py`` holds ``schema.SCHEMA_VERSION`` to this tuple."""

DB_FILE = "registry.db"  # as manymodels.registry.client.DB_FILE (which imports SQLAlchemy)
BATCH = 500  # keys per IN (...), as manymodels.registry.engine.BATCH


class Unsure(Exception):
    """This read cannot answer as ``SqlStore`` would (an error it would raise, a row it
    would not find): ask ``Registry`` instead."""


def _rows(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Any:
    """Rows with attribute access by column name, as SQLAlchemy's, for ``rows.py``."""
    names = tuple(d[0] for d in cursor.description)
    return _row_type(names)(*row)


_ROW_TYPES: dict[tuple[str, ...], Any] = {}


def _row_type(names: tuple[str, ...]) -> Any:
    found = _ROW_TYPES.get(names)
    if found is None:
        found = _ROW_TYPES[names] = namedtuple("Row", names)
    return found


class Browser:
    """Read-only queries over one registry database file (``sqlite3``, ``mode=ro``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        holiday_sets.watch(self.holiday_set)  # a version naming its holidays by hash

    def holiday_set(self, sha256: str) -> str | None:
        """``SqlStore.holiday_set``: one stored set of holidays by its hash (schema 13; an
        older registry's versions hold theirs inline, and never ask). A failed read raises
        ``Unsure`` with SQLite's words, as ``SqlStore``'s raises its error: read as "no such
        set", it said "holiday set … is not in the registry" of a locked or damaged table."""
        rows = self._all("SELECT dates_json FROM holiday_sets WHERE sha256 = ?", (sha256,))
        return str(rows[0].dates_json) if rows else None

    def close(self) -> None:
        holiday_sets.unwatch(self.holiday_set)
        self.conn.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as e:  # locked, corrupt, a column missing…: Registry says why
            raise Unsure(str(e)) from e

    # ------------------------------------------------------------------------ partitions
    def key(self, key: str) -> str:
        """``Registry.key`` for text: canonical, in the order of the registry's key columns."""
        from manymodels.exceptions import ManyModelsError
        from manymodels.key_lookup import lookup_key  # urllib: models show
        from manymodels.keys import FALLBACK_KEY, decode_key

        meta = self._all("SELECT value FROM meta WHERE name = 'partition_by'")
        if meta and meta[0].value:
            columns: list[str] | None = json.loads(meta[0].value)
        else:
            first = [r.key for r in self._all("SELECT key FROM partitions ORDER BY key LIMIT 2")]
            first = [k for k in first if k != FALLBACK_KEY]
            columns = list(decode_key(first[0])) if first else None
        try:  # ``store=2.0`` for ``store=2``, as Registry
            return lookup_key(key, columns, self._has)
        except ManyModelsError as e:  # not of col=value form, or absent: Registry says why
            raise Unsure(str(e)) from e

    def _has(self, key: str) -> bool:
        return bool(self._all("SELECT key FROM partitions WHERE key = ?", (key,)))

    def list_partitions(self, *, limit: int, offset: int) -> list[PartitionSummary]:
        rows = self._all("SELECT * FROM partitions ORDER BY key LIMIT ? OFFSET ?", (limit, offset))
        return self._summaries(rows)

    def count_partitions(self) -> int:
        return int(self._all("SELECT count(*) AS n FROM partitions")[0].n)

    def has_fallback(self) -> bool:
        """Whether one of ``count_partitions`` is the fallback model's row (one key lookup)."""
        from manymodels.keys import FALLBACK_KEY

        return self._has(FALLBACK_KEY)

    def get_partition(self, key: str) -> PartitionSummary:
        rows = self._all("SELECT * FROM partitions WHERE key = ?", (key,))
        if not rows:
            raise Unsure(f"no partition '{key}'")
        return self._summaries(rows)[0]

    def list_versions(self, key: str) -> list[ModelVersion]:
        rows = self._all("SELECT * FROM model_versions WHERE key = ? ORDER BY version DESC", (key,))
        names = self._aliases_of([key]).get(key, {})
        return [version_entity(r, names) for r in rows]

    def alias_history(self, key: str) -> list[AliasMove]:
        rows = self._all("SELECT * FROM alias_history WHERE key = ? ORDER BY id", (key,))
        return [move_entity(r) for r in rows]

    def _aliases_of(self, keys: Sequence[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for i in range(0, len(keys), BATCH):
            batch = keys[i : i + BATCH]
            marks = ",".join("?" * len(batch))
            for r in self._all(
                f"SELECT key, alias, version FROM aliases WHERE key IN ({marks})", batch
            ):
                out.setdefault(r.key, {})[r.alias] = r.version
        return out

    def _summaries(self, rows: list[Any]) -> list[PartitionSummary]:
        names = self._aliases_of([r.key for r in rows])
        prod: dict[str, ModelVersion] = {}
        pairs = [(k, n["production"]) for k, n in names.items() if "production" in n]
        for i in range(0, len(pairs), BATCH):
            batch = pairs[i : i + BATCH]
            where = " OR ".join(["(key = ? AND version = ?)"] * len(batch))
            flat = [x for pair in batch for x in pair]
            for r in self._all(f"SELECT * FROM model_versions WHERE {where}", flat):
                prod[r.key] = version_entity(r, names.get(r.key, {}))
        return [summary_entity(r, names.get(r.key, {}), prod.get(r.key)) for r in rows]

    # ------------------------------------------------------------------------------ runs
    def list_runs(self, *, limit: int, offset: int) -> list[Run]:
        rows = self._all(
            "SELECT * FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [run_entity(r) for r in rows]

    def count_runs(self) -> int:
        return int(self._all("SELECT count(*) AS n FROM runs")[0].n)

    def get_run(self, run_id: str) -> Run:
        rows = self._all("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise Unsure(f"no run with id '{run_id}'")
        return run_entity(rows[0])

    def lost_counts(self, run_ids: Sequence[str]) -> dict[str, int]:
        """As ``RunsMixin.lost_counts``: a range of ``ix_run_partitions_outcome`` a run."""
        if not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        rows = self._all(
            f"SELECT run_id, count(*) AS n FROM run_partitions WHERE run_id IN ({marks}) "
            "AND status = 'lost' GROUP BY run_id",
            tuple(run_ids),
        )
        return {str(r.run_id): int(r.n) for r in rows}

    def run_outcomes(
        self, run_id: str, statuses: tuple[str, ...], limit: int = 1000
    ) -> list[PartitionOutcome]:
        marks = ",".join("?" * len(statuses))
        rows = self._all(
            f"SELECT * FROM run_partitions WHERE run_id = ? AND status IN ({marks}) "
            "ORDER BY key LIMIT ?",
            (run_id, *statuses, limit),
        )
        return [
            PartitionOutcome(
                r.key, r.status, r.error_type or "", r.message or "", r.n_rows, r.data_fingerprint
            )
            for r in rows
        ]


def open_browser(root: Path) -> Browser | None:
    """A ``Browser`` over ``root``'s ``registry.db``, or ``None`` when ``Registry`` should
    open it instead: no such file, one SQLite cannot open read-only, or a schema version this
    module was not written for (older ones ``Registry`` upgrades, newer ones it refuses)."""
    path = root / DB_FILE
    try:
        if not root.is_dir() or path.stat().st_size == 0:
            return None
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    except (OSError, ValueError, sqlite3.Error):
        return None
    conn.row_factory = _rows
    browser = Browser(conn)
    try:
        found = browser._all("SELECT value FROM meta WHERE name = 'schema_version'")
    except Unsure:
        found = []
    if not found or found[0].value not in READABLE_SCHEMAS:
        browser.close()
        return None
    return browser
