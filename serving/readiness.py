"""The readiness checks' ping of the registry's database, bounded in time.

``/readyz`` and ``/v2/health/ready`` ping the database on every call. A PostgreSQL server that
stops answering (frozen, or cut off by a network partition) held that ping — and so the
probe — for as long as it was silent (found by the outage attack), and a probe that does not
answer is not a "no". Now the ping runs in a thread of its own and the check waits for it at
most ``READY_TIMEOUT_SECONDS``, then answers "not ready". A check that arrives while a ping is
still out waits for that one rather than starting another: a prober retrying every second
would otherwise take a thread and a pooled connection per retry, each held until the
database's own bound ends it (``manymodels.registry.pg_silence``). The ping's own waits for
PostgreSQL end with the check's bound too (``answered_by``): it gives its connection up rather
than running on, so nothing is left using the registry after a router closes it. The thread is
a daemon all the same: a SQLite registry's ping, or one waiting for a pooled connection, is
not bounded so, and must not hold up the router's exit.

The look at the registry's file (``serving.replaced``: a ``stat`` of its path) runs in that
same thread, first, under the same bound: on the event loop, a ``stat`` on a hung NFS mount
froze the whole router, probes and predictions alike, which the thread exists to prevent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from manymodels.exceptions import RegistryError
from manymodels.registry.pg_silence import answered_by

READY_TIMEOUT_SECONDS = 5.0
"""How long a readiness check waits for the registry database to answer its ping."""


@dataclass(frozen=True)
class NotReady:
    """Why a readiness check says no. ``replaced``: the registry's file is no longer the one
    opened, which lasts until a restart (no ``Retry-After``) and names no host or path, so it
    is said to every caller; otherwise the database did not answer, which may end by itself."""

    why: str
    replaced: bool = False


class RegistryPing:
    """``await ping.why_not()``: ``None`` when the registry's file is the one opened (when
    ``replaced`` is given) and the database answered in time, else why not."""

    def __init__(
        self, ping: Callable[[], None], replaced: Callable[[], str | None] | None = None
    ) -> None:
        self._ping = ping
        self._replaced = replaced
        self._lock = threading.Lock()
        self._out: concurrent.futures.Future[str | None] | None = None

    async def why_not(self) -> NotReady | None:
        with self._lock:
            out = self._out
            if out is None or out.done():
                out = self._out = concurrent.futures.Future()
                out.set_running_or_notify_cancel()  # a waiter giving up cannot cancel it
                threading.Thread(
                    target=self._run, args=(out,), name="registry-ping", daemon=True
                ).start()
        try:
            replaced = await asyncio.wait_for(asyncio.wrap_future(out), READY_TIMEOUT_SECONDS)
        except TimeoutError:
            return NotReady(f"the registry database did not answer in {READY_TIMEOUT_SECONDS:g} s")
        except RegistryError as e:
            return NotReady(str(e))
        return None if replaced is None else NotReady(replaced, replaced=True)

    def _run(self, out: concurrent.futures.Future[str | None]) -> None:
        try:
            # the file first: a ping of a new file may fail for that reason
            replaced = self._replaced() if self._replaced is not None else None
            if replaced is None:
                with answered_by(time.monotonic() + READY_TIMEOUT_SECONDS):
                    self._ping()
        except BaseException as e:  # handed to the waiters, who say what it was
            out.set_exception(e)
        else:
            out.set_result(replaced)
