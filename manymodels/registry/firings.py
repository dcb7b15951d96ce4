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
none was running (``last_claimed``): it then runs it at once; and a second row
(``schedule:…:failed``) whether that firing failed, which a scheduler starting then runs again,
once (``FIRING_ATTEMPTS``). While a firing goes, its scheduler refreshes the mark's ``beat``
every ``MARK_EVERY_SECONDS`` (``MarkBeat``): a mark whose scheduler this machine cannot look up
(another container's pid namespace, another machine) and whose beat is older than
``MARK_SILENT_AFTER`` is a scheduler gone, and its firing is run again. Beats are stamped and
judged by the database server's clock (``db_clock``), as router jobs' leases are: stamped and
judged by each host's, a scheduler on a host minutes behind another's took the other's live
firing for silent and ran it beside it (or, ahead, left a dead one's unrun).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from manymodels.heartbeat import beat_proves_nothing
from manymodels.registry.base import meta_value, put_meta
from manymodels.registry.db_clock import db_now, db_time
from manymodels.tempnames import host_boot, owner_alive

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from manymodels.registry.store import SqlStore

logger = logging.getLogger(__name__)


def schedule_id(spec_name: str, cron: str, timezone: str, when: list[str], data: str) -> str:
    """The ``meta`` name of a schedule: two schedules of a spec that differ (hourly drift,
    weekly changes), or that train it on different data files as given (a scheduler per
    region's file), claim their firings apart; the same command on two hosts shares them."""
    text = "\0".join([spec_name, cron, timezone, data, *when])
    return f"schedule:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def claim(
    store: SqlStore, schedule: str, due: datetime, owner: str | None = None,
    family: tuple[str, str] | None = None,
) -> bool:  # fmt: skip
    """Claim the firing scheduled at ``due`` (timezone-aware): ``True`` when this caller runs
    it, ``False`` when another scheduler claimed it, or a later one, first. With ``owner``
    (the caller's ``tempnames.writer_tag``) the firing is marked under way by it until it
    ends (``record_failure``, ``clear_failure``): a scheduler killed before its run existed
    (reading a large data file, the OOM killer) leaves it marked, failed once its process is
    gone. ``family`` (``firing_edits.family_id``, ``firing_edits.about``) records which
    schedule of its spec and data file claimed last, for an edit of it to find."""
    stamp = _stamp(due)  # the same width each time: text order is time order
    with store._begin() as conn:
        found = meta_value(conn, schedule)
        if found is not None and found >= stamp:
            return False
        put_meta(conn, schedule, stamp)
        if family is not None:
            put_meta(conn, family[0], family[1])
        if owner is not None:
            pending = {"due": stamp, "attempts": 1, "error": KILLED, **_owned(owner, conn)}
            put_meta(conn, _failed(schedule), json.dumps(pending))
    return True


def _owned(owner: str | None, conn: Connection) -> dict[str, str | None]:
    """The mark of a firing under way by ``owner``, with the host and boot it runs on and its
    first beat (``under_way``): the database's time (``db_now``), written on ``conn``."""
    if owner is None:
        return {"owner": None}
    host, boot = host_boot()
    return {"owner": owner, "host": host, "boot": boot, "beat": db_now(conn)}


def last_claimed(store: SqlStore, schedule: str) -> datetime | None:
    """The newest firing of ``schedule`` claimed; ``None`` when none ever was (a schedule
    never run on this registry has nothing to catch up)."""
    found = store.get_meta(schedule)
    return None if found is None else datetime.fromisoformat(found)


FIRING_ATTEMPTS = 2
"""How many times one firing runs when its run fails: on the schedule, then once more by the
next scheduler to start (as cron and APScheduler, a running scheduler never retries a failed
job; but a firing whose data file was missing, or whose run lost partitions to a full disk,
is run again when the scheduler is restarted after the fix, not a week later for a weekly
schedule). A firing that fails again is reported at each start, never retried in a loop of
restarts (a service manager restarting a scheduler that exits 1)."""


MARK_EVERY_SECONDS = 30.0
MARK_SILENT_AFTER = 600.0
"""How long the mark of a firing under way may go unrefreshed before a scheduler that cannot
look up its owner's process (another container on this host — a restarted one has a new pid
namespace —, another machine) takes the firing for its scheduler's, killed, and runs it again.
Twenty beats missed: far above a stalled database's lock waits (seconds), a long garbage
collection or a VM's live migration, and clocks a few minutes apart; nothing beside a weekly or
daily firing run ten minutes late. Airflow fails a task after 300 s without its heartbeat
(``scheduler_zombie_task_threshold``), RedBeat's lock expires after 1,500 s. A scheduler
suspended longer than this (``SIGSTOP``, a host asleep) finds its firing taken over when it
asks before its run begins (``MarkBeat.still_ours``) and does not start it; one suspended past
the bound while it already read the data for its run may run the firing beside the one that
took it over."""


KILLED = "its scheduler was killed before its run started"
"""The error of a firing marked under way whose scheduler is gone (``FailedFiring.owner``)."""


@dataclass(frozen=True)
class FailedFiring:
    """The newest failed firing of a schedule: its instant, how many times it ran, its error;
    ``owner`` while it is under way (the ``writer_tag`` of the scheduler running it): it
    failed only once that process is gone (``tempnames.owner_alive``)."""

    due: datetime
    attempts: int
    error: str
    owner: str | None = None
    host: str | None = None
    boot: str | None = None
    beat: datetime | None = None  # the mark's newest beat (``MarkBeat``); none before 2026-12
    read_at: datetime | None = field(default=None, compare=False)
    """The database's time when the mark was read (``db_clock``): the clock its beat is
    judged by (``under_way``), as it was stamped by it; ``None`` (built by hand): this one's."""


def under_way(failed: FailedFiring, now: datetime | None = None) -> bool:
    """Whether the firing ``failed`` marks is still under way: its scheduler (``owner``) runs,
    or runs where this machine cannot look it up (another machine, another container) and
    beat within ``MARK_SILENT_AFTER`` — unless it ran on this host before a reboot (the same
    host name, another boot id): that scheduler is gone. Before, a firing whose scheduler a
    reboot killed before its run began was taken for under way by each scheduler started
    after the reboot, never run again; and so was, for ever, one whose scheduler's container
    was killed and restarted on the same host (a new pid namespace: its pid cannot be looked
    up, the boot is the same). A beat stamped ahead of this clock past ``MARK_SILENT_AFTER``
    (a clock running ahead there) proves nothing, as a run's does not: the one rule of
    ``heartbeat.beat_proves_nothing``, with the mark's limit; before, the firing of a
    scheduler killed on such a machine was left to it until this clock caught up."""
    if failed.owner is None:
        return False
    alive = owner_alive(failed.owner)
    if alive is None and failed.host is not None and failed.boot:
        host, boot = host_boot()
        if failed.host == host and boot and failed.boot != boot:
            return False
    beat = failed.beat
    now = now or failed.read_at or datetime.now(UTC)  # the database's time, which beat
    if alive is None and beat and beat_proves_nothing(beat.isoformat(), MARK_SILENT_AFTER, now):
        return False
    if alive is None and (stale := silent_at(failed)) is not None:
        return now < stale
    return alive is not False


def silent_at(failed: FailedFiring) -> datetime | None:
    """When the mark ``failed`` goes silent (its beat plus ``MARK_SILENT_AFTER``); ``None``
    for a mark written before marks beat."""
    if failed.beat is None:
        return None
    return failed.beat + timedelta(seconds=MARK_SILENT_AFTER)


def look_again_at(failed: FailedFiring) -> datetime | None:
    """When, by this host's clock, the mark ``failed`` goes silent (``silent_at`` is the
    database's time): a scheduler waiting to look again sleeps by its own clock, and one
    minutes behind the database's looked again early and found the mark still beating."""
    return on_this_clock(failed, silent_at(failed))


def on_this_clock(failed: FailedFiring, at: datetime | None) -> datetime | None:
    """The database's instant ``at`` (a beat of ``failed``, or when it goes silent) by this
    host's clock, as a line read here says it: the server's time, 20 min off this host's,
    told a user the firing was taken over 20 min away from when it was."""
    if at is None or failed.read_at is None:
        return at
    return at + (datetime.now(UTC) - failed.read_at)


def _failed(schedule: str) -> str:
    return f"{schedule}:failed"


def _parse_failed(found: str | None, read_at: datetime | None = None) -> FailedFiring | None:
    if found is None:
        return None
    try:
        o = json.loads(found)
        owner, host, boot = (o.get(k) for k in ("owner", "host", "boot"))
        due = datetime.fromisoformat(o["due"])
        beat = datetime.fromisoformat(o["beat"]) if o.get("beat") else None
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        return FailedFiring(
            due, int(o["attempts"]), str(o["error"]), owner and str(owner),
            host and str(host), boot and str(boot), beat, read_at,
        )  # fmt: skip
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # not ours to read: as if none failed


def failed_firing(store: SqlStore, schedule: str) -> FailedFiring | None:
    """The newest failed firing of ``schedule``, unless a later firing claimed since; read with
    the database's time (``FailedFiring.read_at``), by which its beat is judged."""
    with store.engine.connect() as conn:
        return _parse_failed(meta_value(conn, _failed(schedule)), db_time(conn))


def record_failure(
    store: SqlStore, schedule: str, due: datetime, attempts: int, error: str
) -> None:
    """Record that the firing at ``due`` failed on its ``attempts``-th run with ``error``;
    not over a later firing's mark (a run that outlasted the next firing, which another
    scheduler claimed: that mark is what tells whether the later one ran)."""
    value = {"due": _stamp(due), "attempts": attempts, "error": error}
    with store._begin() as conn:
        found = _parse_failed(meta_value(conn, _failed(schedule)))
        if found is None or found.due.astimezone(UTC) <= due.astimezone(UTC):
            put_meta(conn, _failed(schedule), json.dumps(value))


def clear_failure(store: SqlStore, schedule: str, due: datetime, owner: str | None = None) -> None:
    """The firing at ``due`` (or a later one) succeeded: an older failure is no longer the
    newest firing's, nothing to retry. A write only when a failure is recorded. With
    ``owner`` (the scheduler whose run succeeded), not a mark another scheduler holds: one
    that took the firing over while this one was held past ``MARK_SILENT_AFTER`` runs it
    still, and its mark, cleared, no longer told that it ran (its beats then found the mark
    gone, and a failure of its run went unrecorded)."""
    found = failed_firing(store, schedule)
    if found is not None and found.due.astimezone(UTC) <= due.astimezone(UTC):
        with store._begin() as conn:
            value = meta_value(conn, _failed(schedule))
            now = _parse_failed(value)
            if now is not None and owner is not None and now.owner not in (None, owner):
                return
            if value is not None:
                put_meta(conn, _failed(schedule), None)


def claim_retry(
    store: SqlStore, schedule: str, failed: FailedFiring, owner: str | None = None
) -> bool:
    """Claim the run again of the failed firing ``failed``: ``True`` for one caller only (of
    two schedulers starting at once), when it is still the newest firing claimed and failed
    as read (its error aside: the caller may have learnt it from the firing's run), its mark
    not refreshed since (its scheduler beats: it was only suspended); its attempt is counted
    at once, and marked under way by ``owner`` as ``claim`` does."""
    with store._begin() as conn:
        now = _parse_failed(meta_value(conn, _failed(schedule)))
        seen = None if now is None else (now.due, now.attempts, now.owner, now.beat)
        if seen != (failed.due, failed.attempts, failed.owner, failed.beat) or meta_value(
            conn, schedule
        ) != _stamp(failed.due):
            return False
        attempts = failed.attempts + 1
        error = KILLED if owner is not None else failed.error
        mark = _owned(owner, conn)
        value = {"due": _stamp(failed.due), "attempts": attempts, "error": error, **mark}
        put_meta(conn, _failed(schedule), json.dumps(value))
    return True


def _stamp(due: datetime) -> str:
    return due.astimezone(UTC).isoformat(timespec="microseconds")


def beat_mark(store: SqlStore, schedule: str, due: datetime, owner: str) -> bool:
    """Refresh the beat of the mark of the firing at ``due`` under way by ``owner``; ``False``
    once the mark is no longer its (another scheduler took the firing over, or it ended)."""
    with store._begin() as conn:
        found = meta_value(conn, _failed(schedule))
        mark = _parse_failed(found)
        if found is None or mark is None or mark.owner != owner or mark.due != due:
            return False
        value = json.loads(found)
        value["beat"] = db_now(conn)
        put_meta(conn, _failed(schedule), json.dumps(value))
    return True


class MarkBeat:
    """``with MarkBeat(beat):`` calls ``beat()`` (``beat_mark`` on a registry opened for it)
    every ``every`` seconds in a daemon thread until the block ends: the mark of the firing
    under way stays fresh while its scheduler lives (``under_way``). A beat that fails (the
    database away for a while) is logged and tried again; one that finds the mark no longer
    this scheduler's sets ``taken_over`` and the beats stop."""

    def __init__(self, beat: Callable[[], bool], *, every: float = MARK_EVERY_SECONDS) -> None:
        self.beat = beat
        self.every = every
        self.taken_over = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="firing-mark-beat", daemon=True)

    def __enter__(self) -> MarkBeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def still_ours(self) -> bool:
        """Beat now: ``False`` (and ``taken_over`` set) when the mark is no longer this
        scheduler's. Asked before the run begins: ``taken_over`` alone tells what the thread
        found at its last beat, up to ``every`` seconds ago, and a scheduler held (suspended)
        between its claim and its run went on at once after the hold, before its next beat,
        beside the scheduler that took the firing over. A beat that fails is no answer: as
        the thread does, the run goes on (its own writes meet the database's state)."""
        if self.taken_over.is_set():
            return False
        try:
            if not self.beat():
                self.taken_over.set()
        except Exception as e:
            logger.warning("the beat of a firing under way was not written: %s", e)
        return not self.taken_over.is_set()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                if not self.beat():
                    self.taken_over.set()
                    return
            except Exception as e:  # a locked or unreachable database: the next beat
                logger.warning("the beat of a firing under way was not written: %s", e)
