"""Errors the router raises, and how every error becomes a JSON ``{"detail": ...}`` answer.

    ManyModelsError                     (manymodels.exceptions)
    ├── DataError
    │   └── InvalidRows                 422: rows that do not fit the feature schema (serving.rows)
    │   └── ScoringFailed               422: the model rejected the rows (NaN, unknown category…)
    ├── RegistryError
    │   ├── …NotFound(LookupError)      404
    │   ├── NothingToRollBack           409: production has no earlier version to go back to
    │   └── VersionConflict             409
    ├── ArtifactError
    │   └── ModelNotServed              409: the artifact failed its sha256 check (or is missing)
    └── TrainingError
        └── RunBusy                     409: a run of the spec is training (manymodels.run_busy)

The registry being unreachable is a 503. Its storage full (a disk or a quota: an artifact or
the database could not be written) is a 507 Insufficient Storage, whatever error carried it —
ours, SQLAlchemy's, or an ``OSError`` (a spooled upload): a full disk under a retrain was a 409
conflict (``manymodels.exceptions.storage_full``). Only a bug is a 500, and even then the
client gets a JSON body without a traceback (the traceback goes to the server log). A message
that names a local path (an artifact directory, the database file) shows it only to a request
carrying the admin token; others see the path's last component (``serving.redact``).

A body that cannot be read at all is a 422 like any other invalid body, located at ``["body"]``:
FastAPI already answers JSON with a syntax error so (``json_invalid``), but answers a 400 —
which no route's OpenAPI entry declares — when the JSON is not UTF-8 or is nested too deeply,
and Starlette does for a malformed multipart upload. Nothing here chose a 400; one status for
"this body is unusable", the one the OpenAPI document lists, is what a client can rely on.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from manymodels.exceptions import (
    MAX_REPORTED,
    ArtifactError,
    ArtifactStoreUnavailable,
    DataError,
    ManyModelsError,
    NothingToRollBack,
    PartitionNotFound,
    RegistryError,
    RunBusy,
    SpecError,
    VersionConflict,
    database_away,
    first_line,
    storage_full,
)
from serving.auth import carries_admin_token
from serving.keys import path_key
from serving.redact import local_roots, redact_text
from serving.rows import InvalidRows

__all__ = [
    "MODEL_REFUSALS",
    "ModelNotServed",
    "NothingToRollBack",
    "ScoringFailed",
    "install_handlers",
    "retry_after",
    "unusable_body",
]

# the end of a 404 for a key a request would not let the fallback answer
REFUSED = "and the request refused the fallback model (fallback=false)"

logger = logging.getLogger("manymodels.serving")


class ScoringFailed(DataError):
    """The rows passed the schema but the estimator refused them."""


# What an estimator raises for rows it refuses: ``ValueError`` / ``TypeError``, and under
# ``-W error`` the warning that comes first (scikit-learn's finiteness check sums the input,
# and ``Infinity`` beside ``-Infinity`` is a ``RuntimeWarning: invalid value``): that made a
# row the model refused a 500 there, where without ``-W error`` it is the 422 of
# "Input X contains infinity".
MODEL_REFUSALS = (ValueError, TypeError, RuntimeWarning)


class ModelNotServed(ArtifactError):
    """A model that cannot be loaded safely (tampered or missing artifact); never cached."""


INSUFFICIENT_STORAGE = 507
RETRY_AFTER_SECONDS = "5"  # an outage's 503: when a client may try again


def status_for(error: ManyModelsError) -> int:
    if storage_full(error):
        return INSUFFICIENT_STORAGE
    if isinstance(error, DataError | SpecError):
        return 422
    if isinstance(error, ArtifactStoreUnavailable):  # an outage to retry, not a bad artifact
        return 503
    if isinstance(error, ArtifactError | VersionConflict | NothingToRollBack | RunBusy):
        return 409
    if isinstance(error, LookupError):
        return 404
    if isinstance(error, RegistryError):
        return 503
    return 500


def detail_for(error: ManyModelsError) -> Any:
    if isinstance(error, InvalidRows):
        return error.detail()
    if storage_full(error):
        return full_message(error)
    return str(error)


def misshapen_key(request: Request) -> InvalidRows | None:
    """The 422 of the path's key (``…/v1/partitions/{key}/…``) when it is misshapen
    (``Resolver.misshapen``: ``store=2,brand``, ``=2``, ``%FF``…), for a 404 about to be
    answered: the routes that never serve the fallback (a partition's page, explain,
    actuals, forecast, promote, rollback, retrain, ``fallback=false``) said "no partition"
    where the fallback's routes said what is wrong. Runs only on a 404, never on a hit."""
    decoded = request.path_params.get("key")
    service = getattr(request.app.state, "service", None)
    if not isinstance(decoded, str) or service is None:
        return None
    shape: InvalidRows | None = service.misshapen(path_key(request, decoded))  # as sent
    return shape


def full_message(error: BaseException) -> str:
    """One line naming a full disk, and what was being written."""
    return f"insufficient storage (a disk or quota is full): {first_line(error)}"


async def _ours(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ManyModelsError)
    if isinstance(exc, PartitionNotFound) and (misshapen := misshapen_key(request)) is not None:
        exc = misshapen
    status = status_for(exc)
    if status >= 500:
        logger.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    detail = detail_for(exc)
    if isinstance(detail, str) and not carries_admin_token(request):
        service = getattr(request.app.state, "service", None)
        detail = redact_text(detail, local_roots(service.registry if service else None))
    return EscapedJSONResponse({"detail": detail}, status_code=status, headers=retry_after(status))


def retry_after(status: int) -> dict[str, str] | None:
    """``Retry-After`` on a 503: ours is always an outage (the registry database, the artifact
    store) that a client should retry, as a load balancer or an HTTP client's retry policy
    does only when told when. Without it a prediction's 503 said nothing of the kind, unlike
    the same outage met by ``GET /v1/partitions/{key}``."""
    return {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    """An outage, not a defect: one line in the log, and a 503 (see
    ``manymodels.exceptions.database_away``); a database whose disk is full is a 507."""
    if storage_full(exc):
        return await _full(request, exc)
    logger.error("%s %s: registry database unavailable: %s", request.method,
                 request.url.path, first_line(exc))  # fmt: skip
    message = "the registry database is unavailable; try again"
    body = {"error": message} if _under_v2(request) else {"detail": message}
    return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS})


async def _full(request: Request, exc: Exception) -> JSONResponse:
    """A write the full storage refused (507), from an error not ours: SQLAlchemy's, or an
    ``OSError`` (Starlette spooling an upload to a temporary file)."""
    logger.error("%s %s: storage full: %s", request.method, request.url.path, first_line(exc))
    message = full_message(exc)
    if not carries_admin_token(request):
        service = getattr(request.app.state, "service", None)
        message = redact_text(message, local_roots(service.registry if service else None))
    body = {"error": message} if _under_v2(request) else {"detail": message}
    return EscapedJSONResponse(body, status_code=INSUFFICIENT_STORAGE)


async def _os_error(request: Request, exc: Exception) -> JSONResponse:
    return await (_full if storage_full(exc) else _unexpected)(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error (see the server log)"}, status_code=500)


async def _http(request: Request, exc: Exception) -> Response:
    """Starlette's and FastAPI's own errors as they are (headers included: a 405's ``Allow``, a
    401's ``WWW-Authenticate``), except the 400 of an unreadable body: a 422."""
    assert isinstance(exc, HTTPException)
    if _under_v2(request) and exc.status_code in (404, 405):  # no V2 route matched it
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)
    if exc.status_code != 400:
        return await http_exception_handler(request, exc)
    return EscapedJSONResponse({"detail": [unreadable_body(request, exc)]}, status_code=422)


def _under_v2(request: Request) -> bool:
    """A path of the Open Inference Protocol's, whose clients read errors as ``{"error"}``
    (tritonclient failed on ``{"detail"}``): a 404 or 405 there matched no V2 route, which
    answers its own errors so (``serving.routes.v2_route.V2Route``)."""
    path = request.url.path
    return path == "/v2" or path.startswith("/v2/")


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, whose errors echo the bad input, with a non-finite number echoed as the
    text JSON does not have for it (``NaN``, ``Infinity``): FastAPI's own handler failed to
    encode ``{"horizon": NaN}``'s answer and the client got a 500. A body that is not JSON
    (a ``text/plain`` or form post, a file sent to a JSON route) comes back as its raw bytes,
    which are not echoed: they may be megabytes, and encoding them as UTF-8 failed (a 500)
    when they were not, as the retrain route's errors leave them out (``_located``)."""
    assert isinstance(exc, RequestValidationError)
    every = exc.errors()
    errors = [
        {k: _echoed(v) if k == "input" else v for k, v in e.items()} for e in every[:MAX_REPORTED]
    ]
    errors = [{k: v for k, v in e.items() if v is not _UNSAID} for e in errors]
    for raw, error in zip(every[:MAX_REPORTED], errors, strict=True):
        if isinstance(raw.get("input"), bytes | bytearray):  # FastAPI read no JSON: say why
            error["msg"] = _not_json(request.headers.get("content-type"))
        elif raw.get("type") == "missing" and tuple(raw.get("loc", ())) == ("body",):
            error["msg"] = _no_body(request)
        elif what := unusable_body(raw, exc.body):  # whitespace, ``null``, ``[]``: no object
            error.update(loc=["body"], msg=_no_body(request, f"body {what}"))
            error.pop("input", None)
            error.pop("ctx", None)
        elif raw.get("type") == "json_invalid":  # a syntax error: as an unreadable body
            error.clear()
            error.update(type="json_invalid", loc=["body"], msg=_syntax(raw, exc.body))
    if len(every) > MAX_REPORTED:  # one per bad row: 20,000 rows of ``5`` answered 2 MB
        errors.append(
            {
                "loc": list(every[MAX_REPORTED]["loc"][:1]),
                "msg": f"{len(every) - MAX_REPORTED} more problem(s) not listed",
                "type": "too_many_errors",
            }
        )  # as a request's cell errors are counted past the first ``MAX_REPORTED``
    return EscapedJSONResponse({"detail": _finite(jsonable_encoder(errors))}, status_code=422)


def _syntax(error: Mapping[str, Any], doc: Any) -> str:
    """The message of a body that is no JSON (``{"rows": [``): FastAPI's bare "JSON decode
    error" at ``["body", 10]``, with an ``"input": {}`` it never read, where a body that is
    not UTF-8 or nested too deeply is told "the request body cannot be read: …" at
    ``["body"]``; now it is too, saying what the parser expected and where."""
    why = str((error.get("ctx") or {}).get("error", "")) or "it is not JSON"
    pos = error.get("loc", ())[-1]
    if isinstance(doc, str) and doc and isinstance(pos, int):  # ``parse``'s own: no position
        line, column = doc.count("\n", 0, pos) + 1, pos - doc.rfind("\n", 0, pos)
        why = f"it is not valid JSON: {why.lower()} at line {line}, column {column}"
    return f"the request body cannot be read: {why}"


_UNSAID = object()
ECHO_CHARS = 200  # of a string echoed in a 422
ECHO_ITEMS = 100  # values of a row or body echoed whole; more: left out (``loc`` says where)


def _echoed(value: Any) -> Any:
    """What a 422 echoes of a bad input: a string cut to ``ECHO_CHARS``, a list or object of
    up to ``ECHO_ITEMS`` values (strings cut) whole, anything bigger not at all. A body of 5
    MB without its ``horizon`` was echoed whole (FastAPI's "missing" error's input is the
    object that lacks the field): 5 MB of answer, and a promote's 5 MB ``reason`` 10 MB."""
    if isinstance(value, bytes | bytearray):  # a body that is not JSON (see above)
        return _UNSAID
    budget = [ECHO_ITEMS]

    def cut(v: Any) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise OverflowError
        if isinstance(v, str):
            return v if len(v) <= ECHO_CHARS else v[:ECHO_CHARS] + "…"
        if isinstance(v, dict):
            return {cut(k): cut(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [cut(x) for x in v]
        return v

    try:
        return cut(value)
    except OverflowError:
        return _UNSAID


def _not_json(content_type: str | None) -> str:
    """``curl -d '{"rows": …}'`` sends a form's content type, and the JSON in it was read as
    bytes: "Input should be a valid dictionary" named neither the header nor the fix."""
    sent = f"as {content_type!r}" if content_type else "without a Content-Type"
    return (
        f"the body was sent {sent}, not as JSON: send a JSON object with the header "
        "Content-Type: application/json (curl: -H 'content-type: application/json')"
    )


def _no_body(request: Request, why: str = "has no body") -> str:
    """A POST without a body (``curl -X POST …/promote``) was FastAPI's bare "Field
    required" at ``["body"]``, naming neither that a JSON object was expected nor its fields;
    a body of whitespace, ``null`` or ``[]`` (``unusable_body``) is told the same. The header
    is named only when it is missing or not JSON's."""
    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    fields = getattr(model, "model_fields", {})
    required = [name for name, info in fields.items() if info.is_required()]
    wanted = f" holding {', '.join(repr(n) for n in required)}" if required else ""
    sent = request.headers.get("content-type", "")
    header = "" if _json_type(sent) else ", with the header Content-Type: application/json"
    return f"the request {why}: send a JSON object{wanted}{header} (its fields: /docs)"


def unusable_body(error: Mapping[str, Any], body: Any) -> str | None:
    """What a JSON body that holds no object is ("is null, not a JSON object"), from one of
    FastAPI's validation errors and the body it read (``RequestValidationError.body``), or
    ``None`` for any other error. A body of only whitespace was FastAPI's bare "JSON decode
    error" at ``["body", 3]``, and ``null`` or ``[]`` pydantic's "Input should be a valid
    dictionary or object to extract fields from": neither said a JSON object was wanted. A
    body of only a byte-order mark (an empty file saved as "UTF-8 with BOM") was "the request
    body cannot be read: Expecting value", saying neither what nor where."""
    if error.get("type") == "json_invalid":
        # ``jsonbody.parse``'s own refusals carry no body (``""``); an empty one is "missing"
        if body == "" and (error.get("ctx") or {}).get("error") == "Expecting value":
            return "is empty (only a byte-order mark)"  # read past its BOM, json.loads met none
        blank = isinstance(body, str | bytes | bytearray) and body and not body.strip()
        return "is empty (only whitespace)" if blank else None
    if tuple(error.get("loc", ())) != ("body",) or error.get("type") == "missing":
        return None
    value = error.get("input", {})
    if isinstance(value, dict | bytes | bytearray):  # an object, or no JSON at all
        return None
    if value is None or isinstance(value, bool):
        kind = json.dumps(value)
    else:
        kind = "a list" if isinstance(value, list) else ("a string" if isinstance(value, str)
                                                         else "a number")  # fmt: skip
    return f"is {kind}, not a JSON object"


def _json_type(content_type: str) -> bool:
    """Whether a ``Content-Type`` is JSON's (``application/json; charset=utf-8`` too): a
    request that sent it was told to send it all the same, as if the header were its fault."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class EscapedJSONResponse(JSONResponse):
    """An error's JSON, which echoes what the client sent: a string that is not text (a lone
    surrogate, which UTF-8 cannot encode) is written as JSON's ``\\ud800`` escape, the way
    it came, rather than failing the answer (a 500)."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            text = json.dumps(content, allow_nan=False, separators=(",", ":"))  # ASCII
            return text.encode("ascii")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def unreadable_body(request: Request, exc: BaseException) -> dict[str, Any]:
    """The validation error of a body that could not be parsed, shaped like FastAPI's own."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    cause = exc.__cause__  # FastAPI raises its 400 "from" what failed; Starlette does not
    if isinstance(cause, UnicodeDecodeError):
        why = "it is not UTF-8 text"
    elif isinstance(cause, RecursionError):
        why = "it is nested too deeply"
    elif cause is not None:
        why = first_line(cause)
    else:
        why = str(getattr(exc, "detail", exc))  # e.g. the multipart parser's "Missing boundary"
    return {
        "type": "multipart_invalid" if kind.startswith("multipart/") else "json_invalid",
        "loc": ["body"],
        "msg": f"the request body cannot be read: {why}",
    }


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(ManyModelsError, _ours)
    # every read of a router whose PostgreSQL was down answered 500 with a traceback, where
    # the outage is a 503 (a raw connection's errors are wrapped in a RegistryError, also a 503)
    for error in database_away():
        app.add_exception_handler(error, _database_down)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(Exception, _unexpected)
