"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from manymodels.exceptions import RegistryError
from serving.auth import carries_admin_token
from serving.metrics import CONTENT_TYPE, Metrics
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
        "registry unreachable.",
    }
}
"""Declared so a client generated from the OpenAPI document expects the 503 a probe acts on."""


@router.get(
    "/readyz",
    summary="Readiness: registry reachable and alias table loaded",
    responses=NOT_READY,
)
async def readyz(request: Request) -> JSONResponse:
    service = getattr(request.app.state, "service", None)
    if service is None or not service.aliases.loaded:
        return JSONResponse({"detail": "starting up"}, status_code=503)
    try:
        await run_in_threadpool(service.registry.store.ping)
    except RegistryError as e:
        why = (
            str(e)
            if carries_admin_token(request)
            else redact_text(str(e), local_roots(service.registry))
        )
        return JSONResponse({"detail": f"registry unreachable: {why}"}, status_code=503)
    return JSONResponse(
        {"status": "ready", "partitions": len(service.aliases), "models_loaded": len(service.cache)}
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)
