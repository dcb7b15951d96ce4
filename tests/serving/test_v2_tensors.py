"""V2 inputs as ``serving.v2_tensors`` reads them, over real HTTP (uvicorn): the binary
tensor extension's raw bytes after the JSON header (``Inference-Header-Content-Length``)."""

from __future__ import annotations

import json

import httpx
import numpy as np
from routerkit import KEY, feature_rows


def _binary_request(tensor: dict[str, object], raw: bytes) -> tuple[bytes, dict[str, str]]:
    """A body of the binary extension: the JSON header, then the tensor's bytes."""
    header = json.dumps({"inputs": [tensor]}).encode()
    return header + raw, {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }


def test_an_input_with_both_data_and_binary_data_is_a_400_naming_it(server: str) -> None:
    """The extension says an input sent as binary data has no ``data``: one carrying both was
    scored from the bytes alone, its JSON values dropped without a word. Now a 400 naming the
    input; the same bytes without ``data`` are scored as before."""
    rows = feature_rows(2)
    X = np.array([[r["price"], r["deal"], r["feat"]] for r in rows], dtype="<f8")
    raw = X.tobytes()
    tensor = {"name": "X", "datatype": "FP64", "shape": [2, 3],
              "parameters": {"binary_data_size": len(raw)}}  # fmt: skip
    url = f"{server}/v2/models/{KEY}/infer"
    body, headers = _binary_request(tensor, raw)
    alone = httpx.post(url, content=body, headers=headers)
    assert alone.status_code == 200, alone.text
    other = (X + 100.0).ravel().tolist()  # values that would answer differently
    body, headers = _binary_request({**tensor, "data": other}, raw)
    both = httpx.post(url, content=body, headers=headers)
    assert both.status_code == 400, both.text
    said = both.json()["error"]
    assert "'X'" in said and "data" in said and "binary" in said, said
