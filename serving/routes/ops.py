"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from serving.auth import carries_admin_token, may_read
from serving.errors import RETRY_AFTER_SECONDS
from serving.metrics import CONTENT_TYPE, Metrics
from serving.readiness import READY_TIMEOUT_SECONDS
from serving.redact import local_roots, redact_text
from serving.schemas import ErrorOut

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorOut,
        "description": "Not ready: still starting up (the alias table not read yet), or the "
        f"registry unreachable (its database not answering in {READY_TIMEOUT_SECONDS:g} s; "
        "why, to a read or admin token only when reads need one), or the registry's database "
        "file replaced or moved since the router opened it (it answers only from the old "
        "file, on the database connections it has open: restart it).",
    }
}
"""Declared so a client generated from the OpenAPI document expects the 503 a probe acts on."""
WAIT = {"Retry-After": RETRY_AFTER_SECONDS}  # starting up, or the registry away: an outage
# that ends by itself, as every other 503 of the router says (serving.errors)


@router.get(
    "/readyz",
    summary="Readiness: registry reachable and alias table loaded",
    responses=NOT_READY,
)
async def readyz(request: Request) -> JSONResponse:
    service = getattr(request.app.state, "service", None)
    if service is None or not service.aliases.loaded:
        return JSONResponse({"detail": "starting up"}, status_code=503, headers=WAIT)
    not_ready = await request.app.state.registry_ping.why_not()  # the file, then a ping
    if not_ready is not None and not_ready.replaced:  # no Retry-After: it does not end by
        return JSONResponse({"detail": not_ready.why}, 503)  # itself
    if not_ready is not None:
        why = not_ready.why
        if not may_read(request):  # the driver's reason can name the database's host;
            return JSONResponse({"detail": "registry unreachable"}, 503, headers=WAIT)  # a probe
            # acts on the status alone
        if not carries_admin_token(request):
            why = redact_text(why, local_roots(service.registry))
        return JSONResponse({"detail": f"registry unreachable: {why}"}, 503, headers=WAIT)
    if not may_read(request):  # a probe needs no token; the registry's size is data
        return JSONResponse({"status": "ready"})  # (``/metrics``, which has it, needs one)
    return JSONResponse(
        {"status": "ready", "partitions": len(service.aliases), "models_loaded": len(service.cache)}
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)
