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
from typing import TYPE_CHECKING

from manymodels.registry.base import meta_value, put_meta

if TYPE_CHECKING:
    from manymodels.registry.store import SqlStore


def schedule_id(spec_name: str, cron: str, timezone: str, when: list[str], data: str) -> str:
    """The ``meta`` name of a schedule: two schedules of a spec that differ (hourly drift,
    weekly changes), or that train it on different data files as given (a scheduler per
    region's file), claim their firings apart; the same command on two hosts shares them."""
    text = "\0".join([spec_name, cron, timezone, data, *when])
    return f"schedule:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def claim(store: SqlStore, schedule: str, due: datetime) -> bool:
    """Claim the firing scheduled at ``due`` (timezone-aware): ``True`` when this caller runs
    it, ``False`` when another scheduler claimed it, or a later one, first."""
    stamp = due.astimezone(UTC).isoformat(timespec="microseconds")  # same width: text order
    with store._begin() as conn:
        found = meta_value(conn, schedule)
        if found is not None and found >= stamp:
            return False
        put_meta(conn, schedule, stamp)
    return True


def last_claimed(store: SqlStore, schedule: str) -> datetime | None:
    """The newest firing of ``schedule`` claimed; ``None`` when none ever was (a schedule
    never run on this registry has nothing to catch up)."""
    found = store.get_meta(schedule)
    return None if found is None else datetime.fromisoformat(found)
