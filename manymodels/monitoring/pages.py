"""One page of the monitor in the database's order, for the orders an index answers.

``report.health`` builds every production partition's row and ``report.ranked`` sorts them:
right for ``retrain --when`` (which looks at every partition), but a dashboard paging through
100,000 partitions — or ``manymodels monitor --limit 20`` — would pay that whole pass —
seconds — for each page (``monitor_page``, which both use).
For ``drift`` (``ix_monitor_drift_score``), ``age`` (the creation time of the
version production points at, kept on its alias: ``ix_aliases_age``, production's versions
only, never the versions superseded before them) and ``key`` the page's keys come from one
``ORDER BY … LIMIT … OFFSET`` query, and only those partitions' rows are built
(``report.health(keys=…)``). The order is ``report.ranked``'s to
the row: drift highest first (a drift row of a version production no longer points at, or one
without a score, counts as none), then the partitions without a score by key; age oldest
first, an alias without its version's creation time first of all (by key), on every database —
SQLite sorts NULLs first and PostgreSQL last, so a page walked the NULLs in one order and
``after=`` resumed in the other (rows shown twice or never); each part is its own index range,
as an explicit ``NULLS FIRST`` would not be on PostgreSQL's ascending index; ties by key.
``error`` and ``naive`` are ratios of sums kept per day window, which no index
orders, so they still take the whole pass.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, tuple_

from manymodels.exceptions import DataError, ManyModelsError, PartitionNotFound
from manymodels.partition import FALLBACK_KEY
from manymodels.registry import schema as t
from manymodels.registry.listing import is_partition

PAGED_SORTS: tuple[str, ...] = ("drift", "age", "key")
"""Monitor orders answered a page at a time (see the module)."""


def page_keys(engine: Engine, sort: str, limit: int, offset: int) -> tuple[list[str], int]:
    """The keys of one page of production partitions (the fallback excluded) in ``sort``
    order, and how many such partitions there are."""
    if sort not in PAGED_SORTS:
        raise ValueError(f"a page in SQL sorts by one of {', '.join(PAGED_SORTS)}, not {sort!r}")
    a, v, d = t.aliases.c, t.model_versions.c, t.monitor_drift.c
    production = and_(a.alias == "production", a.key != FALLBACK_KEY)

    def serves(key: Any, version: Any) -> Any:
        """``key``'s production alias points at ``version``: a primary-key probe per row of
        the ordering index, so the walk stops after ``offset + limit`` rows."""
        return select(a.key).where(a.key == key, a.alias == "production", a.version == version)

    total_ = total(engine)
    with engine.connect() as conn:
        if sort == "key":
            q = by_key().limit(limit).offset(offset)
            return list(conn.execute(q).scalars()), total_
        if sort == "age":  # along ix_aliases_age (alias, version_created_at, key)
            has_version = select(v.id).where(v.key == a.key, v.version == a.version).exists()
            created = a.version_created_at
            unknown = select(a.key).where(production, has_version, created.is_(None))
            q = unknown.order_by(a.key).limit(limit).offset(offset)
            keys = list(conn.execute(q).scalars())
            if len(keys) < limit:  # past the NULLs (first on every database): the dated ones
                n_unknown = int(
                    conn.execute(select(func.count()).select_from(unknown.subquery())).scalar_one()
                )
                dated = select(a.key).where(production, has_version, created.is_not(None))
                q = dated.order_by(created, a.key).limit(limit - len(keys))
                keys += conn.execute(q.offset(max(0, offset - n_unknown))).scalars()
            return keys, total_
        scored = select(d.key).where(  # along ix_monitor_drift_score
            d.score.is_not(None), d.key != FALLBACK_KEY, serves(d.key, d.version).exists()
        )
        q = scored.order_by(d.score.desc(), d.key).limit(limit).offset(offset)
        keys = list(conn.execute(q).scalars())
        if len(keys) < limit:  # past the scored ones: the rest by key
            n_scored = int(
                conn.execute(select(func.count()).select_from(scored.subquery())).scalar_one()
            )
            current = and_(d.key == a.key, d.version == a.version, d.score.is_not(None))
            unscored = (
                select(a.key)
                .where(production, ~select(d.key).where(current).exists())
                .order_by(a.key)
                .limit(limit - len(keys))
                .offset(max(0, offset - n_scored))
            )
            keys += conn.execute(unscored).scalars()
        return keys, total_


def by_key(after: str | None = None) -> Any:
    """The production partitions (the fallback excluded) by key, along the ``partitions``
    primary key, each probing its production alias by the aliases' primary key: a page is
    an index range (``after``) or walk (``OFFSET``) that stops after its rows. The same
    order read from ``aliases`` (``alias = 'production' ORDER BY key``) took
    ``ix_aliases_age`` for the alias and sorted every production alias for each page, on
    SQLite without statistics (the registry runs no ``ANALYZE``): 110,000 VM steps a page
    at 10,000 partitions, against 980 for a page after a key this way. ``after`` bounds
    both sides: PostgreSQL merge-joins the two primary keys, and the aliases' side, bounded
    by the join alone, was read from its first row (50,000 rows half-way through 100,000)."""
    a, p = t.aliases.c, t.partitions.c
    alias = select(a.key).where(a.key == p.key, a.alias == "production")
    q = select(p.key).where(p.key != FALLBACK_KEY)
    if after is not None:
        q, alias = q.where(p.key > after), alias.where(a.key > after)
    return q.where(alias.exists()).order_by(p.key)


TOTAL_SECONDS = 30.0
"""How long a count of the production partitions is reused while no alias moved."""
_totals: weakref.WeakKeyDictionary[Engine, tuple[Any, int, float]] = weakref.WeakKeyDictionary()
_totals_lock = threading.Lock()


def total(engine: Engine) -> int:
    """How many partitions are in production (the fallback excluded). Counting them is a
    pass over every production alias (an index scan on SQLite, a sequential scan on
    PostgreSQL: 51-65 ms at 100,000), which every page of the monitor paid; the count is
    now kept per engine and reused while the newest alias move (``max(updated_at)``, one
    probe of ``ix_aliases_updated``) is the one it was counted at, for ``TOTAL_SECONDS`` at
    most. Every alias move writes a row stamped by it, so a partition new to production is a
    newer stamp and a recount at once, and so is one taken out (``retire`` deletes its
    production row in the transaction that writes its ``retired`` row); the time bound
    covers a move stamped before the newest one it committed after (another host's clock,
    PostgreSQL's commit order)."""
    a = t.aliases.c
    production = and_(a.alias == "production", a.key != FALLBACK_KEY)
    with engine.connect() as conn:
        stamp = conn.execute(select(func.max(a.updated_at))).scalar()
        now = time.monotonic()
        with _totals_lock:
            kept = _totals.get(engine)
        if kept is not None and kept[0] == stamp and now - kept[2] < TOTAL_SECONDS:
            return kept[1]
        q = select(func.count()).select_from(t.aliases).where(production)
        counted = int(conn.execute(q).scalar_one())
    with _totals_lock:
        _totals[engine] = (stamp, counted, now)
    return counted


def not_listed(engine: Engine, after: str, sort: str) -> ManyModelsError:
    """The error of a page asked after a key that is not in the monitor, in an order that
    ranks partitions (a key order takes any text as a position: ``keys_after``). A partition
    of the registry that is not in production (any more) is a 404 — the pages moved since it
    was shown; start again. Any other text (a key that never existed, the fallback's, which
    the monitor never lists) is a 422 saying what ``after=`` is: every such key was a 404
    "has no production version any more: the monitor moved", of a key that never had one.
    One primary-key probe."""
    if after != FALLBACK_KEY:
        with engine.connect() as conn:
            if is_partition(conn, after):
                return PartitionNotFound(
                    f"partition '{after}' has no production version any more: it left the "
                    "monitor since the page that showed it, start again"
                )
    return DataError(
        f"after={after!r} is not a partition key in the monitor: by {sort}, after= resumes "
        "after a partition the previous page showed (its next_after)"
    )


def keys_after(engine: Engine, sort: str, limit: int, after: str) -> list[str]:
    """The keys of the page that follows ``after`` (the last key of the previous page) in
    ``sort`` order — keyset paging, as ``GET /v1/partitions`` does: ``after``'s current place
    in the order is read back and the walk resumes from it along the same index, so a page
    costs O(limit) wherever it is and rows do not shift or repeat as others come and go
    (``OFFSET`` walked past every row before it, and a partition that left the production
    aliases moved every later row one place up: one was never shown). By key, ``after`` is a
    position in key order, whatever its text (the partitions after it); in the other orders,
    ``not_listed(after)`` when it is not in production."""
    if sort not in PAGED_SORTS:
        raise ValueError(f"a page in SQL sorts by one of {', '.join(PAGED_SORTS)}, not {sort!r}")
    a, v, d = t.aliases.c, t.model_versions.c, t.monitor_drift.c
    production = and_(a.alias == "production", a.key != FALLBACK_KEY)
    if sort == "key":
        with engine.connect() as conn:
            return list(conn.execute(by_key(after).limit(limit)).scalars())
    with engine.connect() as conn:
        listed = conn.execute(select(a.key).where(production, a.key == after)).first()
    if listed is None:
        raise not_listed(engine, after, sort)
    with engine.connect() as conn:
        if sort == "age":  # along ix_aliases_age, from after's (created, key)
            has_version = select(v.id).where(v.key == a.key, v.version == a.version).exists()
            start = conn.execute(
                select(a.version_created_at).where(production, a.key == after)
            ).scalar()
            created = a.version_created_at
            keys: list[str] = []
            if start is None:  # among the NULLs (never written since schema 9): first, by key
                unknown = select(a.key).where(production, has_version, created.is_(None))
                q = unknown.where(a.key > after).order_by(a.key).limit(limit)
                keys = list(conn.execute(q).scalars())
            if len(keys) < limit:
                # a row value: one index range from (start, after) on both databases; the
                # OR of (created > start) and (created = start, key > after) scanned
                # PostgreSQL's index from its first row (138 ms mid-way through 100,000) and
                # made SQLite sort every row after it (39 ms), for each "Load more"
                later = (
                    tuple_(created, a.key) > tuple_(start, after)
                    if start is not None
                    else created.is_not(None)
                )
                q = (
                    select(a.key)
                    .where(production, has_version, created.is_not(None), later)
                    .order_by(created, a.key)
                    .limit(limit - len(keys))
                )
                keys += conn.execute(q).scalars()
            return keys
        serves = (
            select(a.key)
            .where(a.key == d.key, a.alias == "production", a.version == d.version)
            .exists()
        )
        scored = select(d.key).where(d.score.is_not(None), d.key != FALLBACK_KEY, serves)
        score = conn.execute(
            select(d.score).where(d.key == after, d.score.is_not(None), serves)
        ).scalar()
        keys = []
        if score is not None:  # still among the scored: those below it, then the unscored
            # bounded by score <= after's too: the index range starts at after's score, where
            # the OR alone walked ix_monitor_drift_score from the highest score, filtering
            below = and_(d.score <= score, or_(d.score < score, d.key > after))
            q = scored.where(below).order_by(d.score.desc(), d.key).limit(limit)
            keys = list(conn.execute(q).scalars())
        if len(keys) < limit:
            current = and_(d.key == a.key, d.version == a.version, d.score.is_not(None))
            unscored = select(a.key).where(production, ~select(d.key).where(current).exists())
            if score is None:
                unscored = unscored.where(a.key > after)
            q = unscored.order_by(a.key).limit(limit - len(keys))
            keys += conn.execute(q).scalars()
        return keys


def monitor_page(
    engine: Engine, sort: str, limit: int, offset: int, limits: Any = None
) -> tuple[list[Any], int]:
    """One page of the monitor (``PartitionHealth`` rows with their data ages) and how many
    partitions it pages through: for ``PAGED_SORTS`` only the page's partitions are built
    (``page_keys``), so ``manymodels monitor --limit 1`` reads one partition's rows, not every
    partition's as it did; ``error`` and ``naive`` still take the whole pass (see the
    module), flagged ``degraded`` at ``limits`` (``report.Thresholds``) first. The router's
    ``GET /v1/monitor`` and the CLI page alike; the page's rows carry their data ages and
    unseen shares (``monitoring.unseen``), read for them alone."""
    from manymodels.monitoring import report  # report reads the stores; this module, indexes
    from manymodels.monitoring.unseen import with_unseen

    if sort in PAGED_SORTS:
        keys, count = page_keys(engine, sort, limit, offset)
        return with_unseen(engine, report.with_data_age(engine, rows_of(engine, keys))), count
    rows = report.ranked(report.health(engine), sort, limits)
    shown = report.with_data_age(engine, rows[offset : offset + limit])
    return with_unseen(engine, shown), len(rows)


def rows_of(engine: Engine, keys: list[str]) -> list[Any]:
    """The health rows of ``keys`` in that order — the database's, which the next page's
    ``after`` resumes from: sorted again in Python (by the version's own creation time for
    ``age``), a page whose alias had no creation time ended on a key that was not its last
    in the database's order, and the next page showed its rows again. A key gone since (its
    partition deleted between the two reads) is left out."""
    from manymodels.monitoring import report

    place = {k: i for i, k in enumerate(keys)}
    return sorted(report.health(engine, keys=keys), key=lambda r: place[r.key])
