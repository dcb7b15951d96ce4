"""The Open Inference Protocol (KServe V2) beside ``/v1``: health, metadata and inference.

Each partition is one V2 model named by its **canonical key**; resolution, the model cache,
the fallback, validation and decision labels are those of ``/v1/partitions/{key}/predict``.
A multi-column key is one path segment, ``store=2,brand=tropicana``: sent as it is, or
percent-encoded whole as clients encode a model name (``tritonclient`` sends
``store%3D2%2Cbrand%3Dtropicana``). The rule: a segment with a literal ``=`` is a key as ``/v1``
takes it; one without is decoded once first. A value's own ``/`` stays ``%2F`` in the key
(``%252F`` once encoded whole).

Errors are the protocol's ``{"error": "..."}``: 400 for a request that does not fit the model
(``/v1`` answers 422), 404 for a model that does not exist, 401 for a missing read token; the
health answers are 200 / 400 (a 4xx means "false"), with the protocol's ``{"live": …}`` and
``{"ready": …}`` bodies.

Parameters a request may set (others are ignored): ``fallback`` (bool, default true: an unknown
key is answered by the fallback model), ``threshold`` (0–1: label a binary classifier's rows
at it) and ``binary_data_output`` (bool: every output as raw bytes after the JSON header, as
an output's own ``binary_data`` asks for it alone; ``serving.v2_binary``). Outputs:
``predict``; for classifiers ``predict_proba`` (shape ``[n, classes]``, the class order in its
``classes`` parameter) and ``label`` when a ``[decision]`` rule or ``threshold`` gives one.
The response's ``parameters`` say which model answered (``served_by``, ``fallback``) and the
column its ``predict`` output predicts (``target``, as ``/v1`` answers name it). The output keeps
its fixed name ``predict``, which the metadata lists and clients ask for by name (``outputs``,
``tritonclient``'s ``as_numpy("predict")``): named by target, two partitions of one router
would answer under two names, and a target named ``label`` would collide with that output.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from manymodels import __version__
from manymodels.exceptions import ManyModelsError
from serving import decision
from serving.jsonbody import OFF_LOOP_BYTES
from serving.key_shapes import undecodable
from serving.keys import raw_segment
from serving.query import any_query, without
from serving.resolution import Target
from serving.routes import CurrentSettings, Service
from serving.routes.options import refuse_repeated
from serving.routes.v2_route import BINARY_SCOPE, V2Route
from serving.schemas import MAX_VERSION
from serving.served import ServedModel
from serving.service import ModelService
from serving.v2_binary import binary_outputs, binary_response
from serving.v2_extensions import all_models_stats, missing_endpoint, refuse_unsupported
from serving.v2_inputs import row_inputs
from serving.v2_metadata import metadata_of, outputs_of, proba_classes
from serving.v2_schemas import (
    ErrorResponse,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ResponseOutput,
    ServerMetadata,
    TensorError,
    output,
)
from serving.v2_tensors import to_rows

PREFIX = "/v2/models/"
EXTENSIONS = ["binary_tensor_data"]  # Triton's: binary inputs (split_binary), outputs (v2_binary)
INLINE_ROWS = 100  # as /v1: a cached model scores this many rows faster than a thread hop
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The request does not fit the model"},
    404: {"model": ErrorResponse, "description": "No such model (partition) or version"},
    500: {
        "model": ErrorResponse,
        "description": "The model's artifact cannot be served: missing, does not load, fails "
        "its sha256 or signature check, or in a format the registry does not trust",
    },
}
Fallback = Annotated[
    bool, Query(description="Let the fallback model answer for a key without a model.")
]


router = APIRouter(tags=["open inference protocol (v2)"], route_class=V2Route)


def model_name(request: Request, decoded: str) -> str:
    """The key from the raw path (see the module docstring); ``decoded`` without one."""
    text = raw_segment(request, decoded, PREFIX)
    if not text:  # ``/v2/models/``: the fallback would answer a name no model has
        raise TensorError("no model name: the URL is /v2/models/{name}[/versions/{n}]/…")
    if "/" in text:
        if text.endswith("/infer"):  # a GET of an inference URL, matched as a model name
            raise HTTPException(405, "inference is a POST", {"Allow": "POST"})
        if (why := missing_endpoint(text)) is not None:  # tritonclient's get_model_config …
            raise HTTPException(404, why)
        raise TensorError(
            f"'{text}' is not a model name: percent-encode a '/' in a key value as %2F"
        )
    if "=" in text or undecodable(text) is not None:  # no UTF-8: refused as /v1 refuses it
        return text
    return unquote(text)


def _version(text: str | None) -> int | None:
    """The version in a model route's URL. One past ``MAX_VERSION`` (the registry's integer
    column, and the /v1 routes' bound) cannot exist: PostgreSQL refused it in the lookup
    ("integer out of range"), which the router answered as a 503 "registry database
    unavailable", where SQLite said 404; and a number of over 4,300 digits, past Python's
    limit on ``int(text)``, was a 500."""
    if text is None:
        return None
    digits = text.isascii() and text.isdigit() and len(text) <= len(str(MAX_VERSION))
    if not digits or not 1 <= int(text) <= MAX_VERSION:
        raise HTTPException(
            404, f"no version '{text}': versions are numbers from 1 to {MAX_VERSION}"
        )
    return int(text)


# ---------------------------------------------------------------------------- health, server
# The status is the answer (a 4xx is "false", as Triton's clients read it); the body says it
# too, as the Open Inference Protocol's health objects do (KServe's client reads the body).
_LIVE = b'{"live":true}'
_READY, _NOT_READY = b'{"ready":true}', b'{"ready":false}'


@router.get("/v2/health/live", summary="Server live", status_code=200, response_class=Response)
@any_query  # a probe, as /healthz: whatever the query
async def live() -> Response:
    return Response(_LIVE, status_code=200, media_type="application/json")


@router.get("/v2/health/ready", summary="Server ready", response_class=Response)
@any_query
async def ready(request: Request) -> Response:
    """200 once the registry is open and the alias table read (``/readyz``); 400 before, or
    when the registry is unreachable or its file was replaced (the protocol's "false")."""
    service: ModelService | None = getattr(request.app.state, "service", None)
    if service is None or not service.aliases.loaded:
        return Response(_NOT_READY, status_code=400, media_type="application/json")
    if await request.app.state.registry_ping.why_not() is not None:  # the file, and a ping
        return Response(_NOT_READY, status_code=400, media_type="application/json")
    return Response(_READY, status_code=200, media_type="application/json")


@router.get(
    "/v2",
    response_model=ServerMetadata,
    responses={400: {"model": ErrorResponse, "description": "A query parameter it does not take"}},
    summary="Server metadata",
)
async def server_metadata() -> ServerMetadata:
    return ServerMetadata(name="manymodels", version=__version__, extensions=EXTENSIONS)


router.add_api_route(
    "/v2/", server_metadata, methods=["GET"], response_model=ServerMetadata, include_in_schema=False
)


# ---------------------------------------------------------------------------- models
async def _resolve(
    service: ModelService, text: str, version: int | None, fallback: bool
) -> tuple[Target, ServedModel]:
    target = service.resolve(text, version=version, fallback=fallback)
    return await run_in_threadpool(service.load, target, fallback=fallback)


@any_query  # a probe (KServe's per-model readiness), as /v2/health/ready
async def model_ready(
    request: Request, key: str, service: Service, version: str | None = None
) -> Response:
    """200 when the model that would answer loads (its sha256 and signature checked: a
    readiness probe also warms the cache); 400 otherwise. The body names the model asked
    for, as the protocol's ``{"name", "ready"}``."""
    name = key  # as decoded, when the name itself is refused
    try:
        name = model_name(request, key)
        await _resolve(service, name, _version(version), True)
    except (ManyModelsError, HTTPException, TensorError):
        return JSONResponse({"name": name, "ready": False}, status_code=400)
    return JSONResponse({"name": name, "ready": True}, status_code=200)


async def model_metadata(
    request: Request,
    key: str,
    service: Service,
    version: str | None = None,
    fallback: Fallback = True,
) -> ModelMetadata:
    """A partition's model: its feature columns as inputs (in the order a 2-D input takes
    them; a lag model's time column and target after them, and ``parameters`` on each input
    a request may leave out), its outputs, and the versions that may be asked for by URL. An
    unknown key is described by the fallback model that would answer it
    (``parameters.fallback``)."""
    refuse_repeated(request, "fallback")
    name = model_name(request, key)
    if version is None and (why := all_models_stats(name)) is not None:
        raise HTTPException(404, why)
    target, model = await _resolve(service, name, _version(version), fallback)
    return await run_in_threadpool(metadata_of, service, target, model)


async def infer(
    request: Request,
    key: str,
    body: InferenceRequest,
    service: Service,
    settings: CurrentSettings,
    version: str | None = None,
) -> Response:
    """Score the rows the input tensors describe with the partition's production model (or
    the version in the URL; an unknown key by the fallback unless ``parameters.fallback`` is
    false). See the module docstring for inputs, outputs and parameters."""
    refuse_unsupported(body)
    params = body.parameters or {}
    fallback = params.get("fallback", True)
    if not isinstance(fallback, bool):
        raise TensorError("parameter 'fallback' must be true or false")
    threshold = params.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0 <= threshold <= 1
    ):
        raise TensorError("parameter 'threshold' must be a number from 0 to 1")
    # /v1's ?levels=80,95: answered without intervals, unsaid, before; null asks for none, as
    # a null threshold is no threshold (a client that always sends the key was refused)
    if params.get("levels") is not None:
        raise TensorError(
            "parameter 'levels': V2 answers no prediction intervals (no output holds them); "
            "ask /v1/partitions/{key}/predict?levels=80,95 for them"
        )
    target = service.resolve(model_name(request, key), version=_version(version), fallback=fallback)
    cached = service.cache.peek(target.key, target.version)
    if cached is None:
        target, model = await run_in_threadpool(service.load, target, fallback=fallback)
    else:
        model = cached
    if threshold is not None:  # a regressor's threshold was ignored; /v1 refuses it too
        decision.binary_classes(model)
    binary = request.scope.get(BINARY_SCOPE, b"")
    args = (body, model.schema.features, binary, settings.max_batch_rows, row_inputs(model))
    if len(await request.body()) + len(binary) < OFF_LOOP_BYTES:
        rows = to_rows(*args)
    else:  # 100,000 rows' tensors took 0.3-0.7 s to read, every other request waiting
        rows = await run_in_threadpool(to_rows, *args)
    available = [t.name for t in outputs_of(model, threshold)]
    wanted = [o.name for o in body.outputs] if body.outputs else available
    unknown = [name for name in wanted if name not in available]
    if len(set(wanted)) != len(wanted):  # answered twice over; Triton refuses it
        twice = sorted({name for name, n in Counter(wanted).items() if n > 1})
        raise TensorError(f"output(s) {', '.join(twice)} asked for more than once")
    if unknown:
        raise TensorError(
            f"unknown output(s) {', '.join(unknown)}: this model gives {', '.join(available)}"
        )
    binary_out = binary_outputs(params, body.outputs, wanted)
    small = len(rows) <= INLINE_ROWS
    if small:
        outputs = _answer(service, target, model, rows, wanted, threshold)
    else:
        outputs = await run_in_threadpool(_answer, service, target, model, rows, wanted, threshold)
    response = InferenceResponse(
        model_name=target.partition,
        model_version=str(target.version),
        id=body.id,
        parameters={
            "served_by": target.key,
            "fallback": target.fallback,
            "target": model.schema.target,
        },
        outputs=outputs,
    )
    if binary_out:
        return binary_response(response, binary_out)
    return Response(response.model_dump_json(exclude_none=True), media_type="application/json")


def _answer(
    service: ModelService,
    target: Target,
    model: ServedModel,
    rows: list[dict[str, Any]],
    wanted: list[str],
    threshold: float | None,
) -> list[ResponseOutput]:
    """The wanted outputs, in the order asked; scored as ``/v1`` scores (and counted)."""
    proba = "predict_proba" in wanted
    scored = service.score_target(target, rows, with_probabilities=proba, model=model)
    out: dict[str, ResponseOutput] = {"predict": output("predict", scored.predictions)}
    if proba and scored.probabilities is not None:
        classes = proba_classes(model)
        flat = [p for row in scored.probabilities for p in row.values()]
        shape = [len(rows), len(classes)]
        out["predict_proba"] = output("predict_proba", flat, shape, classes=json.dumps(classes))
    if "label" in wanted:
        answered = scored.probabilities if proba else None
        labels = decision.labels(model, rows, answered, threshold)
        out["label"] = output("label", labels.labels, threshold=labels.threshold)
    return [out[name] for name in wanted if name in out]


# Each model route exists twice, with and without ``/versions/{version}``. Registered in this
# order: ``{key:path}`` is greedy, so ``…/infer`` and ``…/ready`` must match before metadata.
_MODEL_ROUTES: tuple[tuple[str, Callable[..., Any], str, str, dict[str, Any]], ...] = (
    (
        "/infer",
        infer,
        "POST",
        "Inference",
        {"response_model": InferenceResponse, "responses": ERRORS},
    ),
    (
        "/ready",
        model_ready,
        "GET",
        "Model ready",
        {
            "response_class": Response,
            "responses": {200: {"description": "Ready"}, 400: {"description": "Not ready"}},
        },
    ),
    (
        "",
        model_metadata,
        "GET",
        "Model metadata",
        # a tensor's ``parameters`` only where they say something
        {"response_model": ModelMetadata, "response_model_exclude_none": True, "responses": ERRORS},
    ),
)
for suffix, endpoint, method, summary, options in _MODEL_ROUTES:
    for prefix, which in (
        ("/v2/models/{key:path}/versions/{version}", " (one version)"),
        ("/v2/models/{key:path}", ""),
    ):
        call = endpoint if "{version}" in prefix else without(endpoint, "version")
        router.add_api_route(
            prefix + suffix, call, methods=[method], summary=summary + which, **options
        )
