"""The retrain API's bodies: a retrain request, the job it queues, and the decision a
finished retrain reports (both models' scores and the promotion policy's verdict)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from manymodels.registry.entities import ModelVersion
from serving.schemas import RequestBody

if TYPE_CHECKING:
    from serving.jobs import Job, UploadedData


Cell = str | int | float | bool | None


def _holds_values(row: dict[str, Cell]) -> dict[str, Cell]:
    """A row with no values can never be trained on: refused as a big body's first MiB
    refuses it (``serving.routes.retrain``), so a body's size does not decide its answer."""
    if not row:
        raise PydanticCustomError("value_error", "the row holds no values")
    return row


class RetrainRequest(RequestBody):
    rows: Annotated[
        list[Annotated[dict[str, Cell], AfterValidator(_holds_values)]],
        Field(
            min_length=1,
            description="Training rows: the features, the target and the time column. Key "
            "columns may be left out (they are filled in from the URL); when given they must "
            "name this partition.",
        ),
    ]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rows": [
                        {"week": "2024-01-01", "price": 2.49, "deal": 1, "feat": 0, "units": 310},
                        {"week": "2024-01-08", "price": 2.19, "deal": 0, "feat": 1, "units": 355},
                    ]
                }
            ]
        }
    )


class UploadedDataOut(BaseModel):
    sha256: str = Field(description="Where the rows are stored in the artifact store (Parquet).")
    size: int = Field(description="Bytes stored.")
    rows: int
    format: str = Field(description="What was sent: json, csv or parquet.")
    filename: str | None = None

    @classmethod
    def of(cls, d: UploadedData) -> UploadedDataOut:
        return cls(sha256=d.sha256, size=d.size, rows=d.rows, format=d.format, filename=d.filename)


class JobAccepted(BaseModel):
    job_id: str
    status: str
    partition: str
    data: UploadedDataOut
    links: dict[str, str] = Field(description="`self`: where to poll the job.")


class ModelScoreOut(BaseModel):
    version: int | None
    score: float | None = Field(description="On the new data's validation rows.")


class DecisionOut(BaseModel):
    outcome: str = Field(
        description="first (no production before), returned (back in production after a "
        "retirement, uncompared as a first version), promoted, or kept."
    )
    promoted: bool = Field(description="Whether production now points at the new version.")
    reason: str
    policy: str | None
    metric: str = Field(description="scikit-learn scorer name; greater is better.")
    challenger: ModelScoreOut = Field(description="The new version.")
    champion: ModelScoreOut | None = Field(
        description="The production version it was compared with, on the same rows."
    )
    improvement: float | None = Field(description="Relative gain of the challenger (0.1 = 10 %).")
    naive_score: float | None = Field(description="The naive baseline on the same rows.")

    @classmethod
    def of(cls, v: ModelVersion, outcome: str) -> DecisionOut | None:
        """The decision recorded with a version (``None`` for versions from before decisions
        were recorded)."""
        d = v.decision
        if d is None:
            return None
        challenger = d.challenger_score if d.challenger_score is not None else v.score
        # judged on rows the version's metric cannot decide: the scores are another metric's
        compared_by = (v.evaluation or {}).get("compared_by")
        return cls(
            outcome=outcome,
            promoted=d.promote,
            reason=d.reason,
            policy=d.policy,
            metric=compared_by or v.metric,
            challenger=ModelScoreOut(version=v.version, score=_finite(challenger)),
            champion=ModelScoreOut(version=d.champion_version, score=_finite(d.champion_score))
            if d.champion_version is not None
            else None,
            improvement=_finite(d.improvement),
            naive_score=None if compared_by else _finite(v.naive_score),
        )


class JobOut(BaseModel):
    job_id: str
    kind: str
    status: str = Field(description="queued, running, succeeded or failed.")
    partition: str
    backend: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    data: UploadedDataOut | None = Field(description="The rows the job trains on.")
    run_id: str | None
    version: int | None = Field(description="The version the retrain registered.")
    production_version: int | None = Field(description="Where production points afterwards.")
    decision: DecisionOut | None = Field(
        description="Both models' scores and the promotion policy's verdict."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="What the job's run warned of, as `manymodels train` prints it (a time "
        "off the partition's calendar, a gap in its periods, …): the version may serve "
        "other than meant.",
    )
    error: str | None
    links: dict[str, str]

    @classmethod
    def of(cls, job: Job) -> JobOut:
        result = job.result
        version = result.version if result is not None else None
        return cls(
            job_id=job.job_id,
            kind=job.kind,
            status=job.status,
            partition=job.partition,
            backend=job.backend,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            data=UploadedDataOut.of(job.data) if job.data is not None else None,
            run_id=result.run_id if result is not None else None,
            version=version.version if version is not None else None,
            production_version=result.production if result is not None else None,
            decision=DecisionOut.of(version, result.outcome)
            if result is not None and version is not None and result.outcome
            else None,
            warnings=list(result.warnings) if result is not None else [],
            error=job.error,
            links=job_links(job),
        )


class JobList(BaseModel):
    jobs: list[JobOut] = Field(description="Newest first.")


def job_links(job: Job) -> dict[str, str]:
    return {"self": f"/v1/jobs/{job.job_id}", "partition": f"/v1/partitions/{job.partition}"}


def _finite(value: Any) -> float | None:
    """JSON has no infinities: an unbounded improvement (champion scored 0) reads as null."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
