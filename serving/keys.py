"""The partition key in a URL path, exactly as the client encoded it.

The ASGI server percent-decodes ``scope["path"]`` before routing, so a value ``a/b`` sent as
``brand=a%2Fb`` reaches the route as ``brand=a/b`` — indistinguishable from a path separator.
The routes therefore match ``{key:path}`` (so a decoded ``/`` still matches) and then take the
key from ``scope["raw_path"]``, still encoded; ``normalize_key`` decodes each value itself.

Routing itself must not split a key either: ``brand=a%2Fexplain`` decoded matched
``…/{key}/explain`` and answered partition ``brand=a``'s explanation, and a value's newline
(``%0A``) matched no route at all (a path parameter's ``.*`` stops at a newline).
``EncodedSeparators`` routes such a request by a path whose every segment is decoded but for
those two characters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from itertools import repeat
from operator import contains
from typing import Any
from urllib.parse import unquote

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from manymodels.exceptions import DataError, InvalidRows
from manymodels.keys import decode_key, format_value

PREFIX = "/v1/partitions/"


def path_key(request: Request, decoded: str) -> str:
    """The key segment of ``…/v1/partitions/<key>[/<action>]`` from the raw path, or
    ``decoded`` (the router's already-decoded parameter) when the server gives no raw path."""
    return raw_segment(request, decoded, PREFIX)


def raw_segment(request: Request, decoded: str, prefix: str) -> str:
    """What the client sent for the path parameter ``decoded`` after ``prefix``, still
    percent-encoded: the raw path after ``prefix`` less as many trailing segments as the
    routed path has after ``decoded`` (the route's own, such as ``/versions/2/infer``).
    Segments, not lengths: a decoded character is one where its escape was three, and
    Starlette's ``request.url`` writes ``?`` back as ``%3F`` and drops a tab."""
    raw = request.scope.get("raw_path")
    if not isinstance(raw, bytes | bytearray):
        return decoded
    text = bytes(raw).decode("utf-8", "replace")
    start = text.find(prefix)
    routed = request.scope.get("path", "")
    at = routed.find(prefix)
    if start < 0 or at < 0:
        return decoded
    rest = text[start + len(prefix) :]
    segments = routed[at + len(prefix) + len(decoded) :].count("/")
    return rest.rsplit("/", segments)[0] if segments else rest


_SEPARATORS = (b"%2F", b"%2f", b"%0A", b"%0a")


class EncodedSeparators:
    """Pure ASGI: a request whose raw path holds an encoded ``/`` or newline is routed by
    ``routing_path`` (see the module docstring); every other request passes as it came, at
    the cost of one byte search."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw and b"%" in raw and any(s in raw for s in _SEPARATORS):
            # in place, not a copy: the outer middleware reads the route the router sets in
            # this scope (a copy left every such request "unmatched" in metrics and logs)
            scope["path"] = routing_path(raw)
        await self.app(scope, receive, send)


def routing_path(raw: bytes) -> str:
    """``raw`` decoded segment by segment as the server decodes a path, with a decoded ``/``
    and newline written back as ``%2F`` and ``%0A``: one segment stays one, and matches."""
    return "/".join(
        unquote(part).replace("/", "%2F").replace("\n", "%0A")
        for part in bytes(raw).decode("utf-8", "replace").split("/")
    )


def refuse_other_keys(
    rows: Sequence[Mapping[str, Any]], partition: str, field: str = "rows"
) -> None:
    """``InvalidRows`` naming each row whose key columns name another partition than
    ``partition`` — the canonical key the URL resolved to: the URL's model would answer for
    the row (a global model bound to the URL's key never even reads them), so the client's
    mistake would come back as another partition's prediction, or land in its monitoring.
    Only the columns that key names are compared (a registry may hold specs keyed
    differently), as the batch endpoint reads them (``1`` and ``1.0`` are one value); a key
    that is not ``col=value`` (the fallback's) names none. Rows without key columns, the
    usual body, cost one C-level scan per key column."""
    named = _named(partition)
    if not rows or not any(any(map(contains, rows, repeat(c))) for c, _ in named):
        return
    errors: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        for column, wanted in named:
            if column not in row:
                continue
            try:
                value: str | None = format_value(row[column])
            except DataError:
                value = None
            if value != wanted:
                msg = (
                    f"'{column}' is {_json(row[column])}, but the URL names partition "
                    f"'{partition}': send the row to its own partition's URL, or to /v1/predict"
                )
                loc = ["body", field, i, column]
                errors.append({"loc": loc, "msg": msg, "type": "key_mismatch"})
    if errors:
        raise InvalidRows(errors)


@lru_cache(maxsize=4096)
def _named(partition: str) -> tuple[tuple[str, str], ...]:
    """The ``(column, value)`` pairs ``partition`` names, decoded once per key (none when it
    is not ``col=value``: the fallback's)."""
    try:
        return tuple(decode_key(partition).items())
    except DataError:
        return ()


def _json(value: Any) -> str:
    """A value as the client wrote it (JSON), for messages."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
