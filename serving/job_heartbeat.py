"""The heartbeat of a router's retrain jobs: one daemon thread that, every quarter lease,
writes the job ends not recorded yet and says this router's jobs are alive.

Kept apart from ``serving.jobs`` because its life is its own: started with the first job,
stopped by ``close`` with a bounded join, and never ended by an error (a heartbeat thread gone
let every job running here be failed as a stopped router's after the lease). Each thread has
a stop event of its own, so that one left running by a ``close`` whose join timed out is never
woken into beating again beside the next.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from manymodels.exceptions import first_line
from serving.job_retries import transient

logger = logging.getLogger("manymodels.serving.jobs")


class Heartbeat:
    """Calls ``beat`` every ``every`` seconds on a daemon thread between ``start`` and
    ``stop``; an error is logged (a database away for a moment as a warning) and the next
    beat comes as due."""

    def __init__(self, beat: Callable[[], None], every: float) -> None:
        self.beat = beat
        self.every = every
        # the beating thread and what stops it
        self.beating: tuple[threading.Thread, threading.Event] | None = None

    def start(self) -> None:
        """A thread, unless one beats already (the caller holds its lock)."""
        if self.beating is None or not self.beating[0].is_alive():
            stop = threading.Event()
            beating = threading.Thread(
                target=self._beat, args=(stop,), name="retrain-heartbeat", daemon=True
            )
            self.beating = (beating, stop)
            beating.start()

    def stop(self, timeout: float) -> None:
        """Stop the thread, waiting ``timeout`` seconds at most for its beat under way."""
        if self.beating is not None:
            beating, stop = self.beating
            stop.set()
            beating.join(timeout)
            self.beating = None

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.every):
            try:
                self.beat()
            except Exception as e:  # the database is away for a moment: the next beat retries
                if transient(e):
                    logger.warning("retrain job heartbeat failed: %s", first_line(e))
                else:
                    logger.exception("retrain job heartbeat failed")
