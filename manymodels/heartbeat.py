"""A running run's sign of life: its process writes ``runs.heartbeat_at`` every
``EVERY_SECONDS`` while it trains (``Heartbeat``, a daemon thread beside the work).

Why: a run killed on this machine is told by its pid (``tempnames.owner_alive``), but one
whose process ran on another machine — a Ray driver elsewhere, a registry on PostgreSQL — or
before a reboot cannot be looked up; it stayed "running" forever, and a resume from another
machine could run it twice. With a heartbeat, a run silent for ``SILENT_AFTER`` reads as
``running (no heartbeat for …)`` and can be resumed, and one still beating is refused. Silence
is never proof of death (a suspended process is silent too), so nothing is deleted on it:
``gc`` keeps such a run's global models, as before.

Imports nothing heavy: ``registry.entities``, which training workers import, reads it.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol

from manymodels.stamps import seconds_between

logger = logging.getLogger(__name__)

EVERY_SECONDS = 30.0
SILENT_AFTER = 120.0
"""Four beats missed: longer than a busy database's lock waits, short beside a lost run."""


def silent_for(status: str, heartbeat_at: str | None, now: datetime | None = None) -> float | None:
    """Seconds since a running run's last heartbeat when that is past ``SILENT_AFTER``, else
    ``None``: it is beating, it is not running, or it was recorded before heartbeats."""
    if status != "running" or not heartbeat_at:
        return None
    silence = seconds_between(now or datetime.now(UTC), heartbeat_at)
    return silence if silence is not None and silence > SILENT_AFTER else None


def ahead_by(
    heartbeat_at: str | None, now: datetime | None = None, *, limit: float = SILENT_AFTER
) -> float | None:
    """Seconds a heartbeat is stamped ahead of this clock, past ``limit`` (a clock running
    ahead on the machine that beat), else ``None``. Such a beat proves nothing: a run killed
    there read as beating until the clock here caught up, blocking every run of its spec
    (``RunBusy``) and its own ``runs abandon`` meanwhile. ``limit`` is the silence limit of
    what beats: a run's ``SILENT_AFTER`` (the default), a router job's lease
    (``job_leases.router_gone``), a scheduler's mark's ``MARK_SILENT_AFTER``
    (``firings.under_way``) — the one rule of them all (``beat_proves_nothing``)."""
    age = seconds_between(now or datetime.now(UTC), heartbeat_at)
    return -age if age is not None and age < -limit else None


def beat_proves_nothing(stamp: str | None, limit: float, now: datetime | None = None) -> bool:
    """Whether the beat ``stamp`` is stamped ahead of this clock past ``limit``
    (``ahead_by``): it proves nothing of the process that wrote it. Written once for runs,
    router jobs and scheduler marks, each with its own limit, so they cannot drift."""
    return ahead_by(stamp, now, limit=limit) is not None


def spoken(seconds: float) -> str:
    """``95`` → ``"1 min"``, ``7200`` → ``"2 h"``: a silence as people read it."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600:.0f} h"
    return f"{seconds // 86400:.0f} days"


class Beats(Protocol):
    def beat(self, run_id: str, owner: str | None = None) -> bool: ...


class Heartbeat:
    """``with Heartbeat(store, run_id, owner):`` beats every ``every`` seconds until the block
    ends. A failed beat (the database briefly locked or unreachable) is logged and the next
    one tried: the run's work never waits for it or fails because of it. Once the run is
    another process's (it was resumed elsewhere while this one was paused), the beats stop
    and ``taken_over`` is set; the run's own writes are refused then too (``RunTakenOver``)."""

    def __init__(
        self, store: Beats, run_id: str, owner: str | None = None, *, every: float = EVERY_SECONDS
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.owner = owner
        self.every = every
        self.taken_over = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="run-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:  # a beat at once: the run may have waited since it was created
            try:
                if not self.store.beat(self.run_id, self.owner):
                    logger.info(  # the run's own next write says so, as its one line
                        "run %s was resumed by another process: this one stops beating for it",
                        self.run_id,
                    )
                    self.taken_over.set()
                    return
            except Exception as e:  # a locked or unreachable database: try again next time
                logger.warning("heartbeat of run %s not written: %s", self.run_id, e)
            if self._stop.wait(self.every):
                return
