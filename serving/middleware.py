"""Pure ASGI middleware: a request body limit, and per-request metrics plus one log line.

Pure ASGI (not ``BaseHTTPMiddleware``) keeps streaming intact and costs one function call.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.logs import ACCESS, JsonLine
from serving.metrics import Metrics

access_log = logging.getLogger(ACCESS)

LOG_FIELDS = "manymodels.log"  # scope key: a dict routes add fields to (partition, version…)


async def send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class BodyLimit:
    """413 for a body over ``max_bytes``: before reading anything when Content-Length says so,
    otherwise as soon as the streamed bytes pass the limit (chunked uploads have none)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _detail(self) -> str:
        return f"request body is larger than the limit of {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = 0
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
        received = 0
        started = False

        async def limited_receive() -> Message:
            # Raised where the body is read, so the route is known (for metrics) and FastAPI
            # re-raises it to its HTTPException handler: a JSON 413. A route that never reads
            # its body is never refused.
            nonlocal received
            if declared > self.max_bytes:
                raise HTTPException(413, self._detail())
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._detail())
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except HTTPException as e:
            if e.status_code != 413 or started:
                raise
            await send_json(send, 413, {"detail": e.detail})


class Observe:
    """Counts and times every request by route *template* (bounded label values), and logs
    one JSON line per request."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, static_paths: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.metrics = metrics
        # Routes that are not FastAPI APIRoutes (/docs, /openapi.json) leave no "route" in
        # the scope; their paths have no parameters, so the path itself is the template.
        self.static_paths = static_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        fields: dict[str, Any] = {}
        scope[LOG_FIELDS] = fields

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            path = scope.get("path", "")
            template = getattr(route, "path", None) or (
                path if path in self.static_paths else "unmatched"
            )
            self.metrics.observe_request(template, scope["method"], status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                record = {
                    "method": scope["method"],
                    "path": path,
                    "route": template,
                    "status": status,
                    "ms": round(seconds * 1000, 2),
                    "client": client[0] if client else None,
                    **fields,
                }
                access_log.info("%s", JsonLine(record))  # JSON on the log thread


def log_fields(scope: Scope, **values: Any) -> None:
    """Add fields to this request's access-log line (a no-op outside ``Observe``)."""
    target = scope.get(LOG_FIELDS)
    if isinstance(target, dict):
        target.update(values)
