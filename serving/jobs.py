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
by the next router that looks, at once on the same host and after ``lease_seconds`` elsewhere.
The newest ``history`` finished jobs are kept.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal, cast

from manymodels.exceptions import ManyModelsError, RegistryError
from manymodels.registry.entities import ModelVersion
from manymodels.registry.jobs import JobBusy, JobRecord, JobTable, router_id
from manymodels.registry.store import now
from manymodels.version_records import Outcome

if TYPE_CHECKING:
    from manymodels.registry.client import Registry

logger = logging.getLogger("manymodels.serving.jobs")

JobStatus = Literal["queued", "running", "succeeded", "failed"]
SHUTDOWN = "the router shut down before the job started"


# --------------------------------------------------------------------------------------------
# records and errors
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UploadedData:
    """The rows a retrain trains on, as stored: Parquet bytes under their sha256."""

    sha256: str
    size: int
    rows: int
    format: str  # what the client sent: json, csv or parquet
    filename: str | None = None


@dataclass(frozen=True)
class RetrainResult:
    """What a retrain produced: its run, the new version (with the policy's decision in
    ``version.evaluation``), and the version production points at afterwards."""

    run_id: str
    version: ModelVersion | None
    production: int | None

    @property
    def outcome(self) -> Outcome | None:
        if self.version is None:
            return None
        decision = self.version.decision
        return decision.outcome if decision is not None else "first"


@dataclass(frozen=True)
class Job:
    """One job as it stands; the manager replaces it as it moves along, never mutates it."""

    job_id: str
    partition: str
    status: JobStatus
    created_at: str
    backend: str
    data: UploadedData | None = None
    started_at: str | None = None
    finished_at: str | None = None
    result: RetrainResult | None = None
    error: str | None = None
    kind: str = "retrain"

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def outcome(self) -> str | None:
        """``first`` / ``promoted`` / ``kept`` once succeeded, ``failed``, or ``None``."""
        if self.status == "failed":
            return "failed"
        return self.result.outcome if self.result is not None else None


class JobNotFound(ManyModelsError, LookupError):
    """No job with that id in the registry (never submitted, or evicted from the history)."""


class JobConflict(ManyModelsError):
    """The partition already has a job queued or running."""

    def __init__(self, job: Job) -> None:
        self.job = job
        super().__init__(
            f"a retrain of partition '{job.partition}' is already {job.status} (job "
            f"{job.job_id}); retrains of one partition run one at a time: poll "
            f"/v1/jobs/{job.job_id} and retry once it has finished"
        )


class JobQueueFull(ManyModelsError):
    """Too many jobs queued or running."""


class JobFailed(ManyModelsError):
    """Raised by a job's work to fail it with a message for the client (and what it got to)."""

    def __init__(self, message: str, result: RetrainResult | None = None) -> None:
        super().__init__(message)
        self.result = result


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
    ``close`` fails the queued jobs and waits for the running ones, and may be followed by more
    submits (an app started twice).
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        history: int = 100,
        max_pending: int = 100,
        lease_seconds: float = 60.0,
        before_run: Callable[[Job], None] | None = None,
    ) -> None:
        if workers < 1 or history < 1 or max_pending < 1 or lease_seconds <= 0:
            raise ValueError(
                "workers, history and max_pending must each be at least 1, lease_seconds > 0"
            )
        self.workers = workers
        self.history = history
        self.max_pending = max_pending
        self.lease_seconds = lease_seconds
        self.before_run = before_run
        self.owner = router_id()
        self._registry: Registry | None = None
        self._lock = threading.Lock()
        self._mine: set[str] = set()  # ids of this manager's queued or running jobs
        self._listeners: list[Callable[[Job], None]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._stop = threading.Event()
        self._beating: threading.Thread | None = None

    def add_listener(self, listener: Callable[[Job], None]) -> None:
        self._listeners.append(listener)

    def attach(self, registry: Registry) -> None:
        """Keep jobs in ``registry``'s database; fail those whose router is gone."""
        self._registry = registry
        if registry.read_only is None:
            self._notify([self._job(r) for r in registry.jobs.expire(self.lease_seconds)])

    @property
    def table(self) -> JobTable:
        if self._registry is None:
            raise RegistryError("the job manager has no registry yet (attach one first)")
        return self._registry.jobs

    def submit(
        self, partition: str, work: Work, *, backend: str, data: UploadedData | None = None
    ) -> Job:
        """Queue ``work`` for ``partition``; raises ``JobConflict`` if it already has a job
        queued or running on any router, ``JobQueueFull`` past ``max_pending`` active jobs
        here."""
        table = self.table
        with self._lock:
            if len(self._mine) >= self.max_pending:
                raise JobQueueFull(
                    f"{len(self._mine)} retrain jobs are queued or running already; "
                    "retry once some have finished"
                )
            at = now()
            record = JobRecord(
                job_id=uuid.uuid4().hex[:16], partition=partition, status="queued",
                backend=backend, owner=self.owner, created_at=at, heartbeat_at=at,
                data=asdict(data) if data is not None else None,
            )  # fmt: skip
            try:
                table.submit(record, lease=self.lease_seconds)
            except JobBusy as e:
                raise JobConflict(self._job(e.job)) from None
            self._mine.add(record.job_id)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="retrain")
            self._pool.submit(self._run, record.job_id, work)
            self._start_heartbeat()
        logger.info("job %s queued: retrain %s", record.job_id, partition)
        return self._job(record)

    def get(self, job_id: str) -> Job:
        record = self.table.get(job_id, lease=self.lease_seconds)
        if record is None:
            raise JobNotFound(
                f"no job '{job_id}' (the registry keeps every active job and the newest "
                f"{self.history} finished ones)"
            )
        return self._job(record)

    def recent(self, *, limit: int = 50) -> list[Job]:
        """The newest jobs first, of every router sharing the registry."""
        return [self._job(r) for r in self.table.recent(limit=limit)]

    def active(self, partition: str) -> Job | None:
        record = self.table.active(partition, lease=self.lease_seconds)
        return self._job(record) if record is not None else None

    def close(self) -> None:
        """Fail the queued jobs (they will not start), then wait for the running ones."""
        with self._lock:
            pool, self._pool = self._pool, None
        if self._registry is not None and self._mine:
            dropped = self.table.fail_queued(self.owner, SHUTDOWN)
            with self._lock:
                self._mine.difference_update(r.job_id for r in dropped)
            self._notify([self._job(r) for r in dropped])
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._stop.set()
        if self._beating is not None:
            self._beating.join(10)
            self._beating = None
        self._stop.clear()

    # ---------------------------------------------------------------------------- worker
    def _run(self, job_id: str, work: Work) -> None:
        try:
            record = self.table.start(job_id)
        except RegistryError:  # the database is away: unbeaten, it fails after the lease
            logger.exception("job %s could not start", job_id)
            record = None
        if record is None:  # failed meanwhile (dropped by ``close``)
            with self._lock:
                self._mine.discard(job_id)
            return
        job = self._job(record)
        logger.info("job %s running: retrain %s", job_id, job.partition)
        try:
            if self.before_run is not None:
                self.before_run(job)
            result = work()
        except JobFailed as e:
            self._finish(job_id, "failed", error=str(e), result=e.result)
        except ManyModelsError as e:
            self._finish(job_id, "failed", error=str(e))
        except Exception as e:
            logger.exception("job %s failed", job_id)
            self._finish(job_id, "failed", error=f"{type(e).__name__}: {e}")
        else:
            self._finish(job_id, "succeeded", result=result)

    def _finish(
        self, job_id: str, status: JobStatus, *, error: str | None = None,
        result: RetrainResult | None = None,
    ) -> None:  # fmt: skip
        version = result.version if result is not None else None
        try:
            record = self.table.finish(
                job_id, status, history=self.history, error=error,
                run_id=result.run_id if result is not None else None,
                version=version.version if version is not None else None,
                production=result.production if result is not None else None,
            )  # fmt: skip
        finally:
            with self._lock:
                self._mine.discard(job_id)
        if record is not None:
            self._notify([self._job(record)])

    def _start_heartbeat(self) -> None:
        """One thread per manager says its jobs are alive every quarter lease (the lock is
        held)."""
        if self._beating is None or not self._beating.is_alive():
            self._beating = threading.Thread(
                target=self._beat, name="retrain-heartbeat", daemon=True
            )
            self._beating.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_seconds / 4):
            with self._lock:
                mine = sorted(self._mine)
            try:
                self.table.heartbeat(mine)
            except RegistryError:  # the database is away for a moment: the next beat retries
                logger.warning("retrain job heartbeat failed", exc_info=True)

    def _job(self, record: JobRecord) -> Job:
        """The job as the API shows it: its data and result read back as entities."""
        result = None
        if record.run_id is not None:
            version = None
            if record.version is not None and self._registry is not None:
                try:
                    version = self._registry.get_version(record.partition, record.version)
                except RegistryError:  # collected since: the job still says what it did
                    version = None
            result = RetrainResult(record.run_id, version, record.production)
        return Job(
            job_id=record.job_id,
            partition=record.partition,
            status=cast(JobStatus, record.status),
            created_at=record.created_at,
            backend=record.backend,
            data=UploadedData(**record.data) if record.data is not None else None,
            started_at=record.started_at,
            finished_at=record.finished_at,
            result=result,
            error=record.error,
            kind=record.kind,
        )

    def _notify(self, jobs: list[Job]) -> None:
        for job in jobs:
            error = job.error or ""
            logger.info("job %s %s: retrain %s %s", job.job_id, job.status, job.partition, error)
            for listener in self._listeners:
                try:
                    listener(job)
                except Exception:
                    logger.exception("job listener failed")
