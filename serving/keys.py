"""The partition key in a URL path, exactly as the client encoded it.

The ASGI server percent-decodes ``scope["path"]`` before routing, so a value ``a/b`` sent as
``brand=a%2Fb`` reaches the route as ``brand=a/b`` — indistinguishable from a path separator.
The routes therefore match ``{key:path}`` (so a decoded ``/`` still matches) and then take the
key from ``scope["raw_path"]``, still encoded; ``normalize_key`` decodes each value itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request

from manymodels.exceptions import DataError, InvalidRows
from manymodels.keys import decode_key, format_value, normalize_key

PREFIX = "/v1/partitions/"


def path_key(request: Request, decoded: str, suffix: str = "") -> str:
    """The key segment of ``…/v1/partitions/<key><suffix>`` from the raw path, or ``decoded``
    (the router's already-decoded parameter) when the server gives no raw path."""
    raw = request.scope.get("raw_path")
    if not isinstance(raw, bytes | bytearray):
        return decoded
    text = bytes(raw).decode("utf-8", "replace")
    start = text.find(PREFIX)
    if start < 0:
        return decoded
    middle = text[start + len(PREFIX) :]
    if suffix:
        if not middle.endswith(suffix):
            return decoded
        middle = middle[: -len(suffix)]
    return middle


def refuse_other_keys(
    rows: Sequence[Mapping[str, Any]], text: str, columns: Sequence[str], field: str = "rows"
) -> None:
    """``InvalidRows`` naming each row whose key columns name another partition than the URL's
    ``text``: the URL's model would answer for it (a global model with the URL's key), so the
    client's mistake would come back as another partition's prediction. Rows without key
    columns — the usual body — cost one C-level check each."""
    if not columns:
        return
    wanted = frozenset(columns)
    if all(map(wanted.isdisjoint, rows)):
        return
    key = normalize_key(text, columns)
    named = decode_key(key)
    errors: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        for column in columns:
            if column not in row:
                continue
            try:
                value: str | None = format_value(row[column])
            except DataError:
                value = None
            if value != named.get(column):
                msg = (
                    f"'{column}' is {row[column]!r}, but the URL names partition '{key}': "
                    "send the row to its own partition's URL, or to /v1/predict"
                )
                loc = ["body", field, i, column]
                errors.append({"loc": loc, "msg": msg, "type": "key_mismatch"})
    if errors:
        raise InvalidRows(errors)
