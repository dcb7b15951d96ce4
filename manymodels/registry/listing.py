"""Whole-registry listings for the dashboard and the operations API (#15): partitions ranked
by skill vs naive, validation score or age, and a run's failed or skipped partitions.

A page at a time along an index (``schema``'s ``ix_model_versions_*`` and
``ix_run_partitions_outcome``): O(page) at 100,000 partitions, never a table scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from manymodels.exceptions import DataError, PartitionNotFound, RunNotFound
from manymodels.registry import schema as t
from manymodels.registry.entities import PartitionOutcome, PartitionSummary
from manymodels.registry.reads import ReadsMixin, with_prefix

RANKS: tuple[str, ...] = ("skill", "score", "age")
"""Orders of ``ListingMixin.ranked_partitions``, worst first: skill vs naive, validation score,
model age."""


class ListingMixin(ReadsMixin):
    """``SqlStore``'s ranked and failure listings (they build on ``ReadsMixin``'s summaries)."""

    # A page at a time along an index (``schema``'s ``ix_model_versions_*`` and
    # ``ix_run_partitions_outcome``): O(page) at 100,000 partitions, never a table scan.
    def ranked_partitions(
        self,
        by: str,
        *,
        limit: int = 100,
        after: str | None = None,
        prefix: str | None = None,
    ) -> list[PartitionSummary]:
        """Partitions in production, worst first ``by`` skill vs naive (lowest first, those
        without a naive score last), validation ``score`` (lowest first) or ``age`` (oldest
        first), ties by key. ``after`` is the last key of the previous page: its production
        version's value is read back to resume (``PartitionNotFound`` when it has none any
        more: the listing moved, start again). ``prefix`` keeps keys that start with it."""
        if by not in RANKS:
            raise DataError(f"rank by one of {', '.join(RANKS)}, not {by!r}")
        v, a = t.model_versions.c, t.aliases.c
        value: Any
        if by == "age":  # along ix_aliases_age: production's versions only (see schema)
            value, key = a.version_created_at, a.key
            exists_version = select(v.id).where(and_(v.key == a.key, v.version == a.version))
            in_production = and_(a.alias == "production", exists_version.exists())
        else:  # along ix_model_versions_skill / _score, each row's alias probed
            value, key = {"skill": t.SKILL, "score": v.score}[by], v.key
            in_production = (
                select(a.key)
                .where(and_(a.key == v.key, a.alias == "production", a.version == v.version))
                .exists()
            )
        base = with_prefix(select(key).where(in_production), key, prefix)
        with self.engine.connect() as conn:
            start: Any = None
            null_phase = False  # past the rows with a value: those without one, by key
            if after is not None:
                q = select(value).where(in_production, key == after)
                found = conn.execute(q).first()
                if found is None:
                    raise self._not_ranked(conn, after)
                start, null_phase = found[0], found[0] is None
            keys: list[str] = []
            if not null_phase:
                q = base.where(value.is_not(None))
                if after is not None:
                    q = q.where(value >= start, or_(value > start, key > after))
                keys = list(conn.execute(q.order_by(value, key).limit(limit)).scalars())
                after = None
            if len(keys) < limit:
                q = base.where(value.is_(None))
                q = q.where(key > after) if after is not None else q
                q = q.order_by(key).limit(limit - len(keys))
                keys += conn.execute(q).scalars()
            rows = conn.execute(select(t.partitions).where(t.partitions.c.key.in_(keys))).all()
            by_key = {r.key: r for r in rows}
            return self._summaries(conn, [by_key[k] for k in keys if k in by_key])

    @staticmethod
    def _not_ranked(conn: Connection, after: str) -> PartitionNotFound:
        """The 404 of a page asked after a key not in production. It said "has no production
        version any more" of every such key, untrue of one that never existed (a typo, a key
        of another registry) or never had one (failed or skipped only): one primary-key
        probe of ``partitions`` tells the first apart."""
        if is_partition(conn, after):
            return PartitionNotFound(
                f"partition '{after}' has no production version (any more, if the last page "
                "showed it: the listing moved since, start again)"
            )
        return PartitionNotFound(
            f"no partition '{after}' in this registry: after= resumes after the last key "
            "of the previous page (its next_after)"
        )

    def run_failures(
        self,
        run_id: str,
        *,
        statuses: Sequence[str] = ("failed", "skipped"),
        limit: int = 100,
        after: str | None = None,
        prefix: str | None = None,
    ) -> list[PartitionOutcome]:
        """A run's partitions with one of ``statuses``, by key, a page after ``after``: one
        range of ``ix_run_partitions_outcome`` per status, merged (never the run's every
        outcome). ``RunNotFound`` for an unknown run."""
        c = t.run_partitions.c
        out: list[PartitionOutcome] = []
        with self.engine.connect() as conn:
            known = select(t.runs.c.run_id).where(t.runs.c.run_id == run_id)
            if conn.execute(known).first() is None:
                raise RunNotFound(f"no run with id '{run_id}'")
            for status in dict.fromkeys(statuses):
                q = select(t.run_partitions).where(and_(c.run_id == run_id, c.status == status))
                q = q.where(c.key > after) if after is not None else q
                q = with_prefix(q, c.key, prefix)
                for r in conn.execute(q.order_by(c.key).limit(limit)):
                    out.append(
                        PartitionOutcome(
                            r.key, r.status, r.error_type or "", r.message or "", r.n_rows,
                            r.data_fingerprint,
                        )
                    )  # fmt: skip
        return sorted(out, key=lambda o: o.key)[:limit]


def is_partition(conn: Connection, key: str) -> bool:
    """Whether ``key`` is a partition of this registry (trained, failed or skipped): one
    primary-key probe, which a page's ``after=`` of a key not listed asks to say why
    (``/v1/partitions`` here, ``/v1/monitor`` in ``monitoring.pages``)."""
    known = conn.execute(select(t.partitions.c.key).where(t.partitions.c.key == key))
    return known.first() is not None
