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
from routerkit import FEATURES, KEY, expected, feature_rows, matrix, open_client

from serving.settings import Settings


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
    body = json.dumps({"inputs": matrix(rows)}).encode()
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


def test_a_gzip_body_is_read_whole_and_bytes_after_it_are_a_400(
    server: str, registry_path: Path
) -> None:
    """Over real HTTP: only the first gzip member was read and anything after it ignored, so
    a body followed by junk was answered 200 as if whole, and one cut into two members (as
    ``cat a.gz b.gz`` makes: one gzip file, RFC 1952 §2.2) was "not JSON". Now every member
    is read, as Python's ``gzip.decompress`` and Go's ``gzip.Reader`` read them, and bytes
    after the last member (or after a zlib stream) are a 400 naming them."""
    import httpx

    rows = feature_rows(2)
    body = json.dumps({"inputs": matrix(rows)}).encode()
    want = pytest.approx(expected(registry_path, KEY, rows))
    half = len(body) // 2

    def post(content: bytes, encoding: str = "gzip") -> httpx.Response:
        return httpx.post(
            f"{server}/v2/models/{KEY}/infer",
            content=content,
            headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
            timeout=60,
        )

    two = post(gzip.compress(body[:half]) + gzip.compress(body[half:]))
    assert two.status_code == 200, two.text
    assert two.json()["outputs"][0]["data"] == want
    assert gzip.decompress(gzip.compress(body[:half]) + gzip.compress(body[half:])) == body
    # many empty members after it: each read, the body copied once (not once per member)
    many = post(gzip.compress(body) + gzip.compress(b"") * 20_000)
    assert many.status_code == 200, many.text
    # a second member is read, not ignored: JSON after the JSON is no JSON body
    more = post(gzip.compress(body) + gzip.compress(b'{"inputs": []}'))
    assert more.status_code == 400, more.text
    for content, encoding in (
        (gzip.compress(body) + b"junk", "gzip"),
        (gzip.compress(body) + b"\0\0\0\0", "gzip"),
        (zlib.compress(body) + b"junk", "deflate"),
        (zlib.compress(body) + zlib.compress(body), "deflate"),  # a zlib stream is one
    ):
        answer = post(content, encoding)
        assert answer.status_code == 400, (encoding, answer.text)
        said = answer.json()["error"]
        assert said.startswith(f"the request body is not a valid {encoding} stream ("), said
        assert "byte(s) after its end at byte" in said, said


def test_v1_json_bodies_are_inflated_as_v2_s(server: str, registry_path: Path) -> None:
    """Over real HTTP: a gzip or deflate JSON body to a /v1 route was a 422 "it is not UTF-8
    text" (predict, forecast, actuals) or "Invalid JSON" (retrain), the same body a 200 on
    /v2. Now inflated as /v2's, under the same limit; a broken stream is the 422 of a body
    /v1 cannot read, naming what is wrong; an encoding not read a 415."""
    import httpx
    from routerkit import admin

    rows = feature_rows(3)
    bodies = {
        f"/v1/partitions/{KEY}/predict": {"rows": rows},
        "/v1/predict": {"rows": [{"store": 2, "brand": "tropicana", **r} for r in rows]},
    }

    def post(path: str, content: bytes, encoding: str, **headers: str) -> httpx.Response:
        return httpx.post(
            f"{server}{path}", content=content, timeout=60,
            headers={"Content-Type": "application/json", "Content-Encoding": encoding, **headers},
        )  # fmt: skip

    want = pytest.approx(expected(registry_path, KEY, rows))
    for path, body in bodies.items():
        raw = json.dumps(body).encode()
        for content, encoding in ((gzip.compress(raw), "gzip"), (zlib.compress(raw), "deflate")):
            r = post(path, content, encoding)
            assert r.status_code == 200, (path, encoding, r.text)
            got = r.json()["predictions"]
            assert [p if isinstance(p, float) else p["prediction"] for p in got] == want
        broken = post(path, gzip.compress(raw)[:-20], "gzip")
        assert broken.status_code == 422, broken.text  # as /v1 answers a body it cannot read
        (problem,) = broken.json()["detail"]
        assert problem["type"] == "json_invalid" and problem["msg"] == (
            "the request body cannot be read: the request body is not a valid gzip stream "
            "(it is cut short)"
        )
        assert post(path, raw, "br").status_code == 415
    forecast = post(f"/v1/partitions/{KEY}/forecast", gzip.compress(b'{"horizon": 2}'), "gzip")
    assert forecast.status_code == 200, forecast.text
    assert len(forecast.json()["forecast"]) == 2
    retrain = post(
        f"/v1/partitions/{KEY}/retrain", gzip.compress(b'{"rows": []}'), "gzip", **admin()
    )
    assert retrain.status_code == 422, retrain.text  # read as JSON: no rows to train on
    assert retrain.json()["detail"][0]["loc"] == ["body", "rows"], retrain.text
    junk = post(f"/v1/partitions/{KEY}/retrain", gzip.compress(b"{}") + b"junk", "gzip", **admin())
    assert junk.status_code == 422, junk.text
    assert "after its end" in junk.json()["detail"][0]["msg"], junk.text
    form = httpx.post(
        f"{server}/v1/partitions/{KEY}/retrain", timeout=60,
        files={"file": ("rows.csv", gzip.compress(b"price\n1\n"), "text/csv")},
        headers={"Content-Encoding": "gzip", **admin()},
    )  # fmt: skip
    assert form.status_code == 415, form.text  # a form is not inflated: said, not misread
    assert "send the form uncompressed" in form.json()["detail"], form.text
