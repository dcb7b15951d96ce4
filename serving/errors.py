"""Errors the router raises, and how every error becomes a JSON ``{"detail": ...}`` answer.

    ManyModelsError                     (manymodels.exceptions)
    ├── DataError
    │   └── InvalidRows                 422: rows that do not fit the feature schema (serving.rows)
    │   └── ScoringFailed               422: the model rejected the rows (NaN, unknown category…)
    ├── RegistryError
    │   ├── …NotFound(LookupError)      404
    │   ├── NothingToRollBack           409: production has no earlier version to go back to
    │   └── VersionConflict             409
    └── ArtifactError
        └── ModelNotServed              409: the artifact failed its sha256 check (or is missing)

The registry being unreachable is a 503; only a bug is a 500, and even then the client gets a
JSON body without a traceback (the traceback goes to the server log).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from manymodels.exceptions import (
    ArtifactError,
    DataError,
    ManyModelsError,
    NothingToRollBack,
    RegistryError,
    SpecError,
    VersionConflict,
)
from serving.rows import InvalidRows

__all__ = ["ModelNotServed", "NothingToRollBack", "ScoringFailed", "install_handlers"]

logger = logging.getLogger("manymodels.serving")


class ScoringFailed(DataError):
    """The rows passed the schema but the estimator refused them."""


class ModelNotServed(ArtifactError):
    """A model that cannot be loaded safely (tampered or missing artifact); never cached."""


def status_for(error: ManyModelsError) -> int:
    if isinstance(error, DataError | SpecError):
        return 422
    if isinstance(error, ArtifactError | VersionConflict | NothingToRollBack):
        return 409
    if isinstance(error, LookupError):
        return 404
    if isinstance(error, RegistryError):
        return 503
    return 500


def detail_for(error: ManyModelsError) -> Any:
    if isinstance(error, InvalidRows):
        return error.detail()
    return str(error)


async def _ours(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ManyModelsError)
    status = status_for(exc)
    if status >= 500:
        logger.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return JSONResponse({"detail": detail_for(exc)}, status_code=status)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error (see the server log)"}, status_code=500)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ManyModelsError, _ours)
    app.add_exception_handler(Exception, _unexpected)
