"""Outputs as raw bytes when a V2 request asks for them (Triton's binary tensor extension,
which ``GET /v2`` lists): answers were always JSON, so a client that reads outputs only from
the binary part found none. Checked with tritonclient's own parsing and byte by byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from routerkit import KEY, feature_rows, matrix, open_client

from serving.local import running_server
from serving.settings import Settings
from serving.v2_binary import tensor_bytes


def test_an_output_asked_as_binary_data_comes_as_bytes_after_the_header(
    registry_path: Path,
) -> None:
    rows = feature_rows(3)
    url = f"/v2/models/{KEY}/infer"
    with open_client(Settings(registry=registry_path)) as client:
        plain = client.post(url, json={"inputs": matrix(rows)}).json()
        asked = {"inputs": matrix(rows), "outputs": [
            {"name": "predict", "parameters": {"binary_data": True}}]}  # fmt: skip
        r = client.post(url, json=asked)
        every = client.post(
            url, json={"inputs": matrix(rows), "parameters": {"binary_data_output": True}}
        )
        own_wins = client.post(url, json={
            "inputs": matrix(rows), "parameters": {"binary_data_output": True},
            "outputs": [{"name": "predict", "parameters": {"binary_data": False}}]})  # fmt: skip
        bad = client.post(
            url, json={"inputs": matrix(rows), "parameters": {"binary_data_output": "yes"}}
        )
    assert r.status_code == 200, r.text
    length = int(r.headers["inference-header-content-length"])
    header, raw = json.loads(r.content[:length]), r.content[length:]
    (out,) = header["outputs"]
    assert "data" not in out and out["parameters"]["binary_data_size"] == 3 * 8 == len(raw)
    assert np.frombuffer(raw, "<f8").tolist() == plain["outputs"][0]["data"]
    assert header["model_name"] == plain["model_name"] and out["shape"] == [3]
    assert every.headers["inference-header-content-length"] == str(length)
    assert every.content == r.content  # a regressor's one output, asked for either way
    assert own_wins.json() == plain and "inference-header-content-length" not in own_wins.headers
    assert bad.status_code == 400 and "binary_data_output" in bad.json()["error"]


def test_tritonclient_reads_a_classifier_s_binary_outputs(trained_classifier: Path) -> None:
    """tritonclient asks for every output as binary data when it names none."""
    import httpx
    import tritonclient.http as triton

    names = ["temperature", "vibration", "pressure", "rpm", "hours_since_service"]
    X = np.array([[70.0 + i, 0.5, 30.0, 1500.0, 100.0 * i] for i in range(4)])
    with running_server(Settings(registry=trained_classifier)) as url:
        key = httpx.get(f"{url}/v1/partitions").json()["partitions"][-1]["partition"]
        plain = httpx.post(f"{url}/v2/models/{key}/infer", json={"inputs": [
            {"name": n, "datatype": "FP64", "shape": [4], "data": X[:, j].tolist()}
            for j, n in enumerate(names)]}).json()  # fmt: skip
        client = triton.InferenceServerClient(url.removeprefix("http://"))
        try:
            tensors = []
            for j, n in enumerate(names):
                t = triton.InferInput(n, [4, 1], "FP64")
                t.set_data_from_numpy(X[:, j : j + 1].copy())
                tensors.append(t)
            result = client.infer(key, tensors)
        finally:
            client.close()
    want = {o["name"]: o for o in plain["outputs"]}
    got = {o["name"]: o for o in result.get_response()["outputs"]}
    assert set(got) == set(want) == {"predict", "predict_proba"}
    assert all("binary_data_size" in o["parameters"] for o in got.values())
    assert result.as_numpy("predict").tolist() == want["predict"]["data"]
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (4, 2) and proba.ravel().tolist() == want["predict_proba"]["data"]
    assert got["predict_proba"]["parameters"]["classes"] == "[0, 1]"


@pytest.mark.parametrize(
    ("datatype", "values"),
    [("BYTES", ["ok", "fail", "ünïcode", None]), ("BOOL", [True, False]), ("INT64", [3, -1]),
     ("FP64", [1.5, None])],
)  # fmt: skip
def test_each_output_datatype_is_encoded_as_tritonclient_decodes_it(
    datatype: str, values: list[Any]
) -> None:
    from tritonclient.utils import deserialize_bytes_tensor, triton_to_np_dtype

    raw = tensor_bytes(datatype, values)
    if datatype == "BYTES":
        got = [b.decode() for b in deserialize_bytes_tensor(raw)]
        assert got == ["" if v is None else v for v in values]
    else:
        got = np.frombuffer(raw, dtype=triton_to_np_dtype(datatype)).tolist()
        if datatype == "FP64":
            assert got[0] == 1.5 and np.isnan(got[1])  # a missing value (null) is NaN
        else:
            assert got == values
