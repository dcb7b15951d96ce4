"""The partition key in a URL path, exactly as the client encoded it.

The ASGI server percent-decodes ``scope["path"]`` before routing, so a value ``a/b`` sent as
``brand=a%2Fb`` reaches the route as ``brand=a/b`` — indistinguishable from a path separator.
The routes therefore match ``{key:path}`` (so a decoded ``/`` still matches) and then take the
key from ``scope["raw_path"]``, still encoded; ``normalize_key`` decodes each value itself.
"""

from __future__ import annotations

from fastapi import Request

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
