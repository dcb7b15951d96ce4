"""Request bodies compressed as tritonclient compresses them (``request_compression_algorithm=
"gzip"`` or ``"deflate"``, Triton's HTTP option): ``Content-Encoding: gzip`` is a gzip stream,
``deflate`` a zlib one, of the whole body (the JSON header and any binary tensors after it;
``Inference-Header-Content-Length`` counts the JSON header uncompressed). Such a request was
read as it came and refused as "not JSON".

The body limit (``max_body_bytes``) holds for the bytes inflated too: a small compressed body
can stand for a huge one, so inflating stops one byte past the limit (a 413), never holding
more.

A gzip body is a series of members (RFC 1952 §2.2: ``cat a.gz b.gz`` is one gzip file), read
whole as Python's ``gzip.decompress`` and Go's ``gzip.Reader`` read them; bytes after the last
member (or after a zlib stream, which is one) are a 400, as they are to both of those (Go:
"invalid header"). Only the first member was read and anything after it ignored: a body cut
in two members was answered "not JSON", one followed by junk was answered as if whole.
"""

from __future__ import annotations

import zlib

from fastapi import HTTPException

from serving.v2_schemas import TensorError

_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_GZIP_MAGIC = b"\x1f\x8b"
_PIECE = 64 * 1024


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
    try:
        return _members(memoryview(body), name, limit)
    except zlib.error as e:
        raise TensorError(f"the request body is not a valid {name} stream ({e})") from None


def _members(body: memoryview, name: str, limit: int) -> bytes:
    """The inflated members of ``body``, fed ``_PIECE`` bytes at a time: zlib copies the input
    left after a member's end (``unused_data``), which for a body of many small members read
    whole would copy the body once per member."""
    out: list[bytes] = []
    size = 0
    pos = 0  # the first byte of body not yet inflated
    while True:
        stream = zlib.decompressobj(_WBITS[name])
        while not stream.eof:
            if pos >= len(body):
                raise TensorError(
                    f"the request body is not a valid {name} stream (it is cut short)"
                )
            piece = body[pos : pos + _PIECE]
            pos += len(piece)
            data = stream.decompress(piece, limit + 1 - size)  # stops only one byte past limit
            out.append(data)
            size += len(data)
            if size > limit:
                raise HTTPException(413, f"request body is larger than the limit of {limit} bytes")
        pos -= len(stream.unused_data)  # read past the member's end: the next one's bytes
        if pos == len(body):
            return b"".join(out)
        if name != "gzip" or body[pos : pos + 2] != _GZIP_MAGIC:
            raise TensorError(
                f"the request body is not a valid {name} stream ({len(body) - pos} byte(s) "
                f"after its end at byte {pos}{', not a gzip member' if name == 'gzip' else ''})"
            )
