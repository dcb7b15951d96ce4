"""Request and response bodies: the OpenAPI schema at ``/docs`` is generated from these."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from manymodels.reasons import MAX_REASON
from manymodels.registry.entities import AliasMove, ModelVersion, Run

MAX_VERSION = 2**31 - 1
"""The largest version number a request may name, as the CLI's ``MAX_INT``: a bigger integer
could never be a version, and past 2**63 - 1 SQLite cannot even bind it (a 503 or a 500 instead
of the client's 422)."""

# strict: a JSON number only, as the OpenAPI document says ("1" or true promoted v1)
Version = Annotated[int, Field(ge=1, le=MAX_VERSION, strict=True)]

Rows = Annotated[
    list[dict[str, Any]],
    Field(
        min_length=1,
        description="One object per row: feature name → value (numbers, or text for "
        "categorical features).",
    ),
]


class RequestBody(BaseModel):
    """A request body of the ``/v1`` API: a member it does not take is a 422 naming it
    (``serving.body_errors``), as an unknown query parameter is (``serving.query``). Ignored,
    a misspelt or misplaced member changed what was done without a word: a promote's
    ``{"version": 1, "alias": "candidate"}`` moved production, actuals' ``"verison": 2`` were
    counted against production's version, a forecast's ``"futur"`` carried the last features
    forward. (V2's bodies keep the protocol's extension members: ``serving.v2_schemas``.)"""

    model_config = ConfigDict(extra="forbid")


class PredictRequest(RequestBody):
    rows: Rows

    model_config = {
        "json_schema_extra": {"examples": [{"rows": [{"price": 2.49, "deal": 1, "feat": 0}]}]}
    }


class BatchPredictRequest(RequestBody):
    rows: Annotated[
        list[dict[str, Any]],
        Field(
            min_length=1,
            description="Rows carrying the partition_by columns and the features; each is "
            "scored by its own partition's model.",
        ),
    ]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "rows": [
                        {"store": 2, "brand": "tropicana", "price": 2.49, "deal": 1, "feat": 0},
                        {"store": 5, "brand": "dominicks", "price": 1.99, "deal": 0, "feat": 0},
                    ]
                }
            ]
        }
    }


# Who answered, in every scoring answer (and in `manymodels score` output, whose columns have
# the same names): the key asked for, the registry key whose model answered, and whether that
# was the fallback. A client can tell a misspelt key from a served one without parsing text.
PARTITION = "The requested key, in canonical form when it is one."
SERVED_BY = "The registry key whose model answered: `__fallback__` when the fallback did."
VERSION = "Version of the model that answered."
FALLBACK = "True when the global fallback model answered."
TARGET = (
    "The column the model that answered predicts (a classifier's label column), from its "
    "version's schema: after `train --new-target` a registry may serve partitions of two "
    "targets side by side, and a price must not be read as a unit count. Null for a version "
    "that recorded none (an MLflow import)."
)
INTERVALS = (
    "Prediction intervals, on request (`?levels=80,95`): `lo-<level>` / `hi-<level>` around "
    "each prediction, from the version's validation errors (regression, `[intervals]` specs). "
    "Absent unless asked."
)


class PartitionPredictions(BaseModel):
    partition: str = Field(description=PARTITION)
    served_by: str = Field(description=SERVED_BY)
    version: int = Field(description=VERSION)
    fallback: bool = Field(description=FALLBACK)
    target: str | None = Field(description=TARGET)
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = Field(
        default=None, description="Class probabilities per row (classification, on request)."
    )
    labels: list[Any] | None = Field(
        default=None,
        description="Each row's label at `threshold` (binary classifiers trained with a "
        "[decision] rule, or asked with ?threshold=).",
    )
    threshold: float | None = Field(
        default=None,
        description="The positive class's probability at which a row is labelled"
        " positive: the version's own, or the request's.",
    )
    intervals: dict[str, list[float | None]] | None = Field(default=None, description=INTERVALS)


class RowPrediction(BaseModel):
    partition: str = Field(description=PARTITION)
    served_by: str = Field(description=SERVED_BY)
    version: int = Field(description=VERSION)
    fallback: bool = Field(description=FALLBACK)
    target: str | None = Field(description=TARGET)
    prediction: Any
    probabilities: dict[str, float] | None = None
    label: Any = Field(default=None, description="As `labels` of a partition's answer.")
    threshold: float | None = None
    intervals: dict[str, float | None] | None = Field(default=None, description=INTERVALS)


class BatchPredictions(BaseModel):
    predictions: list[RowPrediction] = Field(description="One answer per row, in request order.")


class PromoteRequest(RequestBody):
    version: Annotated[Version, Field(description="The version production should serve.")]
    reason: Annotated[str | None, Field(max_length=MAX_REASON)] = None  # the CLI's cap


class RollbackRequest(RequestBody):
    reason: Annotated[str | None, Field(max_length=MAX_REASON)] = None


class RetireRequest(RequestBody):
    reason: Annotated[str | None, Field(max_length=MAX_REASON)] = None


class AliasMoveOut(BaseModel):
    partition: str
    alias: str
    from_version: int | None
    to_version: int | None
    reason: str
    run_id: str | None
    at: str
    action: str = Field(
        "promote",
        description="what the move was, as the alias history records it: first (a "
        "partition's first version, or a run's version back in production after a retirement: "
        "the reason says which), new (a version kept as the candidate), promote, "
        "rollback, or retire (to_version null: the partition left production, served then as "
        "one with no model)",
    )
    moved: bool = Field(
        True,
        description="false when the alias already pointed there: nothing was written, and "
        "the fields are of the move that put it there",
    )

    @classmethod
    def of(cls, move: AliasMove) -> AliasMoveOut:
        return cls(
            partition=move.key,
            alias=move.alias,
            from_version=move.from_version,
            to_version=move.to_version,
            reason=move.reason,
            run_id=move.run_id,
            at=move.at,
            action=move.action,
            moved=move.moved,
        )


class VersionOut(BaseModel):
    version: int
    created_at: str
    run_id: str
    estimator: str
    params: dict[str, Any]
    metric: str
    score: float
    naive_score: float | None
    skill: float | None = Field(description="Relative improvement over the naive baseline.")
    n_rows: int
    data_fingerprint: str
    features: list[str]
    artifact_sha256: str
    artifact_size: int
    aliases: list[str]
    libraries: dict[str, str]
    warnings: list[str]
    interval_levels: list[float] = Field(
        default_factory=list,
        description="The prediction interval levels the version recorded ([intervals] levels):"
        " those `?levels=` may ask of it.",
    )

    @classmethod
    def of(cls, v: ModelVersion) -> VersionOut:
        recorded = v.schema.intervals or {}
        return cls(
            version=v.version,
            created_at=v.created_at,
            run_id=v.run_id,
            estimator=v.estimator,
            params=v.params,
            metric=v.metric,
            score=v.score,
            naive_score=v.naive_score,
            skill=v.skill,
            n_rows=v.n_rows,
            data_fingerprint=v.data_fingerprint,
            features=list(v.schema.features),
            artifact_sha256=v.artifact_sha256,
            artifact_size=v.artifact_size,
            aliases=list(v.aliases),
            libraries=v.libraries,
            warnings=v.warnings,
            interval_levels=[float(level) for level in recorded.get("levels") or []],
        )


class ProductionOut(BaseModel):
    version: int
    estimator: str
    metric: str
    score: float
    naive_score: float | None
    skill: float | None
    created_at: str


class PartitionItem(BaseModel):
    partition: str
    key_values: dict[str, Any]
    latest_version: int
    aliases: dict[str, int]
    production: ProductionOut | None


class PartitionPage(BaseModel):
    partitions: list[PartitionItem]
    next_after: str | None = Field(
        description="Pass as ?after= for the next page; null on the last page."
    )


class RunOut(BaseModel):
    run_id: str
    kind: str
    status: str
    spec_name: str
    spec_hash: str
    data_source: str
    data_fingerprint: str
    started_at: str
    ended_at: str | None

    @classmethod
    def of(cls, r: Run) -> RunOut:
        return cls(
            run_id=r.run_id,
            kind=r.kind,
            status=r.status,
            spec_name=r.spec_name,
            spec_hash=r.spec_hash,
            data_source=r.data_source,
            data_fingerprint=r.data_fingerprint,
            started_at=r.started_at,
            ended_at=r.ended_at,
        )


class ServingOut(BaseModel):
    version: int | None = Field(description="The production version this router serves now.")
    cached_versions: list[int]


class PartitionDetail(BaseModel):
    partition: str
    key_values: dict[str, Any]
    latest_version: int
    aliases: dict[str, int]
    serving: ServingOut
    versions: list[VersionOut] = Field(description="Newest first.")
    runs: list[RunOut] = Field(description="The runs that produced these versions.")
    alias_history: list[AliasMoveOut] = Field(description="Every alias move, oldest first.")


class ErrorOut(BaseModel):
    detail: Any


ERRORS: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorOut,
        "description": "Unknown partition or version (and no fallback model, or "
        "`?fallback=false`).",
    },
    422: {
        "model": ErrorOut,
        "description": "Rows that do not fit the model's features, a parameter out of range, "
        "or a body that cannot be read (not JSON, not UTF-8, nested too deeply).",
    },
    500: {
        "model": ErrorOut,
        "description": "The model cannot be served: its artifact is missing, does not load, "
        "fails its sha256 or signature check, or is in a format the registry does not trust "
        "(the registry's fault, not the request's; the body names partition, version and "
        "reason); or a bug. Never a traceback.",
    },
}
