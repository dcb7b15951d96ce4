"""Outputs as Triton's binary tensor extension returns them, when a request asks: the
response is the JSON header (each binary output without ``data``, its byte count in
``parameters.binary_data_size``) followed by the outputs' raw bytes in the header's order,
and ``Inference-Header-Content-Length`` says where the header ends.

A request asks with ``"parameters": {"binary_data_output": true}`` (for every output; what
tritonclient sends when it names none) or ``"binary_data": true`` in an output's own
``parameters`` (which wins for that output). Answers were always JSON: clients that read
outputs only from the binary part (Triton's C++ HTTP client's ``RawData``) found none.
Bytes are little-endian; ``BYTES`` elements are each a 4-byte length then UTF-8 text, as
inputs are read (``v2_tensors._from_bytes``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from fastapi import Response

from serving.v2_schemas import InferenceResponse, RequestOutput, TensorError

HEADER_LENGTH = "Inference-Header-Content-Length"
_NUMPY = {"FP64": "<f8", "INT64": "<i8", "BOOL": "?"}  # the datatypes our outputs have


def binary_outputs(
    parameters: Mapping[str, Any], requested: Sequence[RequestOutput] | None, names: Sequence[str]
) -> set[str]:
    """The outputs among ``names`` a request asks for as binary data."""
    default = parameters.get("binary_data_output", False)
    if not isinstance(default, bool):
        raise TensorError("parameter 'binary_data_output' must be true or false")
    own: dict[str, bool] = {}
    for o in requested or ():
        flag = (o.parameters or {}).get("binary_data")
        if flag is None:
            continue
        if not isinstance(flag, bool):
            raise TensorError(f"output '{o.name}': parameter 'binary_data' must be true or false")
        own[o.name] = flag
    return {name for name in names if own.get(name, default)}


def tensor_bytes(datatype: str, data: Sequence[Any]) -> bytes:
    """``data`` (JSON values, flat) as the extension's raw bytes of ``datatype``."""
    if datatype == "BYTES":
        parts = []
        for v in data:
            raw = ("" if v is None else str(v)).encode("utf-8")
            parts.append(len(raw).to_bytes(4, "little") + raw)
        return b"".join(parts)
    if datatype == "FP64":  # a missing value (null in JSON) is NaN
        data = [math.nan if v is None else v for v in data]
    return np.asarray(data, dtype=_NUMPY[datatype]).tobytes()


def binary_response(response: InferenceResponse, binary: set[str]) -> Response:
    """``response`` with the outputs named in ``binary`` as raw bytes after the header."""
    header = response.model_dump(mode="json", exclude_none=True)  # NaN as null, as in JSON
    chunks = []
    for out in header["outputs"]:
        if out["name"] in binary:
            raw = tensor_bytes(out["datatype"], out.pop("data"))
            out["parameters"] = {**out.get("parameters", {}), "binary_data_size": len(raw)}
            chunks.append(raw)
    head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    return Response(
        head + b"".join(chunks),
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(head))},
    )
