"""Forecasting one partition: the next periods from its production model (or the version
``?version=`` / ``?alias=`` names) and the history that version recorded."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from manymodels import forecast_steps, timefeatures
from manymodels import intervals as conformal
from manymodels.exceptions import DataError, first_line
from manymodels.feature_schema import FeatureSchema
from manymodels.features import feature_kinds
from manymodels.forecast_formats import on_midnights
from manymodels.forecast_partition import labelled_steps
from manymodels.forecast_steps import build_steps, future_keys, held_features, shown_time
from manymodels.forecasting import MAX_HORIZON, step_probabilities, unforecastable
from manymodels.future_rows import future_table
from manymodels.inputs import as_floats
from manymodels.partition import FALLBACK_KEY
from manymodels.registry.model_access import one_version_choice
from serving.decision import binary_classes
from serving.errors import MODEL_REFUSALS
from serving.jsonbody import FastJSONRoute
from serving.keys import path_key, refuse_other_keys
from serving.resolution import PRODUCTION, Target
from serving.routes import CurrentSettings, Service
from serving.routes.options import ALIAS_PATTERN, Levels, VersionChoice, refuse_repeated
from serving.rows import to_json_list
from serving.schemas import ERRORS, INTERVALS, MAX_VERSION, SERVED_BY, TARGET, RequestBody
from serving.service import ModelService

router = APIRouter(tags=["forecast"], route_class=FastJSONRoute)
NO_CHOICE = VersionChoice()  # production


class ForecastRequest(RequestBody):
    horizon: Annotated[
        int, Field(ge=1, le=MAX_HORIZON, strict=True, description="Periods to forecast.")
    ]  # strict: {"horizon": true} forecast one step
    future: Annotated[
        list[dict[str, Any]] | None,
        Field(
            description="Exogenous features of the future periods, one object per step: with "
            "the time column to match steps by time, or without it for exactly `horizon` rows "
            "in step order. Omitted, or `[]` (as a `--future` table with no rows for the "
            "partition): the partition's last known values are carried forward."
        ),
    ] = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"horizon": 2},
                {
                    "horizon": 2,
                    "future": [
                        {"price": 2.49, "deal": 1, "feat": 1},
                        {"price": 2.99, "deal": 0, "feat": 0},
                    ],
                },
            ]
        }
    )


class ForecastPoint(BaseModel):
    time: Any = Field(
        description="The step's time as ISO 8601 text (a date alone, `2025-03-03`, when every "
        "step is a midnight, as the training table's dates were written), else a number."
    )
    prediction: Any
    label: Any = Field(
        default=None,
        description="A binary classifier with a `[decision]` (or asked `?threshold=`): the "
        "step's label at `threshold` "
        "(as `label` on a `/v1/predict` row); `prediction` is the most probable class.",
    )
    intervals: dict[str, float | None] | None = Field(
        default=None, description=f"{INTERVALS} Per horizon step when the version recorded them."
    )
    probabilities: dict[str, float] | None = Field(
        default=None,
        description="The step's class probabilities, on request (`?probabilities=true`, "
        "classification models), keyed as a `/v1/predict` row's.",
    )


class PartitionForecast(BaseModel):
    """Who answered, named as in predictions; the fallback model never forecasts, so
    ``served_by`` is the partition itself and ``fallback`` is always false."""

    partition: str = Field(description="The canonical key.")
    served_by: str = Field(description=SERVED_BY)
    version: int = Field(
        description="The version that forecast: production's, unless `?version=` or `?alias=`."
    )
    fallback: bool = Field(default=False, description="Always false: see `served_by`.")
    target: str | None = Field(default=None, description=TARGET)
    threshold: float | None = Field(
        default=None,
        description="The threshold its labels are at: `?threshold=`, else the version's "
        "`[decision]` threshold.",
    )
    forecast: list[ForecastPoint]
    carried: list[str] = Field(
        default_factory=list,
        description="The exogenous features held at the partition's last known values for "
        "every step, as the CLI's `forecast` notes them: all the version reads when the "
        "request gave no `future` rows (a flat forecast of a price-driven model says why), none "
        "when it did.",
    )
    last_time: Any = Field(
        default=None,
        description="The partition's last training time, which its steps continue (written "
        "as the steps' times are). Each partition is forecast from its own last time, as "
        "statsforecast and mlforecast do: a series that stopped in March (a delisted item) is "
        "forecast from March, whatever the others' last time. Compare it with the newest "
        "data you have; the CLI's `forecast` notes such partitions (`--json`'s `behind`).",
    )


@router.post(
    "/v1/partitions/{key:path}/forecast",
    response_model=PartitionForecast,
    responses=ERRORS,
    summary="Forecast the next periods of one partition",
)
async def forecast_partition(
    request: Request,
    key: str,
    body: ForecastRequest,
    service: Service,
    settings: CurrentSettings,
    levels: Levels = None,
    version: Annotated[
        int | None, Query(ge=1, le=MAX_VERSION, description="Forecast this version.")
    ] = None,
    alias: Annotated[
        str | None,
        Query(
            pattern=ALIAS_PATTERN,
            description="Forecast the version this alias points at (`candidate`: the latest "
            "version that was not promoted).",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        Query(
            ge=0,
            le=1,
            description="Label the steps of a binary classifier at this probability of the "
            "positive class instead of the version's own threshold (a spec's [decision] rule), "
            "as `/v1/predict` labels rows.",
        ),
    ] = None,
    probabilities: Annotated[
        bool,
        Query(
            description="Also answer each step's class probabilities (classification models; "
            "`null` for others), as `/v1/predict` answers a row's.",
        ),
    ] = False,
) -> PartitionForecast:
    """The next ``horizon`` periods of a partition trained from a time-series spec, by its
    production model (or ``?version=`` / ``?alias=``, as when scoring). Steps continue the
    partition's last training time at the data's frequency; target lags are fed with the
    forecast's own earlier steps. An unknown key is a 404 (the fallback model is not
    forecast)."""
    refuse_repeated(request, "version", "alias", "threshold", "probabilities")  # FastAPI: last
    one_version_choice(version, alias, names=("?version=", "?alias="))  # a 422
    if body.future is not None and len(body.future) > settings.max_batch_rows:
        raise HTTPException(
            422, f"{len(body.future)} future rows is more than the limit of "
            f"{settings.max_batch_rows} per request",
        )  # fmt: skip
    text = path_key(request, key)
    if levels is not None:  # ?levels=80&levels=95 is ?levels=80,95, as on the scoring routes
        levels = ",".join(request.query_params.getlist("levels"))
    wanted = conformal.parse_levels(levels)
    chosen = VersionChoice(version=version, alias=alias)  # what the scoring routes read
    return await run_in_threadpool(
        _forecast, service, text, body, wanted, chosen, threshold, probabilities
    )


def _forecast(
    service: ModelService,
    text: str,
    body: ForecastRequest,
    levels: list[float] | None = None,
    chosen: VersionChoice = NO_CHOICE,
    threshold: float | None = None,
    probabilities: bool = False,
) -> PartitionForecast:
    key = service.named(text)  # never the fallback's: a bare value is its partition
    if key == FALLBACK_KEY:
        raise DataError(f"the fallback model ({FALLBACK_KEY}) is not forecast")
    if chosen.version is None and chosen.alias in (None, PRODUCTION):
        version = service.aliases.get(key) if key is not None else None
        if key is None or version is None:
            note = service.retired_note(key)  # the refusal's path only: one primary-key read
            raise service.missing(key or text, key, "in production", f"; {note}" if note else "")
        wanted = Target(key, key, version, False, from_alias=True)
    else:  # another version of a known partition: its own 404 when it has none such
        wanted = service.resolve(text, version=chosen.version, alias=chosen.alias, fallback=False)
        key = wanted.key
    # [] is a future table with no rows for the partition: its last values are carried
    # forward, as the library and --future do with one (it was "0 row(s) without 'week' for
    # a horizon of 2", as if the rows had lost their times)
    rows = body.future or None
    if rows is not None:
        refuse_other_keys(rows, key, service.aliases.__contains__, "future")
    target, loaded = service.load(wanted, fallback=False, asked=False)  # never the fallback
    version = target.version
    schema = loaded.schema
    reason = unforecastable(schema)
    if reason is not None:
        raise DataError(f"cannot forecast partition '{key}': {reason}")
    what = f"partition '{key}' v{version}"
    if levels is not None:
        conformal.check_levels(schema, levels, what=what)
    if threshold is not None:  # the 422 /v1/predict answers: not a binary classifier
        binary_classes(loaded)
    future = None if rows is None else _future(rows, schema, key, body.horizon)
    steps = build_steps([schema], body.horizon, future, models=[loaded.model])
    inputs: list[Any] = []  # each step's model input, for its probabilities
    proba: list[dict[str, float] | None] = [None] * body.horizon
    try:
        predictions, labelled = labelled_steps(
            loaded.model, schema, steps, 0, body.horizon, threshold=threshold, inputs=inputs
        )
        # as /v1/predict answers: probabilities of a classifier that has them, else null
        if probabilities and schema.classifies and hasattr(loaded.model, "predict_proba"):
            classes, p = step_probabilities(loaded.model, schema, inputs, what)
            proba = [dict(zip(classes, row, strict=True)) for row in p.tolist()]
    except MODEL_REFUSALS as e:
        first = first_line(e)
        unfed = forecast_steps.unfed(schema, steps, 0, body.horizon, version, first)
        raise unfed or DataError(
            f"partition '{key}' v{version} could not forecast: {first}"
        ) from None
    # as its errors, the CLI and its CSV write them: dates alone when every step is a midnight
    dates = on_midnights(schema)
    times = [shown_time(t, dates) for t in steps.times]
    answers = to_json_list(predictions)
    labels = [None] * len(answers) if labelled is None else to_json_list(labelled[0])
    bands: list[dict[str, float | None] | None] = [None] * len(answers)
    if levels is not None:
        by_name = conformal.json_bands(schema, levels, answers, what=what, steps=body.horizon)
        bands = [{name: v[s] for name, v in by_name.items()} for s in range(len(answers))]
    return PartitionForecast(
        partition=key,
        served_by=key,
        version=version,
        target=schema.target,
        threshold=None if labelled is None else labelled[1],
        forecast=[
            ForecastPoint(time=t, prediction=p, label=lab, intervals=b, probabilities=pr)
            for t, p, lab, b, pr in zip(times, answers, labels, bands, proba, strict=True)
        ],
        carried=held_features(
            schema, None if future is None else future_keys(future), loaded.model
        ),
        last_time=_last_time(schema, dates),
    )


def _last_time(schema: FeatureSchema, dates: bool) -> Any:
    """The partition's recorded last time as its steps are shown: read from the schema the
    version already loaded (no history scan), ``None`` where it recorded none."""
    time = schema.history.time if schema.history is not None else None
    if isinstance(time, str):
        return shown_time(pd.Timestamp(time), dates)
    return time


def _future(
    rows: list[dict[str, Any]], schema: FeatureSchema, key: str, horizon: int
) -> pd.DataFrame:
    """Request rows as a ``future_table``; rows without times are the steps in order."""
    time_column = str(schema.time_column)
    plan, history = schema.forecast, schema.history
    assert plan is not None and history is not None and plan.frequency is not None
    frame = _as_cells(pd.DataFrame(rows), schema)
    if time_column not in frame.columns:
        if len(rows) != horizon:
            raise DataError(
                f"future: {len(rows)} row(s) without '{time_column}' for a horizon of {horizon}; "
                f"give one row per step, or a '{time_column}' in each row"
            )
        frame[time_column] = timefeatures.advance(
            [history.time], plan.frequency, horizon, plan.timezone, plan.holidays
        )
    return future_table(
        frame, [schema], key_columns=None, time_column=time_column, key=key, source="future"
    )


def _as_cells(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """A numeric feature's column of JSON numbers, booleans and nulls read as a ``/predict``
    row's cells are (a boolean is a number, null is missing): pandas leaves such a mix as
    objects, which ``future_table`` refuses as a table's text column. An integer beyond
    float64 is refused naming its value and row (``inputs.as_floats``, as for a retrain's
    rows); any other cell keeps the column as it is, refused there, naming the feature."""
    numeric = {name for name, is_number in feature_kinds(schema) if is_number}
    for name in frame.columns:
        if name not in numeric or frame[name].dtype != object:
            continue
        floats = as_floats(frame[name].tolist(), f"future: feature '{name}'")
        if floats is not None:
            frame[name] = floats
    return frame
