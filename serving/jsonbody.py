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

from fastapi import HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic_core import from_json

from serving.jsonhead import HEAD_BYTES, Head, buried, scan
from serving.query import QueryCheckedRoute
from serving.settings import Settings
from serving.v2_compression import inflated
from serving.v2_schemas import TensorError

__all__ = ["HEAD_BYTES", "FastJSONRequest", "FastJSONRoute", "parse", "scan"]

# A body this large is parsed in a worker thread, and its first ``HEAD_BYTES`` are read
# first for a cap its rows break. 10 MB of empty rows (``{"rows":[{},{},...]}``, 3.3 million)
# blocked every other request for ~1.3 s before its 422 (parsing, then validating every row
# on the event loop); a thread alone does not help much, the parser holds the GIL throughout.
# Smaller bodies are parsed in place: a thread hop costs more than reading them (~60 µs for
# 8 KB).
OFF_LOOP_BYTES = 256 * 1024

# The lists of rows a body may hold, each capped at ``max_batch_rows``: a body of millions of
# rows is refused before FastAPI validates each one on the event loop.
ROW_LISTS = {"rows": "rows", "future": "future rows"}

# The columns a row may name: a model's features, its key and time columns, with room to
# spare. One row of 700,000 keys (9.7 MB) held the event loop 1.1 s on the per-key predict
# route, which scores a few rows in place.
MAX_COLUMNS = 10_000
# A body of N items in a list, or of a row of N keys, takes 2 bytes an item at the least
# (``0,`` / ``{},``; keys are distinct), so a body of ``2 * min(limit, MAX_COLUMNS)`` bytes or
# fewer breaks neither cap and is not walked: the check stays off the path of every usual
# request (7 µs of a 100-row batch's ~550 µs of server CPU, measured in process).

LONE_SURROGATE = "a string holds a lone surrogate (a \\ud800-\\udfff escape paired with nothing)"
HUGE_INTEGER = (
    "a number of more than 4,300 digits (an integer no float holds): send numbers as floats"
)


def parse(body: bytes) -> Any:
    """``body`` as ``json.loads`` reads it, by the faster parser where that one accepts it;
    ``json.JSONDecodeError`` for a string that is not text (``LONE_SURROGATE``), and for an
    integer past Python's digit limit (``HUGE_INTEGER``): ``json.loads`` raised a plain
    ``ValueError`` whose 422 told the client to call ``sys.set_int_max_str_digits()``."""
    try:
        return from_json(body)
    except ValueError:
        try:
            value = json.loads(body)
        except ValueError as e:  # Python's digit limit of an int: its advice was the server's
            if "integer string conversion" not in str(e):  # not JSON, or not UTF-8
                raise
            raise json.JSONDecodeError(HUGE_INTEGER, "", 0) from None
    try:  # the faster parser refuses lone surrogates: only a body it refused can hold one
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise json.JSONDecodeError(LONE_SURROGATE, "", 0) from None
    return value


class FastJSONRequest(Request):
    async def body(self) -> bytes:
        """The body as sent before its ``Content-Encoding``: gzip and deflate are inflated,
        under the body limit, as ``/v2`` inflates them (``v2_compression``); a gzip body to
        ``/v1/predict`` was a 422 "not UTF-8 text", the same body a 200 on ``/v2``. A stream
        that is not what its encoding says is a 400 naming it; another encoding a 415."""
        if not hasattr(self, "_inflated"):
            settings = getattr(self.app.state, "settings", None)
            limit = settings.max_body_bytes if settings is not None else Settings.max_body_bytes
            raw = await super().body()
            try:
                self._inflated = inflated(raw, self.headers.get("content-encoding"), limit)
            except TensorError as e:  # /v2 answers it as its own 400 (``V2Route``)
                raise HTTPException(400, str(e)) from e
        return self._inflated

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            settings = getattr(self.app.state, "settings", None)
            limit = settings.max_batch_rows if settings is not None else None
            if limit is not None and len(body) > HEAD_BYTES:
                self.refuse_from_head(scan(body), limit)
            small = len(body) < OFF_LOOP_BYTES
            value = parse(body) if small else await run_in_threadpool(parse, body)
            if limit is not None and len(body) > 2 * min(limit, MAX_COLUMNS):
                refuse_long_lists(value, limit)
            self._json = value
        return self._json

    def refuse_from_head(self, head: Head, limit: int) -> None:
        """A 422 for what a big body's head (``jsonhead.scan``) already shows to break a cap,
        before the whole body is parsed; a request of another protocol adds its own caps
        (``V2Request``)."""
        if head.buried is not None:
            msg = buried(head.buried)
            where = ["body", head.buried]
            raise HTTPException(422, [{"loc": where, "msg": msg, "type": "too_long"}])
        refuse_long_lists(head.value, limit, so_far=True)


def refuse_long_lists(value: Any, limit: int, *, so_far: bool = False) -> None:
    """A 422, as the routes' own check words it, for a body whose rows outnumber ``limit``,
    or for a row of more than ``MAX_COLUMNS`` columns (``so_far``: counted in its head, so at
    least that many)."""
    if not isinstance(value, dict):
        return
    for name, what in ROW_LISTS.items():
        rows = value.get(name)
        if not isinstance(rows, list):
            continue
        for i, row in enumerate(rows):  # a cut-short last row of a head has at least these
            if isinstance(row, dict) and len(row) > MAX_COLUMNS:
                raise HTTPException(
                    422,
                    [
                        {
                            "loc": ["body", name, i],
                            "msg": f"{'at least ' if so_far else ''}{len(row)} columns is more "
                            f"than the limit of {MAX_COLUMNS} per row",
                            "type": "too_long",
                        }
                    ],
                )
        if len(rows) > limit:
            raise HTTPException(
                422,
                [
                    {
                        "loc": ["body", name],
                        "msg": f"{'at least ' if so_far else ''}{len(rows)} {what} is more "
                        f"than the limit of {limit} per request",
                        "type": "too_long",
                    }
                ],
            )


class FastJSONRoute(QueryCheckedRoute):
    """An ``APIRoute`` whose handler reads a JSON body with ``parse`` (and that refuses a
    query parameter it does not take: ``serving.query``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(FastJSONRequest(request.scope, request.receive))

        return route_handler
