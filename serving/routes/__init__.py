"""HTTP routes, one module per concern; each exposes ``router`` (a FastAPI ``APIRouter``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from serving.errors import RETRY_AFTER_SECONDS
from serving.service import ModelService
from serving.settings import Settings


def starting_up() -> HTTPException:
    """The 503 of a router whose registry is not open yet: an outage that ends by itself, so
    it says when to try again (``Retry-After``) as every other outage's 503 does — without
    it, a client's retry policy or a load balancer took it for a failure, not a wait."""
    return HTTPException(
        503,
        "the router is starting up (the registry is not open yet)",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the
# thread pool, and these only read app state — a thread hop each would cost more than the work.
async def get_service(request: Request) -> ModelService:
    return service_of(request)


def service_of(request: Request) -> ModelService:
    """The app's ``ModelService``, or a 503 while it starts. The scoring routes call this
    rather than declaring the dependency: FastAPI's dependency resolution cost more per
    one-row request than the scoring (serving/routes/options.py)."""
    service = getattr(request.app.state, "service", None)
    if service is None:
        raise starting_up()
    return service


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


Service = Annotated[ModelService, Depends(get_service)]
CurrentSettings = Annotated[Settings, Depends(get_settings)]
