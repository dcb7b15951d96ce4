"""The partition key in a URL path, exactly as the client encoded it.

The ASGI server percent-decodes ``scope["path"]`` before routing, so a value ``a/b`` sent as
``brand=a%2Fb`` reaches the route as ``brand=a/b`` — indistinguishable from a path separator.
The routes therefore match ``{key:path}`` (so a decoded ``/`` still matches) and then take the
key from ``scope["raw_path"]``, still encoded; ``normalize_key`` decodes each value itself.

Routing itself must not split a key either: ``brand=a%2Fexplain`` decoded matched
``…/{key}/explain`` and answered partition ``brand=a``'s explanation, and a value's newline
(``%0A``) matched no route at all (a path parameter's ``.*`` stops at a newline).
``KeyPaths`` routes such a request by a path whose every segment is decoded but for those
two characters.

A trailing ``/`` after an action (``…/{key}/predict/``) went into the key the same way:
``POST …/predict/`` matched ``GET /v1/partitions/{key:path}`` by its path alone (key
``pid=a/predict/``) and was answered 405 ``Allow: GET``; Starlette's redirect of a trailing
slash (the 307 ``/v1/predict/`` gets) only runs when no route matches at all. ``KeyPaths``
routes it as the path without the slash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
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


class KeyPaths:
    """Pure ASGI: a request is routed by the path its key was sent as (see the module
    docstring). One whose raw path holds an encoded ``/`` or newline is routed by
    ``routing_path``; then ``…/{key}/predict/`` (any number of trailing slashes) is routed,
    logged and read by ``raw_segment`` as ``…/{key}/predict``, ``actions`` mapping each keyed
    prefix to the last segments of its routes (``actions_of``). Only after an action: a
    ``/`` ending the key itself may be a value's own, sent unencoded (``pid=c/`` is partition
    ``c/``). Every other request passes as it came, at the cost of a byte search and a
    character test (one layer for both: a second middleware cost every request ~0.3 µs)."""

    def __init__(self, app: ASGIApp, actions: Mapping[str, frozenset[str]]) -> None:
        self.app = app
        self.actions = actions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path")
            if raw and b"%" in raw and any(s in raw for s in _SEPARATORS):
                # in place, not a copy: the outer middleware reads the route the router sets
                # in this scope (a copy left every such request "unmatched" in metrics and logs)
                scope["path"] = routing_path(raw)
            if scope["path"].endswith("/"):  # every "/" left in it is a literal one
                self._drop_action_slash(scope)
        await self.app(scope, receive, send)

    def _drop_action_slash(self, scope: Scope) -> None:
        path = scope["path"].rstrip("/")
        head, _, last = path.rpartition("/")
        for prefix, names in self.actions.items():
            at = head.find(prefix)
            if last in names and at >= 0 and len(head) >= at + len(prefix):
                scope["path"] = path  # in place, as above
                raw = scope.get("raw_path")
                if isinstance(raw, bytes | bytearray):
                    scope["raw_path"] = bytes(raw).rstrip(b"/")
                return


def actions_of(paths: Iterable[str]) -> dict[str, frozenset[str]]:
    """``{"/v1/partitions/": {"predict", …}}``: what ends each route template under a
    ``{key:path}`` (``/v2/models/{key:path}/versions/{version}/infer`` gives ``infer``)."""
    found: dict[str, set[str]] = {}
    for path in paths:
        prefix, key, rest = path.partition("{key:path}/")
        last = rest.rpartition("/")[2]
        if key and last and "{" not in last:
            found.setdefault(prefix, set()).add(last)
    return {prefix: frozenset(names) for prefix, names in found.items()}


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
