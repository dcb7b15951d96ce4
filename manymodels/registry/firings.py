"""Scheduled firings claimed in the registry: one run per firing, however many schedulers.

Two ``manymodels scheduler`` processes on one spec and one registry (a second host for
availability, an old one left running after a deploy) used to both train at every firing: the
changed partitions twice, two versions each. Each firing now claims its scheduled instant in a
``meta`` row of the schedule (``schedule:`` and a digest of the spec's name, cron, timezone,
``when`` and the data file as given) before it trains; the row holds the newest instant
claimed, and a firing whose instant is not newer was run by another scheduler and is skipped.
The claim is one write transaction, and writes are serialised (SQLite's write lock,
PostgreSQL's advisory lock: ``engine``), so of two schedulers firing at once exactly one
claims. The row also tells a scheduler starting up whether the newest firing went unrun while
none was running (``last_claimed``): it then runs it at once.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select

from manymodels.registry import schema as t
from manymodels.registry.base import StoreBase


def schedule_id(spec_name: str, cron: str, timezone: str, when: list[str], data: str) -> str:
    """The ``meta`` name of a schedule: two schedules of a spec that differ (hourly drift,
    weekly changes), or that train it on different data files as given (a scheduler per
    region's file), claim their firings apart; the same command on two hosts shares them."""
    text = "\0".join([spec_name, cron, timezone, data, *when])
    return f"schedule:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def claim(store: StoreBase, schedule: str, due: datetime) -> bool:
    """Claim the firing scheduled at ``due`` (timezone-aware): ``True`` when this caller runs
    it, ``False`` when another scheduler claimed it, or a later one, first."""
    stamp = due.astimezone(UTC).isoformat(timespec="microseconds")  # same width: text order
    with store._begin() as conn:
        found = conn.execute(select(t.meta.c.value).where(t.meta.c.name == schedule)).scalar()
        if found is not None and str(found) >= stamp:
            return False
        conn.execute(delete(t.meta).where(t.meta.c.name == schedule))
        conn.execute(insert(t.meta).values(name=schedule, value=stamp))
    return True


def last_claimed(store: StoreBase, schedule: str) -> datetime | None:
    """The newest firing of ``schedule`` claimed; ``None`` when none ever was (a schedule
    never run on this registry has nothing to catch up)."""
    with store.engine.connect() as conn:
        found = conn.execute(select(t.meta.c.value).where(t.meta.c.name == schedule)).scalar()
    return None if found is None else datetime.fromisoformat(str(found))
