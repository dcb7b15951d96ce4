"""Authentication: bearer tokens of two scopes, *admin* (mutating endpoints) and *read* (data).

Admin: no token configured means the admin endpoints are *disabled* (403), never open; a wrong or
missing token is a 401, a read token a 403 (known, but not allowed)::

    @router.post("/v1/partitions/{key:path}/retrain", dependencies=[Depends(require_admin)])

Read: with read tokens configured (``MANYMODELS_READ_TOKEN`` / ``_FILE``), every data endpoint
— scoring, forecasting, partitions, ``/metrics`` — needs a read or an admin token (an admin
also reads; retrain jobs, read or posted, stay an admin's), else a 401 with
``WWW-Authenticate: Bearer``; without them reading is open, as it was before read tokens
existed. ``create_app`` puts ``read_dependencies(settings)`` on every router it includes, so
a new router is covered by being included; a router included elsewhere takes
``dependencies=[Reader]``. Probes stay open for load balancers and
orchestrators: the routes in ``OPEN_PATHS`` (``/healthz``, ``/readyz``, the Open Inference
Protocol's ``/v2/health/live`` and ``/v2/health/ready``); so do ``/docs`` and
``/openapi.json``, which describe the API (public in the source anyway), not the data.
FastAPI reads a JSON body before it solves dependencies, so an anonymous request whose body is
not JSON gets that 422 rather than the 401, and a body (up to ``max_body_bytes``) is read
before it is refused — as for the admin endpoints; the check itself never sees the body.

Each scope may hold several tokens at once, which is how one is rotated without downtime (the
README's "Tokens"). Every check compares the sha256 of what the client sent with every
configured token in constant time (``manymodels.secrets.Tokens``); no token is ever logged,
echoed in an error, or shown in ``repr``.

Public routes may show an admin more (local paths, see ``serving.redact``): ``AdminView`` is a
``bool`` dependency that never refuses, and ``carries_admin_token`` answers the same question
where no dependency runs (error handlers).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from manymodels.secrets import Tokens
from serving.settings import (
    ENV_ADMIN_TOKEN,
    ENV_ADMIN_TOKEN_FILE,
    Settings,
)

# Routes a probe calls: open even when reads need a token.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="admin token",
    description=f"The router's admin token ({ENV_ADMIN_TOKEN} or {ENV_ADMIN_TOKEN_FILE}).",
)


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """A FastAPI dependency: passes with an admin token, raises 403 / 401 otherwise."""
    settings: Settings = request.app.state.settings
    admins = settings.admin_tokens
    if admins is None:
        raise HTTPException(
            status_code=403,
            detail=(
                "admin endpoints are disabled on this router: start it with "
                f"{ENV_ADMIN_TOKEN} or {ENV_ADMIN_TOKEN_FILE} set"
            ),
        )
    given = credentials.credentials if credentials is not None else ""
    if not _valid(admins, given):
        if _valid(settings.read_tokens, given):
            # authenticated, not allowed: a 401 would tell the client to try its token again
            raise HTTPException(
                status_code=403,
                detail="this is a read token: retrain jobs, and any change to the registry, "
                "need an admin token",
            )
        raise HTTPException(
            status_code=401,
            detail="a valid admin token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


Admin = Depends(require_admin)


async def require_reader(request: Request) -> None:
    """A FastAPI dependency: passes when reads are open, for a probe (``OPEN_PATHS``), or with
    a read or an admin token; raises 401 otherwise.

    It reads the header itself rather than through an ``HTTPBearer`` sub-dependency (which
    would put the scheme in the OpenAPI document): on a trivial route that second level of
    dependency solving cost ~100-150 µs a request more on a busy 2-core machine, the check
    itself ~2 µs. ``async``: a thread hop would cost more than the check."""
    settings: Settings = request.app.state.settings
    readers = settings.read_tokens
    if readers is None:
        return
    route = request.scope.get("route")
    if getattr(route, "path", None) in OPEN_PATHS:
        return
    scheme, given = get_authorization_scheme_param(request.headers.get("Authorization"))
    if scheme.lower() != "bearer":
        given = ""
    # both scopes are always checked (``|``, not ``or``): the time taken says nothing of which
    if not (_valid(readers, given) | _valid(settings.admin_tokens, given)):
        raise HTTPException(
            status_code=401,
            detail="a valid read or admin token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


Reader = Depends(require_reader)


def read_dependencies(settings: Settings) -> list[Any]:
    """What ``create_app`` puts on every router it includes: ``[Reader]`` when reads need a
    token, nothing otherwise — an open router pays nothing per request."""
    return [Reader] if settings.reads_need_token else []


async def admin_view(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> bool:
    """A FastAPI dependency for public routes: whether the request carries an admin token."""
    settings: Settings = request.app.state.settings
    given = credentials.credentials if credentials is not None else ""
    return _valid(settings.admin_tokens, given)


AdminView = Annotated[bool, Depends(admin_view)]


def carries_admin_token(request: Request) -> bool:
    """``admin_view`` outside dependency injection: read the Authorization header itself."""
    settings: Settings | None = getattr(request.app.state, "settings", None)
    given = _bearer(request)
    admins = settings.admin_tokens if settings is not None else None
    return given is not None and _valid(admins, given)


def may_read(request: Request) -> bool:
    """``require_reader``'s answer outside dependency injection, for an open route that shows
    more to a reader (``/readyz``'s counts, and its 503's cause): reads are open, or the
    request carries a read or an admin token."""
    settings: Settings | None = getattr(request.app.state, "settings", None)
    if settings is None or settings.read_tokens is None:
        return True
    given = _bearer(request)
    if given is None:
        return False
    return _valid(settings.read_tokens, given) | _valid(settings.admin_tokens, given)


def _bearer(request: Request) -> str | None:
    """The request's bearer token as given (``None`` without an ``Authorization: Bearer``),
    for the checks made outside dependency injection."""
    scheme, given = get_authorization_scheme_param(request.headers.get("Authorization"))
    return given if scheme.lower() == "bearer" else None


def _valid(tokens: Tokens | None, given: str) -> bool:
    """Constant-time against every token; no token configured matches nothing."""
    return tokens is not None and tokens.matches(given)
