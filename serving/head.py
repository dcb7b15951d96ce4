"""HEAD answered as GET without the body (RFC 9110 §9.3.2: every general-purpose server
supports it). FastAPI's routes list GET alone, so ``HEAD /healthz`` was a 405: uptime checkers
that probe with HEAD (several do by default) saw the router as down, and ``curl -I`` of the
dashboard failed. The GET runs, its status and headers (Content-Length included) are sent,
its body is not."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Head:
    """Runs a HEAD request as its GET and drops the body it sends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headless(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        inner = {**scope, "method": "GET"}
        try:
            await self.app(inner, receive, headless)
        finally:
            if "route" in inner:  # the route matched, for the metrics and log line (Observe)
                scope["route"] = inner["route"]
