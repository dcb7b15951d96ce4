"""V2 request bodies compressed as tritonclient compresses them (``request_compression_algorithm``
``"gzip"`` or ``"deflate"``): they were read as they came and refused as "not JSON" (400).
Inflating one is bounded by the body limit, as an uncompressed body is."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from routerkit import KEY, expected, feature_rows, open_client

from serving.settings import Settings

FEATURES = ["price", "deal", "feat"]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_s_compressed_requests_are_answered(
    server: str, registry_path: Path, binary: bool
) -> None:
    import tritonclient.http as triton

    rows = feature_rows(4)
    X = np.array([[r[f] for f in FEATURES] for r in rows], dtype=np.float64)
    client = triton.InferenceServerClient(server.removeprefix("http://"))
    try:
        tensor = triton.InferInput("X", list(X.shape), "FP64")
        tensor.set_data_from_numpy(X, binary_data=binary)
        for algorithm in ("gzip", "deflate"):
            result = client.infer(KEY, [tensor], request_compression_algorithm=algorithm)
            assert result.as_numpy("predict").tolist() == pytest.approx(
                expected(registry_path, KEY, rows)
            )
    finally:
        client.close()


def test_a_compressed_body_is_held_to_the_body_limit_and_to_its_encoding(
    registry_path: Path,
) -> None:
    rows = feature_rows(2)
    body = json.dumps(
        {
            "inputs": [
                {"name": "X", "datatype": "FP64", "shape": [2, 3],
                 "data": [float(r[f]) for r in rows for f in FEATURES]}
            ]
        }
    ).encode()  # fmt: skip
    url = f"/v2/models/{KEY}/infer"
    with open_client(Settings(registry=registry_path, max_body_bytes=10_000)) as client:

        def post(content: bytes, encoding: str) -> Any:
            return client.post(url, content=content, headers={"Content-Encoding": encoding})

        ok = post(gzip.compress(body), "gzip")
        assert ok.status_code == 200, ok.text
        assert ok.json()["outputs"][0]["data"] == pytest.approx(expected(registry_path, KEY, rows))
        assert post(zlib.compress(body), "Deflate").status_code == 200
        # 5 MB of spaces after the JSON compress to ~5 KB, within the limit: inflated only
        # one byte past it
        packed = gzip.compress(body + b" " * 5_000_000)
        assert len(packed) < 10_000
        bomb = post(packed, "gzip")
        assert bomb.status_code == 413 and "limit of 10000 bytes" in bomb.json()["error"]
        other = post(body, "br")
        assert other.status_code == 415 and "'br' is not supported" in other.json()["error"]
        for broken in (b"not gzip at all", gzip.compress(body)[:-20]):
            answer = post(broken, "gzip")
            assert answer.status_code == 400, answer.text
            assert "not a valid gzip stream" in answer.json()["error"]
