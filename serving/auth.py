"""Admin authentication: a bearer token for every mutating endpoint.

No token configured means the admin endpoints are *disabled* (403), never open. A wrong or
missing token is a 401. The comparison is constant-time (``hmac.compare_digest``)::

    @router.post("/v1/partitions/{key:path}/retrain", dependencies=[Depends(require_admin)])

Public routes may show an admin more (local paths, see ``serving.redact``): ``AdminView`` is a
``bool`` dependency that never refuses, and ``carries_admin_token`` answers the same question
where no dependency runs (error handlers).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from serving.settings import ENV_ADMIN_TOKEN, ENV_ADMIN_TOKEN_FILE, Settings

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="admin token",
    description=f"The router's admin token ({ENV_ADMIN_TOKEN} or {ENV_ADMIN_TOKEN_FILE}).",
)


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """A FastAPI dependency: passes with the right token, raises 403 / 401 otherwise."""
    settings: Settings = request.app.state.settings
    token = settings.admin_token
    if token is None:
        raise HTTPException(
            status_code=403,
            detail=(
                "admin endpoints are disabled on this router: start it with "
                f"{ENV_ADMIN_TOKEN} or {ENV_ADMIN_TOKEN_FILE} set"
            ),
        )
    if not _valid(token, credentials.credentials if credentials is not None else ""):
        raise HTTPException(
            status_code=401,
            detail="a valid admin token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


Admin = Depends(require_admin)


async def admin_view(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> bool:
    """A FastAPI dependency for public routes: whether the request carries the admin token."""
    settings: Settings = request.app.state.settings
    given = credentials.credentials if credentials is not None else ""
    return _valid(settings.admin_token, given)


AdminView = Annotated[bool, Depends(admin_view)]


def carries_admin_token(request: Request) -> bool:
    """``admin_view`` outside dependency injection: read the Authorization header itself."""
    settings: Settings | None = getattr(request.app.state, "settings", None)
    scheme, given = get_authorization_scheme_param(request.headers.get("Authorization"))
    token = settings.admin_token if settings is not None else None
    return scheme.lower() == "bearer" and _valid(token, given)


def _valid(token: str | None, given: str) -> bool:
    """Constant-time; no token configured matches nothing."""
    if not token or not given:
        return False
    return hmac.compare_digest(given.encode(), token.encode())
