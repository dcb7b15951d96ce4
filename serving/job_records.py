"""A retrain job's records as the API shows them, read from the registry's (``job_views``, for
one job as for a list), and the errors of the job manager (``serving.jobs``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

from sqlalchemy.exc import SQLAlchemyError

from manymodels.exceptions import ManyModelsError, RegistryError, RunBusy
from manymodels.registry.entities import ModelVersion
from manymodels.version_records import Outcome

if TYPE_CHECKING:
    from manymodels.registry.client import Registry
    from manymodels.registry.jobs import JobRecord

JobStatus = Literal["queued", "running", "succeeded", "failed"]


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
    ``version.evaluation``), the version production points at afterwards, and what the run
    warned of (``train``'s warnings: a time off the partition's calendar, a gap, …), which
    the poster sees nowhere else."""

    run_id: str
    version: ModelVersion | None
    production: int | None
    warnings: tuple[str, ...] = ()

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


def busy_error(e: RunBusy) -> str:
    """A job's error when a run of its spec trains as it starts: said as the job's, "busy"
    first and the run's id, not as the CLI's advice on that run (``runs abandon``)."""
    return (
        f"busy: run {e.run_id} of this partition's spec started training after the job was "
        "accepted; nothing was retrained: post the retrain again once that run has ended"
    )


def job_view(record: JobRecord, versions: Mapping[tuple[str, int], ModelVersion]) -> Job:
    """The job as the API shows it: its data and result read back as entities — its version
    from ``versions`` (read by ``job_views``, the one way in, for one job as for a list: absent
    when collected since, or unreadable now, and the job still says what it did); its run's
    warnings from its own record (written as it ended), never from the run."""
    result = None
    if record.run_id is not None:
        number = record.version
        version = versions.get((record.partition, number)) if number is not None else None
        result = RetrainResult(record.run_id, version, record.production, record.warnings)
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


def job_views(records: Sequence[JobRecord], registry: Registry | None) -> list[Job]:
    """``job_view`` of each record, their versions read together (``get_versions``: a few
    batched reads): ``GET /v1/jobs?limit=1000`` read each job's version apart, a read per job.
    One job's view (``GET /v1/jobs/{id}``) is this of a list of one."""
    pairs = sorted(
        {(r.partition, r.version) for r in records if r.run_id and r.version is not None}
    )
    versions: dict[tuple[str, int], ModelVersion] = {}
    if pairs and registry is not None:
        try:
            versions = {(v.key, v.version): v for v in registry.store.get_versions(pairs)}
        except (RegistryError, SQLAlchemyError):  # unreadable now: the jobs still say what
            versions = {}  # they did
    return [job_view(r, versions) for r in records]
