"""The Open Inference Protocol (KServe V2) in and out: its JSON objects, datatypes, errors.

The protocol is KServe's ``docs/predict-api/v2/required_api.md``; its OpenAPI document is
vendored in ``tests/data/`` and every answer here is checked against it in
``tests/serving/test_v2_protocol.py``. A partition's model is one V2 model whose inputs are its
feature columns, so a request is turned into the same rows ``POST /v1/partitions/{key}/predict``
takes (``serving.v2_tensors``) and goes through the same validation (``manymodels.inputs``);
only the envelope differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from manymodels.features import is_numeric

Row = dict[str, Any]

# numpy types of the protocol's datatypes (FP16 and BF16 arrive as JSON numbers, or as bytes)
NUMPY: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
DATATYPES = frozenset({*NUMPY, "BYTES", "BF16"})
MAX_DEPTH = 32  # nested tensor data deeper than any shape we accept is a client's mistake


class TensorError(ValueError):
    """A request whose tensors do not describe the model's rows: answered as a 400."""


Parameters = dict[str, Any]  # the protocol: name → string | number | boolean


class MetadataTensor(BaseModel):
    """``$metadata_tensor``; ``parameters`` (ours, as MLServer's) says what an input is
    when it is not a feature every request gives (``v2_inputs.input_tensors``)."""

    name: str
    datatype: str
    shape: list[int]
    parameters: Parameters | None = None


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelMetadata(BaseModel):
    """``$metadata_model_response``; ``parameters`` (ours) says which model answers."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: Parameters | None = None


class RequestInput(BaseModel):
    name: str
    shape: list[StrictInt] = Field(max_length=8)  # "3" or true is not a dimension
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = None  # absent when the tensor is sent as binary data


class RequestOutput(BaseModel):
    name: str
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class ErrorResponse(BaseModel):
    error: str


# ---------------------------------------------------------------------------- metadata
def feature_datatype(dtype: str) -> str:
    """The V2 datatype of a feature recorded with pandas dtype name ``dtype``."""
    if not is_numeric(dtype):
        return "BYTES"
    if dtype.lower().startswith("bool"):
        return "BOOL"
    if "int" in dtype.lower():
        return "INT64"
    return "FP64"


def value_datatype(values: Sequence[Any]) -> str:
    """The datatype of a list of JSON values (predictions, class labels)."""
    if values and all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and values:
        return "INT64"
    if all((isinstance(v, int | float) and not isinstance(v, bool)) or v is None for v in values):
        return "FP64"
    return "BYTES"


# ---------------------------------------------------------------------------- errors
def row_problem(err: Any) -> str:
    """One problem of ``InvalidRows`` as text: ``row 2, price: feature 'price' must be …``."""
    loc = [x for x in err.get("loc", ()) if x not in ("body", "rows")]
    where = ", ".join(f"row {x}" if isinstance(x, int) else str(x) for x in loc)
    return f"{where}: {err.get('msg', '')}" if where else str(err.get("msg", ""))


# A POST without a body was "invalid inference request: Field required", naming neither the
# body nor its form (``/v1`` says both: ``serving.errors``). Any Content-Type is read as JSON.
WANTED = (
    'send a JSON object {"inputs": [{"name", "shape", "datatype", "data"}, …]}, one tensor '
    "per feature or one [n, features] tensor (the inputs: GET /v2/models/{name})"
)
NO_BODY = f"the request has no body: {WANTED}"


def invalid_request(errors: Sequence[Any]) -> str:
    """FastAPI's or pydantic's validation errors as one line: ``inputs.0.shape: …``."""
    for err in errors:
        if err.get("type") == "missing" and tuple(err.get("loc", ())) == ("body",):
            return NO_BODY
        if err.get("type") == "json_invalid":  # the body is not JSON (or not UTF-8)
            why = (err.get("ctx") or {}).get("error", err.get("msg", ""))
            return f"the request body cannot be read: it is not JSON ({why})"
    parts = []
    for err in errors[:5]:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        parts.append(f"{'.'.join(loc)}: {err.get('msg', '')}" if loc else str(err.get("msg")))
    return "invalid inference request: " + "; ".join(parts)


# ---------------------------------------------------------------------------- outputs
def output(
    name: str, values: list[Any], shape: list[int] | None = None, **params: Any
) -> ResponseOutput:
    return ResponseOutput(
        name=name,
        shape=shape if shape is not None else [len(values)],
        datatype=value_datatype(values),
        parameters=params or None,
        data=values,
    )
