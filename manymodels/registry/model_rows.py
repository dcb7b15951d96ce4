"""The router's read of a model on a cache miss: only what loading and feeding it needs.

At a high miss rate this read is the router's throughput, so it skips what ``ReadsMixin``'s
entities carry (aliases, evaluation, parameters) and, for one version, SQLAlchemy's execution
path too (``model_ref``). Kept apart from the other reads because it is tuned for one caller
and its cost is measured (benchmarks/HISTORY.md §2, #17's cold path). Beside it, the batched
reads of many versions' narrow columns that a scoring or forecast plan asks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select

from manymodels.exceptions import RegistryError, first_line
from manymodels.registry import schema as t
from manymodels.registry.base import StoreBase
from manymodels.registry.engine import batches
from manymodels.registry.reads import pairs_in


class ModelRow(NamedTuple):
    """What loading and feeding one version's model needs, and what vouches for it."""

    artifact_sha256: str
    feature_schema_json: str
    data_sha256: str | None
    signature: str | None


class ModelRowsMixin(StoreBase):
    """``SqlStore``'s reads of ``ModelRow``s."""

    def model_refs(self, pairs: Sequence[tuple[str, int]]) -> list[tuple[str, int, ModelRow]]:
        """``(key, version, ModelRow)`` for many (key, version) pairs: only what loading and
        feeding a model needs, one indexed lookup per pair in batched queries
        (``get_versions`` builds whole entities, ~10× the work)."""
        c = t.model_versions.c
        out: list[tuple[str, int, ModelRow]] = []
        with self.engine.connect() as conn:
            for batch in batches(list(pairs)):
                q = select(
                    c.key, c.version, c.artifact_sha256, c.feature_schema_json, c.data_sha256,
                    c.signature,
                ).where(pairs_in(c, batch))  # fmt: skip
                wanted = set(batch)
                out += [(r[0], r[1], ModelRow(r[2], r[3], r[4], r[5])) for r in conn.execute(q)
                        if (r[0], r[1]) in wanted]  # fmt: skip
        return out

    def version_specs(self, pairs: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """The name of the spec whose run made each of these (key, version) pairs (those
        still there): ``champion_targets.require_one_target``'s read once a table's versions
        predict two targets, to tell a mix within one spec from two specs' own. One indexed
        lookup per pair joined to its run, in batched queries, where ``get_version`` then
        ``get_run`` would be two whole-entity reads a pair."""
        v, r = t.model_versions.c, t.runs.c
        out: dict[tuple[str, int], str] = {}
        with self.engine.connect() as conn:
            for batch in batches(list(pairs)):
                q = (
                    select(v.key, v.version, r.spec_name)
                    .select_from(t.model_versions.join(t.runs, r.run_id == v.run_id))
                    .where(pairs_in(v, batch))
                )
                wanted = set(batch)
                out.update(((k, n), s) for k, n, s in conn.execute(q) if (k, n) in wanted)
        return out

    def existing_versions(self, pairs: Sequence[tuple[str, int]]) -> set[tuple[str, int]]:
        """Which of these (key, version) pairs still have a row: a router's check of the
        versions it holds in memory once ``gc`` deleted some (``serving.deletions``). One
        indexed lookup per pair, in batched queries."""
        c = t.model_versions.c
        out: set[tuple[str, int]] = set()
        with self.engine.connect() as conn:
            for batch in batches(list(pairs)):
                found = conn.execute(select(c.key, c.version).where(pairs_in(c, batch)))
                out.update((k, v) for k, v in found)
        return out & set(pairs)

    def model_ref(self, key: str, version: int) -> ModelRow | None:
        """What loading one version's model needs (``ModelRow``), or ``None``: a router's
        cache miss. At a high miss rate this read *is* the router's throughput, so it runs a
        statement compiled once on a pooled DBAPI connection (~12 µs); SQLAlchemy's execution
        path costs ~60 µs for the same indexed lookup, ``get_version`` ~380 µs."""
        sql, bind = self._model_ref_statement
        try:
            raw = self.engine.raw_connection()  # a pool timeout or a failed connect: below
        except Exception as e:  # SQLAlchemy's, or the driver's own from a pre-ping's reconnect
            raise RegistryError(f"registry database unavailable: {first_line(e)}") from e
        try:
            cur = raw.cursor()
            try:
                cur.execute(sql, bind(key, version))
                rows = cur.fetchall()  # to the end: an unfinished read would pin a snapshot
            finally:
                cur.close()
        except Exception as e:  # the DBAPI's own errors: not SQLAlchemy-wrapped on this path
            if self.engine.dialect.is_disconnect(e, raw.dbapi_connection, None):  # type: ignore[arg-type]
                raw.invalidate(e)  # a dead connection must not go back to the pool
            raise RegistryError(f"registry database unavailable: {e}") from e
        finally:
            raw.close()  # back to the pool (a no-op once invalidated)
        return ModelRow(*rows[0]) if rows else None

    @functools.cached_property
    def _model_ref_statement(self) -> tuple[str, Callable[[str, int], Any]]:
        """The SQL text of ``model_ref`` in this database's dialect, and how to bind it."""
        c = t.model_versions.c
        stmt = select(c.artifact_sha256, c.feature_schema_json, c.data_sha256, c.signature).where(
            c.key == bindparam("k"), c.version == bindparam("v")
        )
        compiled = stmt.compile(dialect=self.engine.dialect)
        names = compiled.positiontup
        if self.engine.dialect.positional and names is not None:
            return compiled.string, lambda k, v: tuple({"k": k, "v": v}[n] for n in names)
        return compiled.string, lambda k, v: {"k": k, "v": v}
