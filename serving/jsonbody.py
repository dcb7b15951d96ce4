"""Request bodies parsed by pydantic-core's JSON parser instead of ``json.loads``.

A batch of 100 rows is ~8 KB of JSON, mostly floats; ``json.loads`` spent more time reading it
(~190–350 µs) than the router spent grouping, scoring and answering it, and the body of
``/v1/predict`` (each row also naming its partition) cost nearly twice that of the same rows
on the per-key endpoint. ``pydantic_core.from_json`` (Rust, already installed with pydantic)
reads the same body in ~55–67 µs and gives the same values: floats correctly rounded, big
integers, ``NaN``/``Infinity``, the last of duplicate keys. Where it refuses a body,
``json.loads`` reads it again, so every body the standard library accepts (UTF-16, a
byte-order mark) is accepted as before, and every body it refuses fails with its
``JSONDecodeError`` — the 422 ``json_invalid`` FastAPI answers — exactly as before. But not a
string holding a lone surrogate (a ``\ud800`` escape paired with nothing): that is no text,
no database or answer can hold it (echoed in a 422, it made the answer itself fail: a 500),
so it is refused the same way.

Used by every route whose JSON body FastAPI reads, through ``FastJSONRoute`` (FastAPI's
documented custom ``APIRoute``/``Request`` pattern) and V2's request; FastAPI validates the
parsed body as usual. The retrain route reads its rows with pydantic's own parser, which
refuses a lone surrogate too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from pydantic_core import from_json

from serving.query import QueryCheckedRoute

LONE_SURROGATE = "a string holds a lone surrogate (a \\ud800-\\udfff escape paired with nothing)"


def parse(body: bytes) -> Any:
    """``body`` as ``json.loads`` reads it, by the faster parser where that one accepts it;
    ``json.JSONDecodeError`` for a string that is not text (``LONE_SURROGATE``)."""
    try:
        return from_json(body)
    except ValueError:
        value = json.loads(body)
    try:  # the faster parser refuses lone surrogates: only a body it refused can hold one
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise json.JSONDecodeError(LONE_SURROGATE, "", 0) from None
    return value


class FastJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse(await self.body())
        return self._json


class FastJSONRoute(QueryCheckedRoute):
    """An ``APIRoute`` whose handler reads a JSON body with ``parse`` (and that refuses a
    query parameter it does not take: ``serving.query``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(FastJSONRequest(request.scope, request.receive))

        return route_handler
