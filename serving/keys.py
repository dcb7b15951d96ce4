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
``pid=a/predict/``) and was answered 405 ``Allow: GET``; ``GET /v1/partitions/`` was a 404 for
partition ``''``, not the list. Starlette's redirect of a trailing slash only ran where no
route matched at all, and then as a 307 (``POST /v1/predict/``), which curl and httpx do
not follow unless asked to. ``KeyPaths`` routes a path ending in ``/`` as the path without it
wherever that is a route's, and the app redirects nothing: every route answers the same with
or without a trailing slash, but for a key's own, which a value may end with (``pid=c/``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import repeat
from operator import contains
from typing import Any
from urllib.parse import unquote

from fastapi import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from manymodels.exceptions import DataError, InvalidRows
from manymodels.keys import decode_key, encode_key, format_value
from manymodels.value_spellings import same_value

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
    ``routing_path``; then a path ending in ``/`` (any number of them) that is no route's is
    routed, logged and read by ``raw_segment`` as the path without them where that is a
    route's (``…/{key}/predict/``, ``/v1/predict/``, ``/v1/partitions/``), ``paths`` being the
    app's route templates. Not where only a route ending in a key matches it: a ``/`` ending
    the key may be a value's own, sent unencoded (``pid=c/`` is partition ``c/``). A path
    that is a route's only with a ``/`` added (``/v2/models``, the empty model name) is routed
    with it, as Starlette's redirect would have sent it. Every other request passes as it
    came, at the cost of a byte search, a character test and a set lookup (one layer for all:
    a second middleware cost every request ~0.3 µs)."""

    def __init__(self, app: ASGIApp, paths: Iterable[str]) -> None:
        self.app = app
        templates = set(paths)
        self.routes = [compile_path(p)[0] for p in templates if not p.endswith(":path}")]
        heads = [p.rpartition("/")[0] for p in templates if p.endswith(":path}")]
        self.needs_slash = frozenset(  # "/v2/models", of "/v2/models/{key:path}"
            head for head in heads if "{" not in head and head not in templates
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path")
            if raw and b"%" in raw and any(s in raw for s in _SEPARATORS):
                # in place, not a copy: the outer middleware reads the route the router sets
                # in this scope (a copy left every such request "unmatched" in metrics and logs)
                scope["path"] = routing_path(raw)
            path = scope["path"]
            if path.endswith("/"):  # every "/" left in it is a literal one
                self._drop_slash(scope, path)
            elif path in self.needs_slash:
                _route_as(scope, path + "/")
        await self.app(scope, receive, send)

    def _drop_slash(self, scope: Scope, path: str) -> None:
        without = path.rstrip("/")
        if without and not _matches(self.routes, path) and _matches(self.routes, without):
            _route_as(scope, without)


def _matches(routes: Sequence[re.Pattern[str]], path: str) -> bool:
    return any(route.match(path) for route in routes)


def _route_as(scope: Scope, path: str) -> None:
    """Route the request as ``path``: its last ``/``s dropped or one added, in ``raw_path``
    too, in place (the outer middleware reads the route the router sets in this scope)."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).rstrip(b"/")
        scope["raw_path"] = raw + b"/" if path.endswith("/") else raw
    scope["path"] = path


def routing_path(raw: bytes) -> str:
    """``raw`` decoded segment by segment as the server decodes a path, with a decoded ``/``
    and newline written back as ``%2F`` and ``%0A``: one segment stays one, and matches."""
    return "/".join(
        unquote(part).replace("/", "%2F").replace("\n", "%0A")
        for part in bytes(raw).decode("utf-8", "replace").split("/")
    )


def refuse_other_keys(
    rows: Sequence[Mapping[str, Any]],
    partition: str,
    present: Callable[[str], bool],
    field: str = "rows",
) -> None:
    """``InvalidRows`` naming each row whose key columns name another partition than
    ``partition`` — the canonical key the URL resolved to: the URL's model would answer for
    the row (a global model bound to the URL's key never even reads them), so the client's
    mistake would come back as another partition's prediction, or land in its monitoring.
    Only the columns that key names are compared (a registry may hold specs keyed
    differently), as the batch endpoint reads them (``1`` and ``1.0`` are one value, and so are
    ``2024-01-05 10:30`` and ``2024-01-05T10:30:00``, ``True`` and ``true``) unless the row
    as written names a partition ``present`` holds (a text column of ``1`` and ``true``:
    the row's ``1`` is its own partition's); a key that is not ``col=value`` (the
    fallback's) names none. Rows without key columns, the
    usual body, cost one C-level scan per key column."""
    named = named_pairs(partition)
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
            if value is None or not names_partition(value, wanted, column, named, present):
                msg = (
                    f"'{column}' is {_json(row[column])}, but the URL names partition "
                    f"'{partition}': send the row to its own partition's URL, or to /v1/predict"
                )
                loc = ["body", field, i, column]
                errors.append({"loc": loc, "msg": msg, "type": "key_mismatch"})
    if errors:
        raise InvalidRows(errors)


def names_partition(
    value: str,
    wanted: str,
    column: str,
    named: tuple[tuple[str, str], ...],
    present: Callable[[str], bool],
) -> bool:
    """Whether a row's ``value`` of ``column`` names the URL's partition (``named``): the
    same text, or a spelling of it when the row's own key, as written, is no partition —
    asked only on a respelt value, never on the usual equal one."""
    if value == wanted:
        return True
    if not same_value(value, wanted):
        return False
    own = [value if c == column else v for c, v in named]
    return not present(encode_key(own, [c for c, _ in named]))


@lru_cache(maxsize=4096)
def named_pairs(partition: str) -> tuple[tuple[str, str], ...]:
    """The ``(column, value)`` pairs ``partition`` names, decoded once per key (none when it
    is not ``col=value``: the fallback's): what ``names_partition`` compares a row's values
    to, for a predict's rows (``refuse_other_keys``) and a retrain's (``retrain_rows``)."""
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
