"""Scoring: one partition by key, or many partitions in one batch of rows."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from manymodels import intervals as conformal
from manymodels.registry.model_access import one_version_choice
from serving import batch, decision
from serving.jsonbody import FastJSONRoute
from serving.keys import path_key, refuse_other_keys
from serving.middleware import log_fields
from serving.plain import plain_text
from serving.query import elsewhere
from serving.routes import service_of
from serving.routes.options import PartitionOptions, ScoreOptions, documented, options_of
from serving.schemas import (
    ERRORS,
    BatchPredictions,
    BatchPredictRequest,
    PartitionPredictions,
    PredictRequest,
)
from serving.served import ServedModel
from serving.service import ModelService

router = APIRouter(tags=["predict"], route_class=FastJSONRoute)

INLINE_ROWS = 100  # a cached model scores this many rows faster than a thread hop takes
ONE_PARTITION = (
    "/v1/predict scores each row with its partition's production model and takes no '{0}': "
    "ask one partition's {0} at /v1/partitions/{{key}}/predict?{0}=…"
)


def json_response(content: dict[str, Any], model: type[BaseModel]) -> Response:
    """``content`` as JSON, written the way FastAPI writes a response, without validating it
    against ``model`` again: it is built from checked values only, and validating 100 answers
    cost more than scoring them. A non-finite number (JSON has none) goes through ``model``,
    which writes it as null, as a validated answer would (and leaves out the fields the
    content leaves out: ``intervals`` unless asked, ``label`` unless labelled)."""
    try:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = model.model_validate(content).model_dump_json(exclude_unset=True)
    return Response(text, media_type="application/json")


def _used(service: ModelService, pair: tuple[str, int]) -> ServedModel:
    """A model this request has scored with: held by the cache (not counted as another hit),
    its coefficients if that is what answered, or loaded again if evicted since."""
    return service.cache.held(*pair) or service.coefficients.get(*pair) or service.cache.get(*pair)


def _check_size(rows: list[Any], limit: int) -> None:
    if len(rows) > limit:
        raise HTTPException(
            422,
            [
                {
                    "loc": ["body", "rows"],
                    "msg": f"{len(rows)} rows is more than the limit of {limit} per request",
                    "type": "too_long",
                }
            ],
        )


@router.post(
    "/v1/partitions/{key:path}/predict",
    response_model=PartitionPredictions,
    response_model_exclude_unset=True,
    responses=ERRORS,
    summary="Score rows with one partition's model",
    openapi_extra=documented(PartitionOptions),
)
async def predict_partition(request: Request, key: str, body: PredictRequest) -> Any:
    """Rows are scored by the partition's production model (or ``?version=`` / ``?alias=``).

    The key is the canonical ``col=value,…`` form with percent-encoded values
    (``store=2,brand=tropicana``); unencoded or reordered keys are accepted too. An unknown key
    is answered by the fallback model when the registry has one (``fallback: true``), unless
    ``?fallback=false``. A binary classifier trained with a ``[decision]`` rule (or asked
    with ``?threshold=``) also answers each row's ``label`` and the ``threshold`` used.
    """
    service, settings = service_of(request), request.app.state.settings
    asked = options_of(request, PartitionOptions)
    version, alias, fallback = asked.version, asked.alias, asked.fallback
    probabilities, threshold = asked.probabilities, asked.threshold
    one_version_choice(version, alias, names=("?version=", "?alias="))  # a 422
    _check_size(body.rows, settings.max_batch_rows)
    wanted = conformal.parse_levels(asked.levels)
    text = path_key(request, key)
    if version is None and alias is None:  # production: resolved in memory, no I/O
        target = service.resolve(text, fallback=fallback)
        refuse_other_keys(body.rows, target.partition, service.aliases.__contains__)
        scored = (
            service.score_inline(
                target, body.rows, with_probabilities=probabilities, fallback=fallback
            )
            if len(body.rows) <= INLINE_ROWS
            else None
        )
        if scored is None:  # a remote load, or a big batch: off the event loop
            scored = await run_in_threadpool(
                service.score_target,
                target,
                body.rows,
                with_probabilities=probabilities,
                fallback=fallback,
            )
    else:
        # a partition in production (in memory); any other key's 404, or version, says more
        if (known := service.canonical(text)) is not None and known in service.aliases:
            refuse_other_keys(body.rows, known, service.aliases.__contains__)
        scored = await run_in_threadpool(
            service.score_partition,
            text,
            body.rows,
            version=version,
            alias=alias,
            with_probabilities=probabilities,
            fallback=fallback,
        )
    t = scored.target
    log_fields(
        request.scope, partition=t.partition, version=t.version, fallback=t.fallback,
        rows=len(body.rows),
    )  # fmt: skip
    labels = None
    pair = (t.key, t.version)
    if threshold is not None or decision.decides(service, pair, lambda: _used(service, pair)):
        held = service.cache.held(*pair)
        answered = scored.probabilities
        # read back from the answer (any number of rows), or a few rows through the model
        if held is not None and (
            decision.answered_probabilities(answered) or len(body.rows) <= INLINE_ROWS
        ):
            labels = decision.labels(held, body.rows, answered, threshold)
        else:  # a big batch (or a model evicted since): off the event loop, as scoring was
            labels = await run_in_threadpool(_label, service, pair, body.rows, answered, threshold)
    answer = PartitionPredictions(
        partition=t.partition,
        served_by=t.key,
        version=t.version,
        fallback=t.fallback,
        target=scored.predicts,
        predictions=scored.predictions,
        probabilities=scored.probabilities,
        labels=labels.labels if labels else None,
        threshold=labels.threshold if labels else None,
    )  # ``intervals`` left unset, so left out (``response_model_exclude_unset``), unless asked
    if wanted is not None:
        answer.intervals = _bands(_used(service, pair), wanted, scored.predictions)
    # written by pydantic in one pass: FastAPI would dump the model, validate the dump against
    # ``response_model`` again and write it with ``json.dumps`` (~1 µs a float)
    return Response(answer.model_dump_json(exclude_unset=True), media_type="application/json")


def _label(
    service: ModelService,
    pair: tuple[str, int],
    rows: list[Any],
    answered: list[dict[str, float]] | None,
    threshold: float | None,
) -> decision.Labels:
    """One partition's labels off the event loop (``decision.labels``), from the model that
    answered: finding it may load it again, when evicted since."""
    return decision.labels(_used(service, pair), rows, answered, threshold)


def _bands(loaded: ServedModel, levels: list[float], predictions: list[Any]) -> dict[str, Any]:
    """``lo-``/``hi-`` lists around one version's predictions (422 for a level it lacks)."""
    what = f"partition '{loaded.key}' v{loaded.version}"
    return conformal.json_bands(loaded.schema, levels, predictions, what=what)


@router.post(
    "/v1/predict",
    response_model=BatchPredictions,
    responses=ERRORS,
    summary="Score rows of many partitions",
    openapi_extra=documented(ScoreOptions),
)
@elsewhere(version=ONE_PARTITION.format("version"), alias=ONE_PARTITION.format("alias"))
async def predict_rows(request: Request, body: BatchPredictRequest) -> Any:
    """Each row carries its partition_by columns; rows are grouped by partition once and each
    group is scored by its own model in one call (unknown partitions by the fallback). Answers
    come back in the request's row order. With ``?fallback=false`` any unknown partition makes
    the whole request a 404 naming the first ten unknown keys (in row order); nothing is
    scored."""
    service, settings = service_of(request), request.app.state.settings
    asked = options_of(request, ScoreOptions)
    probabilities, fallback, threshold = asked.probabilities, asked.fallback, asked.threshold
    _check_size(body.rows, settings.max_batch_rows)
    wanted = conformal.parse_levels(asked.levels)
    groups = batch.grouped(service, body.rows)
    if not probabilities and threshold is None and wanted is None and len(body.rows) <= INLINE_ROWS:
        text = plain_text(service, body.rows, groups)  # memory only, or None
        if text is not None:
            log_fields(request.scope, rows=len(body.rows))
            return Response(text, media_type="application/json")
    planned = batch.plan(service, body.rows, fallback=fallback, groups=groups)  # memory only
    models = batch.cached(service, planned) if len(body.rows) <= INLINE_ROWS else None
    used: dict[tuple[str, int], ServedModel] = {}
    if models is not None:  # no I/O and little work: a thread hop would cost more
        out = batch.score(
            service, planned, body.rows, with_probabilities=probabilities, models=models, used=used
        )
    else:
        out = await run_in_threadpool(
            partial(batch.score, with_probabilities=probabilities, used=used),
            service,
            planned,
            body.rows,
        )
    label = partial(decision.label_answers, service, used.__getitem__, body.rows, out, threshold)
    if models is not None:
        label()
    else:  # as big a batch as was scored in a thread: labelled there too
        await run_in_threadpool(label)
    if wanted is not None:
        _row_bands(used, wanted, out)
    log_fields(request.scope, rows=len(body.rows))
    text = batch.encode(out)  # the usual answer, written directly; anything else as before
    if text is not None:
        return Response(text, media_type="application/json")
    return json_response({"predictions": out}, BatchPredictions)


def _row_bands(
    used: dict[tuple[str, int], ServedModel], levels: list[float], answers: list[dict[str, Any]]
) -> None:
    """Each answer's ``intervals``, from the version that answered it."""
    rows: dict[tuple[str, int], list[int]] = {}
    for i, answer in enumerate(answers):
        rows.setdefault((answer["served_by"], answer["version"]), []).append(i)
    for pair, idx in rows.items():
        bands = _bands(used[pair], levels, [answers[i]["prediction"] for i in idx])
        for n, i in enumerate(idx):
            answers[i]["intervals"] = {name: values[n] for name, values in bands.items()}
