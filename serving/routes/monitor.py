"""Monitoring: actuals in (live accuracy), the monitor out (drift, live error, age).

A run's failed and skipped partitions (``GET /v1/failures``) are ``serving.routes.failures``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from manymodels.exceptions import DataError
from manymodels.keys import FALLBACK_KEY
from manymodels.labels import thresholded
from manymodels.monitoring import actuals as live_actuals
from manymodels.monitoring import pages, report, store
from manymodels.monitoring.drift import MIN_DRIFT_ROWS
from manymodels.monitoring.unseen import with_unseen
from manymodels.targetunits import to_target_units
from serving.batch import predict_one
from serving.jsonbody import FastJSONRoute
from serving.keys import path_key, refuse_other_keys
from serving.routes import CurrentSettings, Service
from serving.routes.options import single_options
from serving.rows import model_input, to_json_list
from serving.schemas import ERRORS, MAX_VERSION, RequestBody
from serving.service import ModelService

router = APIRouter(
    tags=["monitor"], dependencies=[Depends(single_options)], route_class=FastJSONRoute
)


class ActualsRequest(RequestBody):
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
            strict=True,
            description="The version that answered them (every predict answer names it); "
            "default: the version production points at now.",
        ),
    ] = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"rows": [{"price": 2.49, "deal": 1, "feat": 0, "units": 31}]}]
        }
    )


class ActualsRecorded(BaseModel):
    key: str
    version: int
    day: str
    rows: int
    error: float | None
    naive_error: float | None
    metric: str
    label_error: float | None = Field(
        default=None,
        description="A binary classifier with a [decision]: the error rate of the labels it "
        "answered at its threshold (`error` counts its most probable class, as its validation "
        "accuracy and the naive majority class are counted).",
    )
    already_counted: int = Field(
        default=0,
        description="Rows of this post that an earlier post of the version counted already "
        "(a retried request, a file posted again), skipped: `rows` counts the others. A row "
        "is the same row when every column it was posted with is, the key columns aside; "
        "rows alike within one post each count.",
    )


class ActualPoint(BaseModel):
    time: Any = Field(description="The row's time column as posted (null without one).")
    actual: Any
    prediction: Any = Field(description="What the version answered for the row.")


class MonitorPage(BaseModel):
    total: int
    sort: str
    partitions: list[dict[str, Any]]
    next_after: str | None = Field(
        default=None,
        description="The last key of this page when more follow: pass it as `after` for the "
        "next page (null on the last page).",
    )
    actuals: list[ActualPoint] | None = Field(
        default=None,
        description="With `key`: the production version's newest posted actuals (at most "
        "64 per day kept), oldest first, each with the version's prediction.",
    )
    drift_min_rows: int = Field(
        default=MIN_DRIFT_ROWS,
        description="Sampled rows of traffic a partition's drift is scored from: a row whose "
        "`drift` is null with fewer `sampled_rows` has been sampled too little to score yet "
        "(the dashboard says `— (30/50 rows)`, as `manymodels monitor` does).",
    )


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
    partition's window of the day. Rows an earlier post counted are not counted again
    (``already_counted``), so a client may retry a post whose answer it did not get. An
    unknown key is a 404 (actuals never go to the fallback); a row without the target column
    a 422 naming it."""
    if len(body.rows) > settings.max_batch_rows:
        raise HTTPException(422, f"{len(body.rows)} rows is more than the limit of "
                                 f"{settings.max_batch_rows} per request")  # fmt: skip
    text = path_key(request, key)
    recorded = await run_in_threadpool(_record, service, text, body.rows, body.version)
    monitor = getattr(request.app.state, "monitor", None)
    if monitor is not None:
        monitor.actual_rows += recorded.rows
    return ActualsRecorded(**recorded.to_dict())


def _record(
    service: ModelService, text: str, rows: list[dict[str, Any]], version: int | None
) -> live_actuals.Recorded:
    target = service.resolve(text, version=version, fallback=False, asked=False, unserved=(
        "the fallback model answers its predictions, and actuals are kept per partition "
        "model: train the partition on rows of its own to post its actuals"))  # fmt: skip
    if target.key == FALLBACK_KEY:  # the monitor lists partitions: these would count unread
        raise DataError(
            f"the fallback model ({FALLBACK_KEY}) takes no actuals: they are kept per "
            "partition model, as the monitor lists them; post rows to their partition's key"
        )
    refuse_other_keys(rows, target.partition, service.aliases.__contains__)
    # loaded first: a version gc deleted since the table was read is production's now (or the
    # partition's 404, retired), and the record and the window are that version's
    target, loaded = service.load(target, fallback=False, asked=False)  # as resolved
    record = service.registry.store.get_version(target.key, target.version)

    decision = loaded.schema.decision

    def label(ordered: Any) -> list[Any] | None:
        """The label the router answers, at the version's threshold (counted apart)."""
        X = model_input(ordered, loaded.schema)
        found = thresholded(loaded.model, X, decision) if decision else None
        return None if found is None else to_json_list(found[0])

    def predict(ordered: Any) -> list[Any]:
        schema = loaded.schema
        X = model_input(ordered, schema)
        predictions = predict_one(loaded, X, False)[0]
        if schema.transform is None:
            return predictions
        return to_json_list(to_target_units(predictions, ordered, schema))  # as /predict answers

    return live_actuals.record(
        service.registry.store.engine, key=target.key, version=target.version,
        metric=record.metric, schema=record.schema, predict=predict, rows=rows,
        label=label if decision else None, key_columns=service.registry.partition_by or (),
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
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,  # SQL OFFSET is 64-bit: beyond, a 422
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=512,
            description="The last key of the previous page (its `next_after`): the page that "
            "follows it in this order, resumed from its current place (keyset paging: rows do "
            "not shift or repeat as the registry changes, and a deep page costs what the first "
            "does). By key, any text is a position: the partitions after it. In the other "
            "orders, a 404 when that partition has no production version any more (start "
            "again), a 422 when it is no partition of the monitor.",
        ),
    ] = None,
    key: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=512,
            description="One partition's row only (a partition page's health row): read by "
            "key, not the whole monitor. An unknown key is a 404.",
        ),
    ] = None,
    confidence: Annotated[
        float,
        Query(
            ge=0.5,
            le=0.9999,
            description="Degraded: how sure (one-sided) that the live error is above those, "
            "not the noise of few rows; 0.5 compares the ratios alone (as `manymodels retrain "
            "--when degraded --confidence`).",
        ),
    ] = 0.95,
    unseen: Annotated[
        float,
        Query(
            ge=0.0,
            le=1.0,
            description="Unseen: the share of sampled rows carrying a text value the "
            "version's training rows never had from which a partition is flagged `unseen` "
            "(as `manymodels monitor --unseen`; no retrain trigger).",
        ),
    ] = 0.05,
) -> MonitorPage:
    """One page of the monitor: each partition's production version with its drift score
    (largest PSI over features, and which feature), live error, validation and naive error
    on the same rows, their ratios, model and data age, and the triggers it meets
    (``flags``: drifted, degraded, stale — the defaults of ``manymodels retrain --when``; and
    ``unseen`` — no trigger — when at least ``unseen`` of the sampled rows carry a text value
    the version's training rows never had: ``unseen_share``, ``unseen_feature``,
    ``unseen_rows``, ``unseen_reason``)."""
    if after is not None and (offset or key is not None):
        raise HTTPException(422, "give after, or offset or key, not both")
    limits = report.Thresholds(confidence=confidence, unseen=unseen)
    return await run_in_threadpool(_page, service, sort, limit, offset, key, after, limits)


def _page(
    service: ModelService,
    sort: str,
    limit: int,
    offset: int,
    key: str | None = None,
    after: str | None = None,
    limits: report.Thresholds | None = None,
) -> MonitorPage:
    limits = limits or report.Thresholds()
    engine = service.registry.store.engine
    if after is not None and sort != "key":  # a ranking's place is a partition's: its key in
        canonical = service.canonical(after)  # any column order, as the key routes take it
        if canonical is not None and canonical in service.aliases:  # else said as given
            after = canonical
    one = None
    if key is not None:
        one = service.named(key)  # a bare value of the one key column is its partition
        if one is None:
            raise service.missing(key, None, "in the registry")
        if one == FALLBACK_KEY:  # a 200 with no row read as a partition not yet monitored
            raise HTTPException(404, f"the fallback model ({FALLBACK_KEY}) is not in the "
                                     "monitor: it lists partitions")  # fmt: skip
        service.registry.get_partition(one)  # PartitionNotFound: a 404
    if one is None and after is None:  # one page's rows, not the whole pass (paged sorts)
        page, total = pages.monitor_page(engine, sort, limit, offset, limits)
        more = offset + len(page) < total
    elif one is None and after is not None and sort in pages.PAGED_SORTS:  # and one more
        keys, total = pages.keys_after(engine, sort, limit + 1, after), pages.total(engine)
        more, keys = len(keys) > limit, keys[:limit]
        page = with_unseen(engine, report.with_data_age(engine, pages.rows_of(engine, keys)))
    else:
        health = report.health(engine, keys=None if one is None else [one])
        rows = report.ranked(health, sort, limits)
        total = len(rows)
        if after is not None:  # resume from after's current place in the whole pass
            offset = next((i + 1 for i, r in enumerate(rows) if r.key == after), -1)
            if offset < 0:
                raise pages.not_listed(engine, after, sort)
        page = with_unseen(engine, report.with_data_age(engine, rows[offset : offset + limit]))
        more = offset + len(page) < total
    shown = [{**r.to_dict(), "flags": r.flags(limits), "note": r.note(limits)} for r in page]
    points = None
    if one is not None:
        points = [
            ActualPoint(time=when, actual=y, prediction=p)
            for r in page
            for when, y, p in store.recent_actuals(engine, r.key, r.version)
        ]
    last = page[-1].key if page and more and one is None else None
    return MonitorPage(total=total, sort=sort, partitions=shown, actuals=points, next_after=last)
