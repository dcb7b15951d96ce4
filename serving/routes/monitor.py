"""Monitoring: actuals in (live accuracy), the monitor out (drift, live error, age)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from manymodels.monitoring import actuals as live_actuals
from manymodels.monitoring import report
from serving.batch import predict_one
from serving.keys import path_key
from serving.routes import CurrentSettings, Service
from serving.rows import model_input
from serving.schemas import ERRORS, MAX_VERSION
from serving.service import ModelService

router = APIRouter(tags=["monitor"])


class ActualsRequest(BaseModel):
    rows: Annotated[
        list[dict[str, Any]],
        Field(
            min_length=1,
            description="Rows as sent to predict, each with the spec's target column holding "
            "the value observed.",
        ),
    ]
    version: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_VERSION,
            description="The version that answered them (every predict answer names it); "
            "default: the version production points at now.",
        ),
    ] = None

    model_config = {
        "json_schema_extra": {
            "examples": [{"rows": [{"price": 2.49, "deal": 1, "feat": 0, "units": 31}]}]
        }
    }


class ActualsRecorded(BaseModel):
    key: str
    version: int
    day: str
    rows: int
    error: float | None
    naive_error: float | None
    metric: str


class MonitorPage(BaseModel):
    total: int
    sort: str
    partitions: list[dict[str, Any]]


@router.post(
    "/v1/partitions/{key:path}/actuals",
    response_model=ActualsRecorded,
    responses=ERRORS,
    summary="Post observed values of rows a partition scored",
)
async def post_actuals(
    request: Request, key: str, body: ActualsRequest, service: Service, settings: CurrentSettings
) -> ActualsRecorded:
    """The rows are scored again by the version that answered them (deterministic, so no
    prediction is stored) and the model's and the naive answer's errors are added to the
    partition's window of the day. An unknown key is a 404 (actuals never go to the
    fallback); a row without the target column a 422 naming it."""
    if len(body.rows) > settings.max_batch_rows:
        raise HTTPException(422, f"{len(body.rows)} rows is more than the limit of "
                                 f"{settings.max_batch_rows} per request")  # fmt: skip
    text = path_key(request, key, suffix="/actuals")
    recorded = await run_in_threadpool(_record, service, text, body.rows, body.version)
    monitor = getattr(request.app.state, "monitor", None)
    if monitor is not None:
        monitor.actual_rows += recorded.rows
    return ActualsRecorded(**recorded.to_dict())


def _record(
    service: ModelService, text: str, rows: list[dict[str, Any]], version: int | None
) -> live_actuals.Recorded:
    target = service.resolve(text, version=version, fallback=False)
    record = service.registry.store.get_version(target.key, target.version)
    loaded = service.model(target)

    def predict(ordered: Any) -> list[Any]:
        return predict_one(loaded, model_input(ordered, loaded.feature_schema), False)[0]

    return live_actuals.record(
        service.registry.store.engine, key=target.key, version=target.version,
        metric=record.metric, schema=record.feature_schema, predict=predict, rows=rows,
    )  # fmt: skip


@router.get(
    "/v1/monitor",
    response_model=MonitorPage,
    responses=ERRORS,
    summary="Partitions by drift, live error and age, worst first",
)
async def get_monitor(
    service: Service,
    sort: Annotated[
        Literal["drift", "error", "naive", "age", "key"],
        Query(description="drift (PSI), error (live/validation), naive (live/naive), age, key"),
    ] = "drift",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> MonitorPage:
    """One page of the monitor: each partition's production version with its drift score
    (largest PSI over features, and which feature), live error, validation and naive error
    on the same rows, their ratios, model and data age, and the triggers it meets
    (``flags``: drifted, degraded, stale — the defaults of ``manymodels retrain --when``)."""
    return await run_in_threadpool(_page, service, sort, limit, offset)


def _page(service: ModelService, sort: str, limit: int, offset: int) -> MonitorPage:
    engine = service.registry.store.engine
    rows = report.ranked(report.health(engine), sort)
    page = report.with_data_age(engine, rows[offset : offset + limit])
    limits = report.Thresholds()
    shown = [{**r.to_dict(), "flags": r.flags(limits)} for r in page]
    return MonitorPage(total=len(rows), sort=sort, partitions=shown)
