"""Retraining off the request path: a job manager whose jobs live in the registry database
(the work is ``serving.retrain.Retrainer``).

    jobs, retrainer = JobManager(workers=1), Retrainer(service, backend="local")
    jobs.attach(registry)                                   # the app does this as it starts
    target = retrainer.target("store=2,brand=tropicana")   # 404 / 422 before anything else
    plan = retrainer.prepare(target, frame, fmt="json")     # checked, then stored (sha256)
    job = jobs.submit(target.key, lambda: retrainer.run(plan), backend="local", data=plan.data)
    jobs.get(job.job_id).status                 # queued → running → succeeded | failed

``JobManager`` runs this router's jobs on a bounded thread pool (one worker by default: a
retrain already fans out on its backend) and records them in the registry's ``jobs`` table
(``manymodels.registry.jobs``): every router sharing the database answers for every job, and
at most one job per partition is queued or running across all of them (a second one is a
``JobConflict``), so two retrains of one partition never interleave. The work itself (a closure
over the posted rows) lives only in the router that accepted it: a router that stops without
finishing its jobs — killed, crashed — leaves them to be failed visibly ("router restarted")
by the next router that looks, at once on the same host and after ``lease_seconds`` elsewhere
— as succeeded when the job's run registered a version (``manymodels.registry.job_outcomes``).
The newest ``history`` finished jobs are kept.

A job's start and end are written again while the database is away (``serving.job_retries``):
a start until it is written (the job stays queued meanwhile, and runs once the database is
back), an end for ``patience`` seconds in the job's worker, then with each heartbeat, the job
kept alive meanwhile, until it is written or the manager closes. This manager never ends its
own live jobs as a stopped router's, whatever their last heartbeat.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from manymodels.exceptions import ManyModelsError, RegistryError, RunBusy, first_line
from manymodels.registry.jobs import JobBusy, JobRecord, JobTable, router_id
from manymodels.registry.pg_silence import answered_by
from manymodels.registry.store import now
from serving.job_heartbeat import Heartbeat
from serving.job_pool import DaemonPool
from serving.job_records import (
    Job,
    JobConflict,
    JobFailed,
    JobNotFound,
    JobQueueFull,
    JobStatus,
    RetrainResult,
    UploadedData,
    busy_error,
    job_views,
)
from serving.job_retries import retried, transient

if TYPE_CHECKING:
    from manymodels.registry.client import Registry

logger = logging.getLogger("manymodels.serving.jobs")

__all__ = [
    "SHUTDOWN", "Job", "JobConflict", "JobFailed", "JobManager", "JobNotFound", "JobQueueFull",
    "JobStatus", "RetrainResult", "UploadedData", "new_job_id",
]  # fmt: skip

SHUTDOWN = "the router shut down before the job started"
MAX_WAIT = 5.0  # seconds between two tries of a job's start or end, at most
CLOSE_SECONDS = 5.0
"""The most ``close`` gives each of its writes (failing the queued jobs, the end of a job
finishing meanwhile, the last try of the ends not yet recorded) and the heartbeat's join, a
reconnect taking 2 s more at most (libpq's least ``connect_timeout``): with the registry
database frozen, each waited as long as its connections did (25 s), and a router's exit on
SIGTERM passed the 30 s Kubernetes gives. What is not written by then is read from the jobs'
runs by whoever ends them (``manymodels.registry.job_outcomes``)."""


STOP_SECONDS = 20.0
"""How long ``close`` waits for a running job's fit before it leaves it: within the 30 s a
supervisor gives a SIGTERM (Kubernetes' grace; systemd waits 90 s), with room for the writes
after it. A fit of minutes held ``manymodels serve`` on SIGTERM for as long, until the
supervisor's SIGKILL. Left running, the job is ended by the next router to look, with its
run ("router restarted"), as after a kill. Its worker is a daemon thread
(``serving.job_pool``), so neither ``manymodels serve`` nor a program embedding the router
waits for it at exit."""


def new_job_id() -> str:
    return uuid.uuid4().hex[:16]


# --------------------------------------------------------------------------------------------
# the job manager
# --------------------------------------------------------------------------------------------
Work = Callable[[], RetrainResult]


class JobManager:
    """This router's jobs on a bounded thread pool, recorded in the registry database.

    ``attach(registry)`` (the app does it once the registry is open) must come before
    ``submit``; it also fails the jobs of routers that stopped without finishing theirs.
    ``before_run(job)`` is called in the worker thread as each job starts running (a seam for
    tests that need a job to stay running). Listeners added with ``add_listener`` are called
    with every job this manager ends (metrics). The pool is created on the first ``submit``;
    ``close`` fails the queued jobs and waits for the running ones (``stop_seconds`` at most),
    and may be followed by more
    submits (an app started twice). ``patience``: seconds a job's end is retried in its worker
    before the heartbeat thread takes it over.
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        history: int = 100,
        max_pending: int = 100,
        lease_seconds: float = 60.0,
        patience: float = 10.0,
        before_run: Callable[[Job], None] | None = None,
        stop_seconds: float = STOP_SECONDS,
    ) -> None:
        if workers < 1 or history < 1 or max_pending < 1 or lease_seconds <= 0 or patience < 0:
            raise ValueError(
                "workers, history and max_pending must each be at least 1, lease_seconds > 0, "
                "patience >= 0"
            )
        self.workers = workers
        self.history = history
        self.max_pending = max_pending
        self.lease_seconds = lease_seconds
        self.patience = patience
        self.before_run = before_run
        self.stop_seconds = stop_seconds
        self.left_running = False  # a ``close`` left a job's fit running (``STOP_SECONDS``)
        self.owner = router_id()
        self._registry: Registry | None = None
        self._lock = threading.Lock()
        # ids of this manager's queued or running jobs: replaced (under the lock), never
        # changed, so that reads take no lock (``submit`` holds it while it writes)
        self._mine: frozenset[str] = frozenset()
        self._ends: dict[str, tuple[JobStatus, dict[str, Any]]] = {}  # ended, not yet recorded
        self._listeners: list[Callable[[Job], None]] = []
        self._pool: DaemonPool | None = None
        self._futures: set[Future[None]] = set()  # submitted, not yet done
        self._closing = threading.Event()  # set while ``close`` runs: retries give up
        self._heartbeat = Heartbeat(self._beat, lease_seconds / 4)

    def add_listener(self, listener: Callable[[Job], None]) -> None:
        self._listeners.append(listener)

    def attach(self, registry: Registry) -> None:
        """Keep jobs in ``registry``'s database; fail those whose router is gone."""
        self._registry = registry
        if registry.read_only is None:
            self._notify(job_views(registry.jobs.expire(self.lease_seconds), registry))

    @property
    def table(self) -> JobTable:
        if self._registry is None:
            raise RegistryError("the job manager has no registry yet (attach one first)")
        return self._registry.jobs

    def submit(
        self,
        partition: str,
        work: Work,
        *,
        backend: str,
        data: UploadedData | None = None,
        job_id: str | None = None,
    ) -> Job:
        """Queue ``work`` for ``partition`` (as ``job_id``, a ``new_job_id()`` its work may
        name); raises ``JobConflict`` if it already has a job queued or running on any router,
        ``JobQueueFull`` past ``max_pending`` active jobs here, and the registry's error when
        the job cannot be recorded (then nothing is queued)."""
        table = self.table
        with self._lock:
            if len(self._mine) >= self.max_pending:
                raise JobQueueFull(
                    f"{len(self._mine)} retrain jobs are queued or running already; "
                    "retry once some have finished"
                )
            at = now()
            record = JobRecord(
                job_id=job_id or new_job_id(), partition=partition, status="queued",
                backend=backend, owner=self.owner, created_at=at, heartbeat_at=at,
                data=asdict(data) if data is not None else None,
            )  # fmt: skip
            try:
                table.submit(record, lease=self.lease_seconds, spare=self._mine)
            except JobBusy as e:
                raise JobConflict(self._job(e.job)) from None
            self._mine |= {record.job_id}
            if self._pool is None:
                self._pool = DaemonPool(
                    self.workers, thread_name_prefix="retrain", exit_seconds=self.stop_seconds
                )
            future = self._pool.submit(self._run, record.job_id, work)
            self._futures.add(future)
            future.add_done_callback(self._futures.discard)
            self._heartbeat.start()  # one thread per manager, every quarter lease
        logger.info("job %s queued: retrain %s", record.job_id, partition)
        return self._job(record)

    def get(self, job_id: str) -> Job:
        record = self.table.get(job_id, lease=self.lease_seconds, spare=self._mine)
        if record is None:
            raise JobNotFound(
                f"no job '{job_id}' (the registry keeps every active job and the newest "
                f"{self.history} finished ones)"
            )
        return self._job(record)

    def recent(self, *, limit: int = 50) -> list[Job]:
        """The newest jobs first, of every router sharing the registry (those of a router that
        is gone ended first, as ``get`` ends them)."""
        records = self.table.recent(limit=limit, lease=self.lease_seconds, spare=self._mine)
        return job_views(records, self._registry)

    def active(self, partition: str) -> Job | None:
        record = self.table.active(partition, lease=self.lease_seconds, spare=self._mine)
        return self._job(record) if record is not None else None

    def close(self) -> None:
        """Fail the queued jobs (they will not start), then wait for the running ones, at most
        ``stop_seconds`` (``STOP_SECONDS``); an end still unrecorded gets one last try, else
        whoever ends the job reads it from its run."""
        self._closing.set()
        with self._lock:
            pool, self._pool = self._pool, None
        if self._registry is not None and self._mine:
            try:
                with answered_by(time.monotonic() + CLOSE_SECONDS):
                    dropped = self.table.fail_queued(self.owner, SHUTDOWN)
            except Exception as e:
                if not transient(e):
                    raise
                logger.warning("could not fail the queued retrain jobs: %s", first_line(e))
                dropped = []
            with self._lock:
                self._mine -= {r.job_id for r in dropped}
            self._notify(job_views(dropped, self._registry))
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            _, running = wait(list(self._futures), timeout=self.stop_seconds)
            if running:
                self.left_running = True
                logger.warning(
                    "retrain job(s) still running after %.0f s: not waited for; their runs "
                    "end as the router's stop left them", self.stop_seconds,
                )  # fmt: skip
        self._heartbeat.stop(CLOSE_SECONDS)
        with answered_by(time.monotonic() + CLOSE_SECONDS):
            self._settle()
        with self._lock:
            left, self._mine, self._ends = sorted(self._mine), frozenset(), {}
        if left:
            logger.warning("retrain job(s) %s left for the next router to end", ", ".join(left))
        self._closing.clear()

    # ---------------------------------------------------------------------------- worker
    def _run(self, job_id: str, work: Work) -> None:
        try:  # queued until written, however long the database is away
            record = retried(
                lambda: self.table.start(job_id, owner=self.owner), what=f"job {job_id}'s start",
                stop=self._closing, cap=self._cap,
            )  # fmt: skip
        except Exception as e:  # the manager closes meanwhile, or a bug: ended after the lease
            if transient(e):
                logger.warning("job %s did not start: %s", job_id, first_line(e))
            else:
                logger.exception("job %s could not start", job_id)
            record = None
        if record is None:  # ended meanwhile (dropped by ``close``)
            with self._lock:
                self._mine -= {job_id}
            return
        job = self._job(record)
        logger.info("job %s running: retrain %s", job_id, job.partition)
        try:
            if self.before_run is not None:
                self.before_run(job)
            result = work()
        except JobFailed as e:
            self._finish(job_id, "failed", error=str(e), result=e.result)
        except RunBusy as e:  # a run of the spec started after the job was accepted (409 then)
            self._finish(job_id, "failed", error=busy_error(e))
        except ManyModelsError as e:
            self._finish(job_id, "failed", error=str(e))
        except Exception as e:
            logger.exception("job %s failed", job_id)
            self._finish(job_id, "failed", error=f"{type(e).__name__}: {first_line(e)}")
        else:
            self._finish(job_id, "succeeded", result=result)

    def _finish(
        self, job_id: str, status: JobStatus, *, error: str | None = None,
        result: RetrainResult | None = None,
    ) -> None:  # fmt: skip
        version = result.version if result is not None else None
        fields = {
            "error": error, "run_id": result.run_id if result is not None else None,
            "version": version.version if version is not None else None,
            "production": result.production if result is not None else None,
            "warnings": result.warnings if result is not None else (),
        }  # fmt: skip
        closing = self._closing.is_set()  # then ``close`` waits for this: its bound holds
        try:
            with answered_by(time.monotonic() + CLOSE_SECONDS if closing else math.inf):
                record = retried(
                    lambda: self.table.finish(job_id, status, history=self.history, **fields),
                    what=f"job {job_id}'s end", stop=self._closing, cap=self._cap,
                    patience=self.patience,
                )  # fmt: skip
        except Exception as e:
            if transient(e):  # still alive, beaten, and retried with each heartbeat
                logger.warning("job %s %s; its end is not recorded yet: %s", job_id, status,
                               first_line(e))  # fmt: skip
                with self._lock:
                    self._ends[job_id] = (status, fields)
                return
            logger.exception("job %s %s; its end could not be recorded", job_id, status)
            record = None  # left to whoever ends it as a stopped router's: it reads the run
        self._ended(job_id, status, record)

    def _settle(self) -> None:
        """Record the ends that could not be recorded yet; stop at the first that still
        cannot be (the database is away still: the next heartbeat tries again)."""
        with self._lock:
            ends = dict(self._ends)
        for job_id, (status, fields) in ends.items():
            try:
                record = self.table.finish(job_id, status, history=self.history, **fields)
            except Exception as e:
                if transient(e):
                    logger.warning("job %s's end is still not recorded: %s", job_id, first_line(e))
                    return
                logger.exception("job %s %s; its end could not be recorded", job_id, status)
                record = None
            self._ended(job_id, status, record)

    def _ended(self, job_id: str, status: JobStatus, record: JobRecord | None) -> None:
        with self._lock:
            self._ends.pop(job_id, None)
            self._mine -= {job_id}
        if record is None:  # ended meanwhile by another router
            return
        if record.status != status:
            logger.warning("job %s %s, but its run %s registered v%s: recorded %s", job_id,
                           status, record.run_id, record.version, record.status)  # fmt: skip
        self._notify([self._job(record)])

    @property
    def _cap(self) -> float:
        return min(MAX_WAIT, self.lease_seconds / 4)

    def _beat(self) -> None:
        """What the heartbeat does: the ends not recorded yet, then this router's jobs alive."""
        self._settle()
        self.table.heartbeat(sorted(self._mine))

    def _job(self, record: JobRecord) -> Job:
        """One job as the API shows it: ``job_views`` of one, the list's one path to versions."""
        return job_views([record], self._registry)[0]

    def _notify(self, jobs: list[Job]) -> None:
        for job in jobs:
            error = job.error or ""
            logger.info("job %s %s: retrain %s %s", job.job_id, job.status, job.partition, error)
            for listener in self._listeners:
                try:
                    listener(job)
                except Exception:
                    logger.exception("job listener failed")
