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
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable

from manymodels.exceptions import RegistryError
from manymodels.registry.pg_silence import answered_by

READY_TIMEOUT_SECONDS = 5.0
"""How long a readiness check waits for the registry database to answer its ping."""


class RegistryPing:
    """``await ping.why_not()``: ``None`` when the database answered in time, else why not."""

    def __init__(self, ping: Callable[[], None]) -> None:
        self._ping = ping
        self._lock = threading.Lock()
        self._out: concurrent.futures.Future[None] | None = None

    async def why_not(self) -> str | None:
        with self._lock:
            out = self._out
            if out is None or out.done():
                out = self._out = concurrent.futures.Future()
                out.set_running_or_notify_cancel()  # a waiter giving up cannot cancel it
                threading.Thread(
                    target=self._run, args=(out,), name="registry-ping", daemon=True
                ).start()
        try:
            await asyncio.wait_for(asyncio.wrap_future(out), READY_TIMEOUT_SECONDS)
        except TimeoutError:
            return f"the registry database did not answer in {READY_TIMEOUT_SECONDS:g} s"
        except RegistryError as e:
            return str(e)
        return None

    def _run(self, out: concurrent.futures.Future[None]) -> None:
        try:
            with answered_by(time.monotonic() + READY_TIMEOUT_SECONDS):
                self._ping()
        except BaseException as e:  # handed to the waiters, who say what it was
            out.set_exception(e)
        else:
            out.set_result(None)
