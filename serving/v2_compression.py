"""Request bodies compressed as tritonclient compresses them (``request_compression_algorithm=
"gzip"`` or ``"deflate"``, Triton's HTTP option): ``Content-Encoding: gzip`` is a gzip stream,
``deflate`` a zlib one, of the whole body (the JSON header and any binary tensors after it;
``Inference-Header-Content-Length`` counts the JSON header uncompressed). Such a request was
read as it came and refused as "not JSON".

The body limit (``max_body_bytes``) holds for the bytes inflated too: a small compressed body
can stand for a huge one, so inflating stops one byte past the limit (a 413), never holding
more.
"""

from __future__ import annotations

import zlib

from fastapi import HTTPException

from serving.v2_schemas import TensorError

_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def inflated(body: bytes, encoding: str | None, limit: int) -> bytes:
    """``body`` as sent before its ``Content-Encoding`` (``identity``, ``gzip`` or
    ``deflate``); 413 past ``limit`` bytes, 415 for another encoding, 400 for a stream that
    is not what its encoding says."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return body
    if name not in _WBITS:
        raise HTTPException(
            415, f"Content-Encoding '{encoding}' is not supported: send gzip, deflate or none"
        )
    stream = zlib.decompressobj(_WBITS[name])
    try:
        data = stream.decompress(body, limit + 1)
        complete = stream.eof
    except zlib.error as e:
        raise TensorError(f"the request body is not a valid {name} stream ({e})") from None
    if len(data) > limit:
        raise HTTPException(413, f"request body is larger than the limit of {limit} bytes")
    if not complete:
        raise TensorError(f"the request body is not a valid {name} stream (it is cut short)")
    return data
