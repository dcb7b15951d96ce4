"""Admin authentication: a bearer token for every mutating endpoint.

No token configured means the admin endpoints are *disabled* (403), never open. A wrong or
missing token is a 401. The comparison is constant-time (``hmac.compare_digest``)::

    @router.post("/v1/partitions/{key:path}/retrain", dependencies=[Depends(require_admin)])
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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
    given = credentials.credentials if credentials is not None else ""
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            status_code=401,
            detail="a valid admin token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


Admin = Depends(require_admin)
