"""Mutating endpoints, behind the admin token: promote, roll back and retire production.

Each is one registry transaction with its history entry (``Registry.promote``, ``rollback``,
``retire``) and updates this router's alias table at once; other routers see the move within
their refresh interval.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.concurrency import run_in_threadpool

from manymodels.reasons import given
from serving.auth import Admin
from serving.jsonbody import FastJSONRoute
from serving.keys import path_key
from serving.middleware import log_fields
from serving.routes import Service
from serving.schemas import (
    ERRORS,
    AliasMoveOut,
    ErrorOut,
    PromoteRequest,
    RetireRequest,
    RollbackRequest,
)

router = APIRouter(tags=["admin"], dependencies=[Admin], route_class=FastJSONRoute)

UNLOADABLE = (
    "The version asked for cannot be served: its artifact is missing or corrupted, fails its "
    "signature check, or is in a format the registry does not trust; nothing moved. A 409, "
    "not the 500 a prediction from such a version gets: this request asks to put production "
    "on it, and another version can be asked for."
)
NOTHING_BACK = "Nothing to roll back to: every earlier version deleted, or its model unloadable."
NOT_SERVING = "Unknown partition, or one never in production."
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong admin token."},
    403: {"model": ErrorOut, "description": "Admin endpoints are disabled (no token set)."},
    404: ERRORS[404],
    503: {"model": ErrorOut, "description": "The registry is unreachable, or read-only."},
    507: {"model": ErrorOut, "description": "The registry's storage (a disk, a quota) is full."},
}


@router.post(
    "/v1/partitions/{key:path}/promote",
    response_model=AliasMoveOut,
    responses={**AUTH_ERRORS, 409: {"model": ErrorOut, "description": UNLOADABLE}},
    summary="Point production at a version",
)
async def promote(
    request: Request, key: str, body: PromoteRequest, service: Service
) -> AliasMoveOut:
    text = path_key(request, key)
    move = await run_in_threadpool(
        service.promote, text, body.version, reason=given(body.reason) or "promoted via the router"
    )
    action = "promote" if move.moved else "promote (already)"
    log_fields(request.scope, partition=move.key, version=move.to_version, admin=action)
    return AliasMoveOut.of(move)


@router.post(
    "/v1/partitions/{key:path}/rollback",
    response_model=AliasMoveOut,
    responses={**AUTH_ERRORS, 409: {"model": ErrorOut, "description": NOTHING_BACK}},
    summary="Move production back to its previous version",
)
async def rollback(
    request: Request,
    key: str,
    service: Service,
    body: Annotated[RollbackRequest | None, Body()] = None,
) -> AliasMoveOut:
    """Production goes back to the version it pointed at before its last move (from the
    alias history). Rolling back twice goes two versions back; versions deleted or whose
    model no reader could load are skipped."""
    text = path_key(request, key)
    reason = body.reason if body is not None else None
    move = await run_in_threadpool(service.rollback, text, reason=reason)
    log_fields(request.scope, partition=move.key, version=move.to_version, admin="rollback")
    return AliasMoveOut.of(move)


@router.post(
    "/v1/partitions/{key:path}/retire",
    response_model=AliasMoveOut,
    responses={**AUTH_ERRORS, 404: {"model": ErrorOut, "description": NOT_SERVING}},
    summary="Take a partition out of production",
)
async def retire(
    request: Request,
    key: str,
    service: Service,
    body: Annotated[RetireRequest | None, Body()] = None,
) -> AliasMoveOut:
    """The router's ``manymodels retire``: production's alias leaves the partition, which is
    then served as one with no model (the fallback where the registry has one, else a 404).
    Its versions stay, the one it served kept under the ``retired`` alias; a rollback puts
    production back on it. The answer is the history's "retire" entry (``to_version`` null).

    Idempotent, as a promotion to the version served is: a partition retired already is a
    200 with the entry that retired it (its time and reason), ``moved`` false, and nothing
    written. A script retiring partitions can be run again; a 404 there read as a key
    that never existed."""
    text = path_key(request, key)
    reason = given(body.reason if body is not None else None) or "retired via the router"
    move = await run_in_threadpool(service.retire, text, reason=reason)
    action = "retire" if move.moved else "retire (already)"
    log_fields(request.scope, partition=move.key, version=move.from_version, admin=action)
    return AliasMoveOut.of(move)
