"""A failed firing outlives an edit of its schedule.

A schedule's firings are claimed under a name hashed from its cron, timezone and ``when``
(``firings.schedule_id``), so an edited schedule is another one: before, a scheduler started
on the edited spec found a schedule never run, with nothing to catch up, and the newest firing
of the schedule before the edit — failed, say for a missing data file, fixed together with
the edit — was neither run again nor said, though a restart without the edit would have run it
again (``firings.FIRING_ATTEMPTS``). Now each claim also records, under the spec's name and
the data file (``family_id``), which schedule claimed last; a schedule that never claimed
finds there the one it replaces, and runs that one's failed firing again, once, as its own
newest firing (``claim_previous``: the failure moves to it, counted as an attempt), or says it
failed too often.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from manymodels.registry.base import meta_value, put_meta
from manymodels.registry.firings import (
    KILLED,
    FailedFiring,
    _failed,
    _owned,
    _parse_failed,
    _stamp,
    failed_firing,
)

if TYPE_CHECKING:
    from manymodels.registry.store import SqlStore


def family_id(spec_name: str, data: str) -> str:
    """The ``meta`` name of the schedules of one spec on one data file, whatever their cron."""
    text = "\0".join([spec_name, data])
    return f"schedule-of:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def about(schedule: str, cron: str, timezone: str, when: list[str]) -> str:
    """What the family row holds: the schedule that claimed last, as its spec said it."""
    return json.dumps({"id": schedule, "cron": cron, "timezone": timezone, "when": when})


@dataclass(frozen=True)
class Previous:
    """The schedule an edited one replaces, and its newest firing, which failed."""

    schedule: str
    cron: str
    timezone: str
    when: list[str]
    failed: FailedFiring


def previous_failure(store: SqlStore, family: str, schedule: str) -> Previous | None:
    """The failed newest firing of the schedule that claimed last in ``family``, when that is
    not ``schedule``; ``None`` otherwise."""
    found = store.get_meta(family)
    if found is None:
        return None
    try:
        o = json.loads(found)
        old, cron, zone, when = str(o["id"]), str(o["cron"]), str(o["timezone"]), o["when"]
        when = [str(w) for w in when]
        ZoneInfo(zone)  # read back in it (``cli.schedule``)
    except (ValueError, KeyError, TypeError, ZoneInfoNotFoundError):
        return None  # not ours to read
    if old == schedule:
        return None
    failed = failed_firing(store, old)
    if failed is None or store.get_meta(old) != _stamp(failed.due):
        return None
    return Previous(old, cron, zone, when, failed)


def claim_previous(
    store: SqlStore, schedule: str, due: datetime, owner: str, family: tuple[str, str],
    previous: Previous,
) -> bool:  # fmt: skip
    """Claim ``schedule``'s firing at ``due`` to run again ``previous``'s failed firing:
    ``True`` for one caller only, when ``schedule`` never claimed and ``previous``'s failure
    is as read. In one transaction the failure moves to ``schedule`` (its attempt counted,
    marked under way by ``owner``, as ``firings.claim_retry``) and ``family`` names it."""
    seen = previous.failed
    with store._begin() as conn:
        now = _parse_failed(meta_value(conn, _failed(previous.schedule)))
        if meta_value(conn, schedule) is not None or now is None:
            return False
        if (now.due, now.attempts, now.owner, now.beat) != (
            seen.due, seen.attempts, seen.owner, seen.beat
        ):  # fmt: skip
            return False
        put_meta(conn, schedule, _stamp(due))
        value = {"due": _stamp(due), "attempts": seen.attempts + 1, "error": KILLED,
                 **_owned(owner, conn)}  # fmt: skip
        put_meta(conn, _failed(schedule), json.dumps(value))
        put_meta(conn, _failed(previous.schedule), None)
        put_meta(conn, family[0], family[1])
    return True
