"""Errors the router raises, and how every error becomes a JSON ``{"detail": ...}`` answer.

    ManyModelsError                     (manymodels.exceptions)
    ├── DataError
    │   └── InvalidRows                 422: rows that do not fit the feature schema (serving.rows)
    │   └── ScoringFailed               422: the model rejected the rows (NaN, unknown category…)
    ├── RegistryError
    │   ├── …NotFound(LookupError)      404
    │   ├── NothingToRollBack           409: production has no earlier version to go back to
    │   └── VersionConflict             409
    ├── ArtifactError                   409: a request refused for a version's artifact (a
    │   │                                    promotion of one no reader can load)
    │   ├── ArtifactStoreUnavailable    503: an outage to retry (manymodels.artifact_stores)
    │   └── ModelNotServed              500: the artifact is missing, does not load, is not
    │       │                                trusted or fails its signature check
    │       └── ModelCorrupted          500: the artifact failed its sha256 check
    ├── UploadNotStored                 500: a retrain's rows the artifact store could not
    │                                        write (permissions, EIO): the server's fault
    └── TrainingError
        └── RunBusy                     409: a run of the spec is training (manymodels.run_busy)

A model the router cannot serve is a 500, whatever the reason (missing, unloadable, a format
the registry does not trust, a bad signature, bytes that changed): it was a 409 Conflict, which
tells a client that its request clashed with state it can change, and a client asking for a
prediction can change none of these; only whoever runs the registry can (a retrain, ``trust``,
restoring the store). A promotion of such a version stays a 409: that request asks to move
production onto a version in a state that refuses it, and the client can ask for another.

The registry being unreachable is a 503. Its storage full (a disk or a quota: an artifact or
the database could not be written) is a 507 Insufficient Storage, whatever error carried it —
ours, SQLAlchemy's, or an ``OSError`` (a spooled upload): a full disk under a retrain was a 409
conflict (``manymodels.error_reading.storage_full``). A bug is a 500, and so is an artifact whose
bytes no longer match their sha256 (the store's fault, which no request can fix: it was a 409
Conflict, as if the client's request clashed with the model's state); a client gets a JSON
body without a traceback either way (a bug's traceback goes to the server log). A message
that names a local path (an artifact directory, the database file) shows it only to a request
carrying the admin token; others see the path's last component (``serving.redact``).

A body that cannot be read, or holds no object, is a 422 like any other invalid body
(``serving.body_errors``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from manymodels.exceptions import (
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
from serving.body_errors import EscapedJSONResponse, invalid_request, unreadable_body
from serving.keys import path_key
from serving.redact import local_roots, redact_text
from serving.rows import InvalidRows
from serving.v2_extensions import missing_server_endpoint

__all__ = [
    "MODEL_REFUSALS",
    "ModelCorrupted",
    "ModelNotServed",
    "NothingToRollBack",
    "ScoringFailed",
    "install_handlers",
    "retry_after",
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
    """A model that cannot be loaded safely (tampered, missing, unreadable or untrusted
    artifact); never cached. A 500: the request is sound, the registry cannot answer it."""


class ModelCorrupted(ModelNotServed):
    """A model whose artifact failed its sha256 check: a 500, the store's fault (a disk, a
    bucket, a hand that changed the bytes), not the request's; never unpickled, never cached.
    A ``ModelNotServed`` still: what skips or refuses an unloadable model skips this one."""


class UploadNotStored(ManyModelsError):
    """A retrain's checked rows the artifact store refused to write (permissions, EIO, a file
    where a directory must be): a 500, the server's fault, where the store's raw
    ``ArtifactError`` answered a 409 Conflict, as if the client could change it. An outage
    stays a 503 and a full disk a 507: those are not turned into this."""


INSUFFICIENT_STORAGE = 507
RETRY_AFTER_SECONDS = "5"  # an outage's 503: when a client may try again


def status_for(error: ManyModelsError) -> int:
    if storage_full(error):
        return INSUFFICIENT_STORAGE
    if isinstance(error, DataError | SpecError):
        return 422
    if isinstance(error, ArtifactStoreUnavailable):  # an outage to retry, not a bad artifact
        return 503
    if isinstance(error, ModelNotServed):  # the registry's fault, which no request can fix
        return 500
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
    actuals, forecast, promote, rollback, retire, retrain, ``fallback=false``) said "no partition"
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
    ``manymodels.error_reading.database_away``); a database whose disk is full is a 507."""
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
        if (said := missing_server_endpoint(request.url.path, exc.status_code)) is not None:
            return JSONResponse({"error": said}, 404)  # Triton's, by any method: none such
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, exc.headers)
    if exc.status_code != 400:
        return await http_exception_handler(request, exc)
    return EscapedJSONResponse({"detail": [unreadable_body(request, exc)]}, status_code=422)


def _under_v2(request: Request) -> bool:
    """A path of the Open Inference Protocol's, whose clients read errors as ``{"error"}``
    (tritonclient failed on ``{"detail"}``): a 404 or 405 there matched no V2 route, which
    answers its own errors so (``serving.routes.v2_route.V2Route``)."""
    path = request.url.path
    return path == "/v2" or path.startswith("/v2/")


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ManyModelsError, _ours)
    # every read of a router whose PostgreSQL was down answered 500 with a traceback, where
    # the outage is a 503 (a raw connection's errors are wrapped in a RegistryError, also a 503)
    for error in database_away():
        app.add_exception_handler(error, _database_down)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(Exception, _unexpected)
