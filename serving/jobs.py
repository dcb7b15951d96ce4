"""Retraining off the request path: a small in-memory job manager (the work is
``serving.retrain.Retrainer``).

    jobs, retrainer = JobManager(workers=1), Retrainer(service, backend="local")
    target = retrainer.target("store=2,brand=tropicana")   # 404 / 422 before anything else
    plan = retrainer.prepare(target, frame, fmt="json")     # checked, then stored (sha256)
    job = jobs.submit(target.key, lambda: retrainer.run(plan), backend="local", data=plan.data)
    jobs.get(job.job_id).status                 # queued → running → succeeded | failed

``JobManager`` runs jobs on a bounded thread pool (one worker by default: a retrain already fans
out on its backend) and keeps them in memory: every queued or running job and the newest
``history`` finished ones. A restart forgets them; the registry (runs, versions, alias history)
is the durable record. At most one job per partition is queued or running, so two retrains of
one partition never interleave: a second one is a ``JobConflict``.

"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal

from manymodels.exceptions import ManyModelsError
from manymodels.registry.entities import ModelVersion
from manymodels.registry.store import now

logger = logging.getLogger("manymodels.serving.jobs")

JobStatus = Literal["queued", "running", "succeeded", "failed"]
Outcome = Literal["first", "promoted", "kept"]
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
        evaluation = self.version.evaluation
        if evaluation.get("champion_version") is None:
            return "first"
        return "promoted" if evaluation.get("promote") else "kept"


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
    """No job with that id in memory (never submitted, evicted from the history, or lost in a
    restart)."""


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
    """Jobs on a bounded thread pool, kept in memory; one active job per partition.

    ``before_run(job)`` is called in the worker thread as each job starts running (a seam for
    tests that need a job to stay running). Listeners added with ``add_listener`` are called
    with every finished job (metrics). The pool is created on the first ``submit``; ``close``
    fails the queued jobs and waits for the running ones, and may be followed by more submits
    (an app started twice).
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        history: int = 100,
        max_pending: int = 100,
        before_run: Callable[[Job], None] | None = None,
    ) -> None:
        if workers < 1 or history < 1 or max_pending < 1:
            raise ValueError("workers, history and max_pending must each be at least 1")
        self.workers = workers
        self.history = history
        self.max_pending = max_pending
        self.before_run = before_run
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # in submission order
        self._active: dict[str, str] = {}  # partition → id of its queued or running job
        self._finished: deque[str] = deque()
        self._listeners: list[Callable[[Job], None]] = []
        self._pool: ThreadPoolExecutor | None = None

    def add_listener(self, listener: Callable[[Job], None]) -> None:
        self._listeners.append(listener)

    def submit(
        self, partition: str, work: Work, *, backend: str, data: UploadedData | None = None
    ) -> Job:
        """Queue ``work`` for ``partition``; raises ``JobConflict`` if it already has a job
        queued or running, ``JobQueueFull`` past ``max_pending`` active jobs."""
        with self._lock:
            current = self._active.get(partition)
            if current is not None:
                raise JobConflict(self._jobs[current])
            if len(self._active) >= self.max_pending:
                raise JobQueueFull(
                    f"{len(self._active)} retrain jobs are queued or running already; "
                    "retry once some have finished"
                )
            job = Job(uuid.uuid4().hex[:16], partition, "queued", now(), backend, data)
            self._jobs[job.job_id] = job
            self._active[partition] = job.job_id
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="retrain")
            self._pool.submit(self._run, job.job_id, work)
        logger.info("job %s queued: retrain %s", job.job_id, partition)
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(
                f"no job '{job_id}' (jobs are kept in memory: every active one and the newest "
                f"{self.history} finished ones, not across restarts)"
            )
        return job

    def recent(self, *, limit: int = 50) -> list[Job]:
        """The newest jobs first."""
        with self._lock:
            jobs = list(self._jobs.values())
        return jobs[::-1][:limit]

    def active(self, partition: str) -> Job | None:
        job_id = self._active.get(partition)
        return self._jobs.get(job_id) if job_id is not None else None

    def close(self) -> None:
        """Fail the queued jobs (they will not start), then wait for the running ones."""
        with self._lock:
            pool, self._pool = self._pool, None
            queued = [j for j in self._active.values() if self._jobs[j].status == "queued"]
            dropped = [self._end(j, "failed", error=SHUTDOWN) for j in queued]
        self._notify(dropped)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    # ---------------------------------------------------------------------------- worker
    def _run(self, job_id: str, work: Work) -> None:
        with self._lock:
            job = self._jobs[job_id]
            if job.status != "queued":  # dropped by ``close`` meanwhile
                return
            job = self._jobs[job_id] = replace(job, status="running", started_at=now())
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

    def _finish(self, job_id: str, status: JobStatus, **fields: Any) -> None:
        with self._lock:
            job = self._end(job_id, status, **fields)
        self._notify([job])

    def _end(self, job_id: str, status: JobStatus, **fields: Any) -> Job:
        """Record a job's end (the lock is held) and forget the oldest beyond ``history``."""
        job = self._jobs[job_id] = replace(
            self._jobs[job_id], status=status, finished_at=now(), **fields
        )
        if self._active.get(job.partition) == job_id:
            del self._active[job.partition]
        self._finished.append(job_id)
        while len(self._finished) > self.history:
            self._jobs.pop(self._finished.popleft(), None)
        return job

    def _notify(self, jobs: list[Job]) -> None:
        for job in jobs:
            error = job.error or ""
            logger.info("job %s %s: retrain %s %s", job.job_id, job.status, job.partition, error)
            for listener in self._listeners:
                try:
                    listener(job)
                except Exception:
                    logger.exception("job listener failed")
