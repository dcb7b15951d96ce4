"""A V2 request's tensors as the rows ``POST /v1/partitions/{key}/predict`` takes.

Two input layouts are accepted (``serving.v2_schemas`` says the protocol's objects):

- **columnar** — one tensor per feature, named after it, shape ``[n]`` or ``[n, 1]`` (a model
  that derives features from its history takes its time column and targets too:
  ``RowInputs``);
- **one 2-D tensor** — any other name, shape ``[n, n_features]``, columns in the order of the
  model's metadata ``inputs`` (the order the model was fitted on; ``serving.v2_inputs``).

Tensor data may be flat (row-major), nested as its shape says, or raw bytes after the JSON
header (Triton's binary tensor extension). Elements are checked against the datatype their
tensor declares, as Triton checks them; values are then judged by the feature schema, as
``/v1`` rows are.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from serving.jsonhead import Head
from serving.v2_inputs import RowInputs
from serving.v2_schemas import (
    DATATYPES,
    MAX_DEPTH,
    NUMPY,
    InferenceRequest,
    RequestInput,
    Row,
    TensorError,
)

PLAIN = RowInputs()  # a model whose rows hold its features alone


def split_binary(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON part of a request and the binary tensor data after it."""
    if header_length is None:
        return body, b""
    try:
        n = int(header_length)
    except ValueError:
        raise TensorError("Inference-Header-Content-Length must be an integer") from None
    if not 0 < n <= len(body):
        raise TensorError(
            f"Inference-Header-Content-Length is {n}, but the body has {len(body)} bytes"
        )
    return body[:n], body[n:]


def to_rows(
    request: InferenceRequest,
    features: Sequence[str],
    binary: bytes,
    limit: int,
    inputs: RowInputs = PLAIN,
) -> list[Row]:
    """The rows a request's tensors describe, in the model's feature order (see the module's
    docstring for the two layouts). Values of the datatype each input declares are passed on
    as sent: the feature schema's validation judges them, as it judges ``/v1`` rows.
    ``inputs``: the features a row may leave out and the other columns it may give."""
    accepted = [*features, *inputs.extra]
    tensors = _values(request.inputs, binary, accepted)
    names = [t.name for t in request.inputs]
    if len(set(names)) != len(names):
        raise TensorError(f"input names must be unique, got {names}")
    expected = ", ".join(features)
    beside = [t for t in request.inputs if t.name in inputs.extra]
    others = [t for t in request.inputs if t.name not in accepted]
    lone = len(others) == 1 and len(request.inputs) == 1 + len(beside)
    if lone and (not beside or len(others[0].shape) == 2):  # one 2-D tensor
        return _matrix_rows(others[0], tensors, beside, features, inputs, limit)
    unknown = [n for n in names if n not in accepted]
    missing = [f for f in features if f not in names and f not in inputs.optional]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown input(s) {', '.join(unknown)}")
        if missing:
            parts.append(f"missing input(s) {', '.join(missing)}")
        also = f"; the model also takes {', '.join(inputs.extra)}" if inputs.extra else ""
        if unseen := [f for f in missing if f in inputs.no_series]:  # the time did not do
            also += (
                f"; the model that answers has no series of its own to compute "
                f"{', '.join(unseen)} from (the fallback, which answers a key without a "
                "model, was fitted on every partition's rows): send them"
            )
        raise TensorError(
            f"{' and '.join(parts)}: send one tensor per feature ({expected}) or one 2-D "
            f"tensor{also}"
        )
    lengths = set()
    for t in request.inputs:
        if not (len(t.shape) == 1 or (len(t.shape) == 2 and t.shape[1] == 1)):
            raise TensorError(f"input '{t.name}' must have shape [n] or [n, 1], not {t.shape}")
        lengths.add(t.shape[0])
    if len(lengths) != 1:
        raise TensorError(f"every input must have the same number of rows, got {sorted(lengths)}")
    n = lengths.pop()
    _check_rows(n, limit)
    given = [c for c in accepted if c in tensors]
    columns = [tensors[c] for c in given]
    return [dict(zip(given, values, strict=True)) for values in zip(*columns, strict=True)]


def _matrix_rows(
    t: RequestInput,
    tensors: dict[str, list[Any]],
    beside: Sequence[RequestInput],
    features: Sequence[str],
    inputs: RowInputs,
    limit: int,
) -> list[Row]:
    """The rows of one 2-D tensor: its columns every feature in order, or (a model whose
    history fills its derived features) the others only; with the time column and targets
    beside it as tensors of their own (a differenced model's 2-D request had no place for
    its time)."""
    required = [f for f in features if f not in inputs.optional]
    optional = [f for f in features if f in inputs.optional]  # in the model's order
    widths = sorted({len(features), len(required)})
    if len(t.shape) != 2 or t.shape[1] not in widths:
        shown = " or ".join(f"[n, {w}]" for w in widths)
        raise TensorError(
            f"input '{t.name}' is not a feature, so it must be one 2-D tensor of shape "
            f"{shown} with the columns {', '.join(features)}"
            + (f" (or without {', '.join(optional)})" if len(widths) > 1 else "")
            + f"; its shape is {t.shape}"
        )
    n, width = t.shape
    _check_rows(n, limit)
    columns = list(features) if width == len(features) else required
    values = tensors[t.name]
    if t.datatype != "BYTES" and t.data is not None:
        # as a tensor per feature is checked (INT8 data of 300 was scored as sent); a word in
        # a text feature's column is that feature's, whatever the tensor declares. A BYTES
        # tensor may carry numbers beside words: a model with text features has no other
        # single datatype for its rows, and the feature schema judges each value.
        _check_datatype(
            t,
            [
                None if isinstance(v, str) and columns[i % width] in inputs.text else v
                for i, v in enumerate(values)
            ],
        )
    rows = [dict(zip(columns, values[i * width : (i + 1) * width], strict=True)) for i in range(n)]
    for b in beside:
        if b.shape not in ([n], [n, 1]):
            raise TensorError(f"input '{b.name}' must have shape [{n}] or [{n}, 1], not {b.shape}")
        for row, value in zip(rows, tensors[b.name], strict=True):
            row[b.name] = value
    return rows


def refuse_tall_inputs(head: Head, limit: int) -> None:
    """``TensorError`` for an input that the head of a big body (``jsonhead.scan``) shows
    to hold more rows than ``limit``: by its shape, or by the rows of its data read so far
    (when its shape came first). 3 million values in 9 MB held the event loop 1.2 s (read,
    then validated there) before the same refusal. An input whose data came first and was
    cut short by the head's end takes the first shape after the head (``_shape_after``):
    with its ``"data"`` before its ``"shape"`` the same input went unchecked to the full
    parse."""
    inputs = head.value.get("inputs") if isinstance(head.value, dict) else None
    if not isinstance(inputs, list):
        return
    for i, t in enumerate(inputs):
        shape = t.get("shape") if isinstance(t, dict) else None
        if shape is None and i == len(inputs) - 1 and "inputs" in head.cut:
            shape = _shape_after(head.body, head.cut["inputs"])
        if not (isinstance(shape, list) and shape and isinstance(shape[0], int)):
            continue
        if shape[0] > limit:
            _check_rows(shape[0], limit)
        data, width = t.get("data"), shape[1] if len(shape) == 2 else 1
        if isinstance(data, list) and isinstance(width, int) and width > 0:
            nested = bool(data) and isinstance(data[0], list)
            if (rows := len(data) if nested else len(data) // width) > limit:
                raise TensorError(
                    f"at least {rows} rows is more than the limit of {limit} per request"
                )


# A "shape" key (its quote not escaped: not inside a string) and its list of dimensions.
_SHAPE = re.compile(rb'(?<!\\)"shape"[ \t\n\r]*:[ \t\n\r]*(\[[^\[\]]{0,200}\])')


def _shape_after(body: bytes, start: int) -> Any:
    """The shape the first ``"shape"`` key after ``start`` gives (that of the input whose
    data the head cut short: its data holds no keys), ``None`` without one."""
    found = _SHAPE.search(body, start)
    try:
        return json.loads(found.group(1)) if found else None
    except ValueError:
        return None


def _check_rows(n: int, limit: int) -> None:
    if n < 1:
        raise TensorError("the inputs hold no rows")
    if n > limit:
        raise TensorError(f"{n} rows is more than the limit of {limit} per request")


def _values(
    inputs: Sequence[RequestInput], binary: bytes, features: Sequence[str]
) -> dict[str, list[Any]]:
    """Each input's elements, flat and row-major, checked against its shape and datatype."""
    out: dict[str, list[Any]] = {}
    offset = 0
    for t in inputs:
        if t.datatype not in DATATYPES:
            raise TensorError(
                f"input '{t.name}' has datatype '{t.datatype}'; the protocol's are "
                f"{', '.join(sorted(DATATYPES))}"
            )
        if any(d < 0 for d in t.shape):
            raise TensorError(f"input '{t.name}' has a negative dimension in {t.shape}")
        size = math.prod(t.shape)
        params = t.parameters or {}
        if "binary_data_size" in params:
            length = params["binary_data_size"]
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise TensorError(f"input '{t.name}': binary_data_size must be a count of bytes")
            if t.data is not None:  # the binary extension: one or the other; the JSON was
                # dropped silently, and the client never learnt which values were scored
                raise TensorError(
                    f"input '{t.name}' has both 'data' and binary data (binary_data_size): "
                    "send its values one way only"
                )
            if offset + length > len(binary):
                raise TensorError(f"input '{t.name}': the body ends before its binary data")
            values = _from_bytes(t, binary[offset : offset + length])
            offset += length
        elif t.data is None:
            raise TensorError(f"input '{t.name}' has no data")
        else:
            values = _flat(t)
            if t.name in features:  # one 2-D tensor may mix kinds: the schema judges it
                _check_datatype(t, values)
        if len(values) != size:
            raise TensorError(
                f"input '{t.name}' has {len(values)} element(s), but its shape {t.shape} "
                f"holds {size}"
            )
        out[t.name] = values
    if offset != len(binary):
        raise TensorError(f"{len(binary) - offset} byte(s) of binary data belong to no input")
    return out


def _check_datatype(t: RequestInput, values: list[Any]) -> None:
    """JSON elements of the datatype the input declares, as Triton checks them: ``INT8`` data
    of 300, ``INT64`` of 2.1 or ``BOOL`` data for a number were scored as sent. ``null`` is a
    missing value, as in a ``/v1`` row: the feature schema judges it."""
    kind = t.datatype
    if kind == "BYTES":
        fits: Any = lambda v: type(v) is str  # noqa: E731
    elif kind == "BOOL":
        fits = lambda v: type(v) is bool  # noqa: E731
    elif kind in ("FP16", "FP32", "FP64", "BF16"):
        # within its width: FP32 data of 1e300 was scored as sent, a number no FP32 holds
        # (NaN and the infinities are every width's, and a NaN is a missing value)
        top, inf = float(np.finfo(np.float32 if kind == "BF16" else NUMPY[kind]).max), math.inf
        fits = lambda v: (  # noqa: E731
            (type(v) is int or type(v) is float) and (-top <= v <= top or v != v or abs(v) == inf)
        )
    else:
        info = np.iinfo(NUMPY[kind])
        fits = lambda v: type(v) is int and info.min <= v <= info.max  # noqa: E731
    bad = next((i for i, v in enumerate(values) if v is not None and not fits(v)), None)
    if bad is not None:
        shown = json.dumps(values[bad])
        raise TensorError(f"input '{t.name}' is {kind}, but its element {bad} is {shown}")


def _flat(t: RequestInput) -> list[Any]:
    """``t``'s JSON data, flat and row-major. Nested data is a shape of its own, so it must be
    the declared one (dimensions of 1 aside: ``[[x], [y]]`` is ``[2]`` as well as ``[2, 1]``):
    ragged rows, or a ``[3, 2]`` nesting declared ``[2, 3]``, were flattened and cut into the
    declared rows, and a row's values scored as the next row's."""
    data = t.data or []
    dims: list[int] = []
    level: Any = data
    while isinstance(level, list):
        if len(dims) > MAX_DEPTH:
            raise TensorError(f"input '{t.name}' is nested too deeply")
        dims.append(len(level))
        level = level[0] if level else None
    out: list[Any] = []
    if len(dims) == 1:
        if any(isinstance(v, list) for v in data):
            raise TensorError(_ragged(t))
        return list(data)
    _flatten(data, out, dims, 0, t)
    if [d for d in dims if d != 1] != [d for d in t.shape if d != 1]:
        raise TensorError(
            f"input '{t.name}' has data nested as {dims}, but its shape is {t.shape}: nest it "
            "row-major as its shape says, or send it flat"
        )
    return out


def _flatten(data: list[Any], out: list[Any], dims: list[int], depth: int, t: RequestInput) -> None:
    """Append ``data``'s elements to ``out``, checking that every list at ``depth`` holds
    ``dims[depth]`` items, lists above the last level and values on it."""
    inner = depth + 1 < len(dims)
    if len(data) != dims[depth]:
        raise TensorError(_ragged(t))
    for item in data:
        if isinstance(item, list) is not inner:
            raise TensorError(_ragged(t))
        if inner:
            _flatten(item, out, dims, depth + 1, t)
        else:
            out.append(item)


def _ragged(t: RequestInput) -> str:
    return (
        f"input '{t.name}' has nested data whose lists differ in length or depth: it must be "
        f"an array of shape {t.shape}, nested row-major, or flat"
    )


def _from_bytes(t: RequestInput, raw: bytes) -> list[Any]:
    """Elements of a tensor sent as binary data: little-endian numbers, or ``BYTES`` as
    4-byte little-endian lengths each followed by that many bytes (UTF-8 text for us)."""
    if t.datatype == "BYTES":
        values: list[Any] = []
        i = 0
        while i < len(raw):
            if i + 4 > len(raw):
                raise TensorError(f"input '{t.name}': truncated BYTES element")
            n = int.from_bytes(raw[i : i + 4], "little")
            chunk = raw[i + 4 : i + 4 + n]
            if len(chunk) != n:
                raise TensorError(f"input '{t.name}': truncated BYTES element")
            try:
                values.append(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                raise TensorError(f"input '{t.name}': a BYTES element is not UTF-8") from None
            i += 4 + n
        return values
    if t.datatype == "BF16":
        raise TensorError(f"input '{t.name}': BF16 tensors are not supported")
    dtype = np.dtype(NUMPY[t.datatype]).newbyteorder("<")
    if len(raw) % dtype.itemsize:
        raise TensorError(
            f"input '{t.name}': {len(raw)} bytes is not a whole number of {t.datatype} elements"
        )
    return list(np.frombuffer(raw, dtype=dtype).tolist())
