"""The Open Inference Protocol (KServe V2) routes, checked against the protocol's own OpenAPI
document (vendored in tests/data/, see its header) and used by a real V2 client, tritonclient's
HTTP client, against the router under uvicorn.

Answers must equal what ``/v1`` answers for the same rows: the two APIs share resolution, the
model cache, validation and the fallback; only the envelope differs. Tests that only read
share one router per module (``reader``, ``reading_server``: conftest).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
import numpy as np
import pytest
import yaml
from routerkit import (
    FEATURES,
    KEY,
    SLASH_KEY,
    TWO_VERSIONS,
    expected,
    feature_rows,
    matrix,
    open_client,
)

from serving.local import running_server
from serving.settings import Settings
from serving.v2_inputs import RowInputs

DOCUMENT = yaml.safe_load(
    (Path(__file__).parents[1] / "data" / "kserve_rest_predict_v2.yaml").read_text()
)


def conforms(body: Any, schema: str) -> None:
    """``body`` is valid against ``components/schemas/<schema>`` of the protocol's document."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": DOCUMENT["components"]}
    jsonschema.Draft202012Validator(root).validate(body)


def columnar(rows: list[dict[str, Any]], *, column: bool = False) -> list[dict[str, Any]]:
    """One tensor per feature, shape [n] (or [n, 1] with ``column``)."""
    n = len(rows)
    return [
        {
            "name": f,
            "datatype": "FP64" if f == "price" else "INT64",
            "shape": [n, 1] if column else [n],
            "data": [r[f] for r in rows],
        }
        for f in FEATURES
    ]


def infer(client: Any, key: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    r = client.post(f"/v2/models/{key}/infer", json=body)
    assert r.status_code == status, r.text
    answer: dict[str, Any] = r.json()
    conforms(answer, "inference_response" if status == 200 else "inference_error_response")
    return answer


def test_health_and_server_metadata(reader: Any) -> None:
    """The status answers (Triton's clients read it); the body too, as the Open Inference
    Protocol's health objects (KServe's client read an empty body as a JSON error)."""
    answers = {
        "/v2/health/live": {"live": True},
        "/v2/health/ready": {"ready": True},
        f"/v2/models/{KEY}/ready": {"name": KEY, "ready": True},
    }
    for path, body in answers.items():
        r = reader.get(path)
        assert (r.status_code, r.json()) == (200, body), path
    missing = reader.get(f"/v2/models/{KEY}/versions/7/ready")
    assert (missing.status_code, missing.json()) == (400, {"name": KEY, "ready": False})
    for path in ("/v2", "/v2/"):
        r = reader.get(path)
        assert r.status_code == 200
        conforms(r.json(), "metadata_server_response")
        assert r.json()["name"] == "manymodels"
        assert r.json()["extensions"] == ["binary_tensor_data"]  # read, as tritonclient sends


def test_paths_no_v2_route_matches_answer_the_protocols_error(reader: Any) -> None:
    """tritonclient reads ``{"error"}``: a 404 or 405 of FastAPI's under /v2 was
    ``{"detail"}``, and the client failed on the missing key instead of saying why."""
    for method, path, status in [
        ("POST", f"/v2/models/{KEY}", 405),
        ("POST", f"/v2/models/{KEY}/ready", 405),
        ("POST", "/v2", 405),
        ("GET", "/v2/repository/index", 404),
    ]:
        r = reader.request(method, path)
        assert r.status_code == status and set(r.json()) == {"error"}, (method, path, r.text)
    assert set(reader.post(f"/v1/partitions/{KEY}").json()) == {"detail"}  # /v1 as before


def test_an_empty_model_name_is_refused_not_answered_by_the_fallback(reader: Any) -> None:
    """``GET /v2/models/`` answered 200 with the fallback's metadata under ``"name": ""``, and
    an infer of no name was scored by the fallback: no model is named "", so none answers."""
    rows = feature_rows(2)
    for method, path, body in [
        ("GET", "/v2/models/", None),
        ("GET", "/v2/models//ready", None),
        ("POST", "/v2/models//infer", {"inputs": columnar(rows)}),
        ("POST", "/v2/models//versions/1/infer", {"inputs": columnar(rows)}),
    ]:
        r = reader.request(method, path, json=body)
        assert r.status_code == 400, (method, path, r.text)
        if not path.endswith("/ready"):
            assert "no model name" in r.json()["error"], (method, path, r.text)


def test_model_metadata_describes_the_partition_model(reader: Any) -> None:
    r = reader.get(f"/v2/models/{KEY}")
    assert r.status_code == 200, r.text
    meta = r.json()
    conforms(meta, "metadata_model_response")
    assert meta["name"] == KEY and meta["versions"] == ["1"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("price", "FP64", [-1]),
        ("deal", "INT64", [-1]),
        ("feat", "INT64", [-1]),
    ]
    assert [t["name"] for t in meta["outputs"]] == ["predict"]
    assert not any("parameters" in t for t in meta["inputs"] + meta["outputs"])  # all features
    two = reader.get(f"/v2/models/{TWO_VERSIONS[0]}").json()
    assert two["versions"] == ["1", "2"] and two["parameters"]["version"] == 1
    assert (
        reader.get(f"/v2/models/{TWO_VERSIONS[0]}/versions/2").json()["parameters"]["version"] == 2
    )
    unknown = reader.get("/v2/models/store=99,brand=tropicana").json()
    assert unknown["parameters"] == {
        "served_by": "__fallback__", "version": 1, "fallback": True, "target": "units"
    }  # fmt: skip
    r = reader.get("/v2/models/store=99,brand=tropicana?fallback=false")
    assert r.status_code == 404
    conforms(r.json(), "metadata_model_error_response")
    r = reader.get("/v2/models/store=99,brand=tropicana?fallback=false&fallback=true")
    assert r.status_code == 400 and "'fallback' is given 2 times" in r.text, r.text
    conforms(r.json(), "metadata_model_error_response")


@pytest.mark.parametrize("layout", ["columnar", "column", "matrix", "nested"])
def test_infer_answers_as_v1(reader: Any, shared_registry: Path, layout: str) -> None:
    rows = feature_rows(5)
    inputs = {
        "columnar": columnar(rows),
        "column": columnar(rows, column=True),
        "matrix": matrix(rows),
        "nested": matrix(rows, nested=True),
    }[layout]
    answer = infer(reader, KEY, {"id": "req-1", "inputs": inputs})
    v1 = reader.post(f"/v1/partitions/{KEY}/predict", json={"rows": rows}).json()
    assert answer["id"] == "req-1" and answer["model_name"] == KEY
    assert answer["model_version"] == "1"
    assert answer["parameters"] == {"served_by": KEY, "fallback": False, "target": "units"}
    assert v1["target"] == "units"  # the column both answers predict
    [out] = answer["outputs"]
    assert (out["name"], out["datatype"], out["shape"]) == ("predict", "FP64", [5])
    assert out["data"] == v1["predictions"] == pytest.approx(expected(shared_registry, KEY, rows))


def test_a_models_v2_inputs_are_built_once_and_kept_with_it(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a V2 request may hold beyond one tensor per feature (``RowInputs``, a set of the
    text features included) was built again for every request; it depends on the model
    alone, so it is built on the model's first V2 request and kept with the cached model,
    one object for equal ones. A model never asked over V2 carries none."""
    built: list[Any] = []
    of = RowInputs.of.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(RowInputs, "of", classmethod(lambda c, s: built.append(s) or of(c, s)))
    service = client.app.state.service
    other = "store=3,brand=tropicana"
    assert client.post(f"/v1/partitions/{other}/predict", json={"rows": feature_rows(1)}).is_success
    first = infer(client, KEY, {"inputs": columnar(feature_rows(2))})
    again = infer(client, KEY, {"inputs": matrix(feature_rows(2))})
    assert first["outputs"] == again["outputs"]
    assert client.get(f"/v2/models/{KEY}").status_code == 200
    assert len(built) == 1
    held = service.cache.held(KEY, 1)
    assert held is not None and held.v2_inputs == RowInputs()  # a model without history's
    assert service.cache.held(other, 1).v2_inputs is None  # asked over /v1 only
    infer(client, other, {"inputs": columnar(feature_rows(1))})
    assert len(built) == 2 and service.cache.held(other, 1).v2_inputs is held.v2_inputs


def test_a_threshold_for_a_regressor_is_refused_as_on_v1(reader: Any) -> None:
    """It was ignored (200) where /v1 answers 422 "not a classifier"."""
    rows = feature_rows(2)
    body = {"inputs": columnar(rows), "parameters": {"threshold": 0.5}}
    r = reader.post(f"/v2/models/{KEY}/infer", json=body)
    assert r.status_code == 400 and "is not a classifier" in r.json()["error"], r.text
    v1 = reader.post(f"/v1/partitions/{KEY}/predict?threshold=0.5", json={"rows": rows})
    assert v1.status_code == 422 and "is not a classifier" in v1.text


def test_null_elements_and_a_2d_tensor_are_judged_by_the_feature_schema(reader: Any) -> None:
    """A null is a missing value, as in a /v1 row (the model's schema and estimator judge
    it), and one 2-D tensor may hold features of several kinds: neither is a datatype error."""
    rows = feature_rows(2)
    body = {"inputs": [{**t, "data": [None, t["data"][1]]} if t["name"] == "price" else t
                       for t in columnar(rows)]}  # fmt: skip
    r = reader.post(f"/v2/models/{KEY}/infer", json=body)
    assert "is FP64, but" not in r.text  # Ridge refuses the NaN: a 400 of the model's own
    v1 = reader.post(f"/v1/partitions/{KEY}/predict", json={"rows": [{**rows[0], "price": None}]})
    assert (r.status_code, v1.status_code) == (400, 422)
    for missing in (float("nan"), float("inf")):  # every float width holds them, FP32 too
        body = {"inputs": [{**t, "datatype": "FP32", "data": [missing, t["data"][1]]}
                           if t["name"] == "price" else t for t in columnar(rows)]}  # fmt: skip
        sent = json.dumps(body)  # NaN and Infinity as Python's json writes them
        r = reader.post(f"/v2/models/{KEY}/infer", content=sent,
                        headers={"content-type": "application/json"})  # fmt: skip
        assert r.status_code == 400 and "is FP32, but" not in r.text, r.text
    mixed = {
        "inputs": [
            {"name": "X", "datatype": "FP64", "shape": [2, 3], "data": matrix(rows)[0]["data"]}
        ]
    }
    assert reader.post(f"/v2/models/{KEY}/infer", json=mixed).status_code == 200


def test_keys_versions_and_fallback(reader: Any, shared_registry: Path) -> None:
    rows = feature_rows(3)
    # a key with a '/' in a value: canonical in the path, or encoded whole as clients do
    for spelled in (SLASH_KEY, quote(SLASH_KEY, safe="")):
        answer = infer(reader, spelled, {"inputs": columnar(rows)})
        assert answer["model_name"] == SLASH_KEY
    key = TWO_VERSIONS[0]
    v2 = reader.post(f"/v2/models/{key}/versions/2/infer", json={"inputs": columnar(rows)})
    assert v2.status_code == 200, v2.text
    conforms(v2.json(), "inference_response")
    assert v2.json()["model_version"] == "2"
    assert v2.json()["outputs"][0]["data"] == pytest.approx(
        expected(shared_registry, key, rows, version=2)
    )
    unknown = infer(reader, "store=99,brand=tropicana", {"inputs": columnar(rows)})
    assert unknown["parameters"] == {"served_by": "__fallback__", "fallback": True,
                                     "target": "units"}  # fmt: skip
    refused = {"inputs": columnar(rows), "parameters": {"fallback": False}}
    assert "fallback" in infer(reader, "store=99,brand=tropicana", refused, 404)["error"]
    r = reader.post(f"/v2/models/{key}/versions/9/infer", json={"inputs": columnar(rows)})
    assert r.status_code == 404
    conforms(r.json(), "inference_error_response")


BAD: list[tuple[str, Any, str]] = [
    ("not an object", [1, 2], "the request body is a list, not a JSON object: send a JSON object"),
    ("no inputs", {"inputs": []}, "inputs"),
    ("unknown input", {"inputs": [*columnar(feature_rows(2)), {
        "name": "colour", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}]},
     "unknown input(s) colour"),
    ("missing input", {"inputs": columnar(feature_rows(2))[:2]}, "missing input(s) feat"),
    ("bad shape", {"inputs": [{**t, "shape": [1, 2]} for t in columnar(feature_rows(2))]},
     "shape [n] or [n, 1]"),
    ("wrong size", {"inputs": [{**t, "shape": [3]} for t in columnar(feature_rows(2))]},
     "has 2 element(s)"),
    ("text for a number", {"inputs": [{**t, "data": ["abc", 1.0]} if t["name"] == "price" else t
                                      for t in columnar(feature_rows(2))]},
     "input 'price' is FP64, but its element 0 is \"abc\""),
    ("out of the datatype's range", {"inputs": [
        {**t, "datatype": "INT8", "data": [1, 300]} if t["name"] == "deal" else t
        for t in columnar(feature_rows(2))]}, "input 'deal' is INT8, but its element 1 is 300"),
    ("past FP32's range", {"inputs": [
        {**t, "datatype": "FP32", "data": [2.0, 1e300]} if t["name"] == "price" else t
        for t in columnar(feature_rows(2))]}, "input 'price' is FP32, but its element 1 is 1e+300"),
    ("a fraction for an integer", {"inputs": [{**t, "data": [2.1, 1]} if t["name"] == "deal"
                                              else t for t in columnar(feature_rows(2))]},
     "input 'deal' is INT64, but its element 0 is 2.1"),
    ("booleans for an integer", {"inputs": [{**t, "data": [True, False]} if t["name"] == "deal"
                                            else t for t in columnar(feature_rows(2))]},
     "input 'deal' is INT64, but its element 0 is true"),
    ("a shape of text", {"inputs": [{**t, "shape": ["2"]} for t in columnar(feature_rows(2))]},
     "shape"),
    ("bad datatype", {"inputs": [{**t, "datatype": "FLOAT"} for t in columnar(feature_rows(2))]},
     "datatype 'FLOAT'"),
    ("matrix width", {"inputs": [{"name": "X", "datatype": "FP64", "shape": [1, 2],
                                  "data": [1.0, 2.0]}]}, "[n, 3]"),
    ("unknown output", {"inputs": columnar(feature_rows(2)), "outputs": [{"name": "proba"}]},
     "unknown output(s) proba"),
    ("an output twice", {"inputs": columnar(feature_rows(2)),  # was answered twice
                         "outputs": [{"name": "predict"}, {"name": "predict"}]},
     "output(s) predict asked for more than once"),
    ("bad parameter", {"inputs": columnar(feature_rows(2)), "parameters": {"fallback": "no"}},
     "'fallback' must be true or false"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_client_mistakes_are_400_errors(reader: Any, body: Any, message: str) -> None:
    answer = infer(reader, KEY, body, 400)
    assert message in answer["error"]


def test_nested_data_must_be_nested_as_its_shape_says(reader: Any) -> None:
    """Nested data is a shape of its own: ragged rows, and rows nested the other way round
    ([3, 2] declared [2, 3]), were flattened and cut into the declared rows, so a row's
    values were scored as the next row's (200, wrong predictions); both are 400s now. Lists
    of one ([[x], [y]] for shape [2]) are the same values and still taken."""
    rows = feature_rows(2)
    data = [[r[f] for f in FEATURES] for r in rows]
    flat = [v for row in data for v in row]
    bad = {
        "ragged": [flat[:4], flat[4:]],
        "3 rows of 2": [flat[0:2], flat[2:4], flat[4:6]],
        "a row beside values": [data[0], *data[1]],
    }
    for name, nested in bad.items():
        tensor = {"name": "X", "datatype": "FP64", "shape": [2, 3], "data": nested}
        answer = infer(reader, KEY, {"inputs": [tensor]}, 400)
        assert "input 'X' has" in answer["error"] and "nested" in answer["error"], name
    want = infer(reader, KEY, {"inputs": matrix(rows)})["outputs"][0]["data"]
    assert infer(reader, KEY, {"inputs": matrix(rows, nested=True)})["outputs"][0]["data"] == want
    columns = columnar(rows)
    for tensor in columns:
        tensor["data"] = [[v] for v in tensor["data"]]  # shape [2], nested as [2, 1]
    assert infer(reader, KEY, {"inputs": columns})["outputs"][0]["data"] == want


def test_unreadable_body_is_a_400_error(reader: Any) -> None:
    for body in (b"{not json", b'{"id": "\xff"}'):
        r = reader.post(f"/v2/models/{KEY}/infer", content=body)
        assert r.status_code == 400
        conforms(r.json(), "inference_error_response")
    r = reader.post(f"/v2/models/{KEY}/infer", content=body)
    assert "not UTF-8" in r.json()["error"]
    r = reader.get(f"/v2/models/{KEY}/infer")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_infer_without_a_body_says_what_body_v2_wants(reader: Any) -> None:
    """A V2 infer without a body was "invalid inference request: Field required": now it
    says the request has no body and what one holds, whatever its Content-Type."""
    for headers in ({}, {"content-type": "application/json"}):
        r = reader.post(f"/v2/models/{KEY}/infer", headers=headers)
        assert r.status_code == 400, r.text
        conforms(r.json(), "inference_error_response")
        message = r.json()["error"]
        assert message.startswith("the request has no body: send a JSON object"), message
        assert '{"inputs": [{"name", "shape", "datatype", "data"}' in message, message
        assert "Content-Type" not in message, message


def test_classifier_outputs(trained_classifier: Path) -> None:
    rows = [
        {"temperature": 70.0 + i, "vibration": 0.5, "pressure": 30.0, "rpm": 1500.0,
         "hours_since_service": 100.0 * i}
        for i in range(4)
    ]  # fmt: skip
    names = list(rows[0])
    inputs = [
        {"name": n, "datatype": "FP64", "shape": [4], "data": [r[n] for r in rows]} for n in names
    ]
    with open_client(Settings(registry=trained_classifier)) as client:
        key = client.get("/v1/partitions").json()["partitions"][0]["partition"]
        meta = client.get(f"/v2/models/{key}").json()
        conforms(meta, "metadata_model_response")
        assert [t["name"] for t in meta["outputs"]] == ["predict", "predict_proba"]
        answer = infer(client, key, {"inputs": inputs, "parameters": {"threshold": 0.5}})
        v1 = client.post(
            f"/v1/partitions/{key}/predict?probabilities=true&threshold=0.5", json={"rows": rows}
        ).json()
    out = {o["name"]: o for o in answer["outputs"]}
    assert list(out) == ["predict", "predict_proba", "label"]
    assert out["predict"]["data"] == v1["predictions"]
    proba = out["predict_proba"]
    classes = json.loads(proba["parameters"]["classes"])
    assert proba["shape"] == [4, len(classes)]
    assert np.reshape(proba["data"], proba["shape"]).tolist() == [
        [p[str(c)] for c in classes] for p in v1["probabilities"]
    ]
    # the classes are the values predict gives (0 and 1, not "0" and "1"): a client finds
    # each prediction's column among them
    assert classes == [0, 1] and out["predict"]["datatype"] == "INT64"
    assert all(classes.index(label) >= 0 for label in out["predict"]["data"])
    assert out["label"]["data"] == v1["labels"]
    assert out["label"]["parameters"] == {"threshold": 0.5}


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_scores_through_uvicorn(
    reading_server: str, shared_registry: Path, binary: bool
) -> None:
    """tritonclient's HTTP client, as a Triton user calls it; by default it sends tensors as
    binary data after the JSON header (Triton's binary tensor extension)."""
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    rows = feature_rows(4)
    client = triton.InferenceServerClient(reading_server.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(SLASH_KEY)
        meta = client.get_model_metadata(SLASH_KEY)
        assert meta["name"] == SLASH_KEY
        assert client.get_server_metadata()["name"] == "manymodels"
        X = np.array([[r[f] for f in FEATURES] for r in rows], dtype=np.float64)
        tensor = triton.InferInput("X", list(X.shape), "FP64")
        tensor.set_data_from_numpy(X, binary_data=binary)
        outputs = [triton.InferRequestedOutput("predict", binary_data=False)] if binary else None
        result = client.infer(SLASH_KEY, [tensor], request_id="7", outputs=outputs)
        assert result.get_response()["id"] == "7"
        assert result.as_numpy("predict").tolist() == pytest.approx(
            expected(shared_registry, SLASH_KEY, rows)
        )
        columns = []
        for j, f in enumerate(FEATURES):
            column = triton.InferInput(f, [len(rows), 1], "FP64")
            column.set_data_from_numpy(X[:, j : j + 1].copy(), binary_data=binary)
            columns.append(column)
        again = client.infer(SLASH_KEY, columns, model_version="1")
        assert again.as_numpy("predict").tolist() == result.as_numpy("predict").tolist()
        with pytest.raises(InferenceServerException, match="missing input"):
            client.infer(SLASH_KEY, columns[:2])
    finally:
        client.close()


def test_read_token_guards_data_not_health(registry_path: Path) -> None:
    settings = Settings(registry=registry_path, read_token="reader-token")
    with running_server(settings) as url:
        import httpx

        assert httpx.get(f"{url}/v2/health/ready").status_code == 200
        r = httpx.post(f"{url}/v2/models/{KEY}/infer", json={"inputs": columnar(feature_rows(1))})
        assert r.status_code == 401 and "error" in r.json()
        ok = httpx.post(
            f"{url}/v2/models/{KEY}/infer",
            json={"inputs": columnar(feature_rows(1))},
            headers={"Authorization": "Bearer reader-token"},
        )
        assert ok.status_code == 200, ok.text


DOC = Path(__file__).parents[2] / "docs" / "open-inference-protocol.md"


def _blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block of a markdown page."""
    return re.findall(r"^```(\w+)\n(.*?)^```$", text, flags=re.S | re.M)


def _matches(expected: str, line: str) -> bool:
    """``expected`` with ``…`` standing for anything, as in the README's examples."""
    pattern = ".*".join(re.escape(part) for part in expected.split("…"))
    return re.fullmatch(pattern, line) is not None


def test_the_docs_page_examples_run(reading_server: str) -> None:
    """docs/open-inference-protocol.md: the curl and Python examples run against a router and
    print what the page says they print."""
    blocks = _blocks(DOC.read_text())
    assert [lang for lang, _ in blocks] == ["bash", "python", "python"]
    command, _, shown = blocks[0][1].rpartition("\n# ")
    done = subprocess.run(
        ["bash", "-c", command],
        env={**os.environ, "URL": reading_server},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert _matches(shown.strip(), done.stdout.strip()), done.stdout
    for _, code in blocks[1:]:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, str(DOC), "exec"), {"URL": reading_server})
        wanted = [line.split("# ", 1)[1] for line in code.splitlines() if "print(" in line]
        assert printed.getvalue().splitlines() == wanted


def _forecast_spec() -> dict[str, Any]:
    """data-samples/store_sales_forecast.toml: lags and calendar parts of the week."""
    import tomllib

    path = Path(__file__).parents[2] / "data-samples" / "store_sales_forecast.toml"
    return tomllib.loads(path.read_text())


@pytest.fixture(scope="module")
def differenced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample forecast spec with ``target_transform = "difference"``, trained on
    ``store_sales(n_stores=2)``: two tests read it (metadata, infer; nothing is written),
    so it is trained once."""
    from manymodels.pipeline import train
    from manymodels.samples import store_sales

    root = tmp_path_factory.mktemp("differenced") / "reg"
    train({**_forecast_spec(), "target_transform": "difference"}, store_sales(n_stores=2), root,
          backend="local")  # fmt: skip
    return root


def test_a_differenced_lag_model_takes_its_time_and_targets_as_v1_does(
    differenced: Path,
) -> None:
    """A version that derives its lags and calendar parts, and predicts the change of its
    target (``target_transform = "difference"``), needs the row's time: V2 refused the time
    column as an unknown input, so no request of it could be scored while /v1 scored it."""
    import pandas as pd

    from manymodels.samples import store_sales

    df = store_sales(n_stores=2)
    key = "store=1,brand=tropicana"
    last = pd.Timestamp(df.query("store == 1 and brand == 'tropicana'")["week"].max())
    weeks = [str((last + pd.Timedelta(days=7 * i)).date()) for i in (1, 2)]
    rows = [
        {"price": 2.5, "deal": 1, "feat": 0, "week": weeks[0], "units": 9000.0},
        {"price": 2.25, "deal": 0, "feat": 1, "week": weeks[1]},
    ]
    tensors = [
        {"name": "price", "datatype": "FP64", "shape": [2], "data": [2.5, 2.25]},
        {"name": "deal", "datatype": "INT64", "shape": [2], "data": [1, 0]},
        {"name": "feat", "datatype": "INT64", "shape": [2], "data": [0, 1]},
        {"name": "week", "datatype": "BYTES", "shape": [2], "data": weeks},
        {"name": "units", "datatype": "FP64", "shape": [2], "data": [9000.0, None]},
    ]
    with open_client(Settings(registry=differenced)) as client:
        v1 = client.post(f"/v1/partitions/{key}/predict", json={"rows": rows})
        assert v1.status_code == 200, v1.text
        answer = infer(client, key, {"inputs": tensors})
        assert answer["outputs"][0]["data"] == v1.json()["predictions"]
        without_time = infer(client, key, {"inputs": tensors[:3]}, status=400)
        timeless = [{k: v for k, v in row.items() if k in FEATURES} for row in rows]
        refused = client.post(f"/v1/partitions/{key}/predict", json={"rows": timeless})
        assert refused.status_code == 422  # the same rows, refused alike
        says = "the row has no 'week', and its 'units_lag1', 'units_lag2', 'week_week'"
        assert says in without_time["error"]  # was "feature 'week_week' is missing"
        assert says in refused.text
        # one 2-D tensor of the features it does not derive, its time and target beside it
        matrix = {"name": "X", "datatype": "FP64", "shape": [2, 3],
                  "data": [[2.5, 1, 0], [2.25, 0, 1]]}  # fmt: skip
        answer = infer(client, key, {"inputs": [matrix, *tensors[3:]]})
        assert answer["outputs"][0]["data"] == v1.json()["predictions"]
        wide = {**matrix, "shape": [1, 6], "data": [2.5, 1, 0, 2.25, 0, 1]}
        narrow = infer(client, key, {"inputs": [wide]}, 400)
        assert "shape [n, 3] or [n, 7]" in narrow["error"]
        assert "(or without week_week, week_month, units_lag1, units_lag2)" in narrow["error"]
        misspelt = {**tensors[0], "name": "prce"}  # one tensor per feature, one misspelt
        refused = infer(client, key, {"inputs": [misspelt, *tensors[3:]]}, 400)
        assert refused["error"].startswith("unknown input(s) prce and missing input(s) price")
        typo = infer(client, key, {"inputs": [*tensors[:3], {**tensors[3], "name": "wek"}]}, 400)
        assert "unknown input(s) wek" in typo["error"] and "also takes week, units" in typo["error"]


@pytest.mark.parametrize(
    ("numbered", "transform"),
    [(False, None), (False, "difference"), (True, None)],
    ids=["dated", "differenced", "numbered"],
)
def test_a_lag_models_metadata_says_what_infer_takes(
    tmp_path: Path, request: pytest.FixtureRequest, numbered: bool, transform: str | None
) -> None:
    """Metadata listed a lag model's derived features as inputs like its others and did not
    name its time column or target, which infer takes instead of them: a client building its
    request from metadata could not know. Each input that is not a feature every request
    gives now says its role and whether it may be left out, and a request of the inputs not
    marked optional, with the time and a posted target, is answered as /v1 answers."""
    import pandas as pd

    from manymodels.pipeline import train
    from manymodels.samples import store_sales

    spec = _forecast_spec()
    df = store_sales(n_stores=2)
    key = "store=1,brand=tropicana"
    last = pd.Timestamp(df.query("store == 1 and brand == 'tropicana'")["week"].max())
    times: list[Any] = [str((last + pd.Timedelta(days=7 * i)).date()) for i in (1, 2)]
    derived = ["week_week", "week_month", "units_lag1", "units_lag2"]
    if numbered:  # week 1, 2, … (calendar parts need dates)
        first = pd.to_datetime(df["week"]).min()
        df["week"] = (pd.to_datetime(df["week"]) - first).dt.days // 7 + 1
        times = [int((last - first).days // 7 + 1 + i) for i in (1, 2)]
        del spec["calendar"]
        derived = derived[2:]
    if transform is not None:
        spec["target_transform"] = transform
    if not numbered and transform == "difference":  # ``differenced``'s spec and rows
        root: Path = request.getfixturevalue("differenced")
    else:
        root = tmp_path / "reg"
        train(spec, df, root, backend="local")
    with open_client(Settings(registry=root)) as client:
        r = client.get(f"/v2/models/{key}")
        assert r.status_code == 200, r.text
        conforms(r.json(), "metadata_model_response")
        inputs = {t["name"]: t for t in r.json()["inputs"]}
        assert list(inputs) == [*FEATURES, *derived, "week", "units"]
        assert [name for name, t in inputs.items() if "parameters" not in t] == FEATURES
        if not numbered and transform is None:  # the docs page's example is of this model
            shown = re.search(r'^```\n("inputs": .*?)^```$', DOC.read_text(), re.S | re.M)
            assert shown is not None
            for tensor in json.loads("{" + shown[1] + "}")["inputs"]:
                assert inputs[tensor["name"]] == tensor
        for name in derived:
            assert inputs[name]["parameters"] == {"role": "derived", "optional": True}, name
        assert inputs["week"] == {
            "name": "week",
            "datatype": "INT64" if numbered else "BYTES",
            "shape": [-1],
            "parameters": {"role": "time", "optional": transform is None},
        }
        assert inputs["units"] == {
            "name": "units",
            "datatype": "FP64",
            "shape": [-1],
            "parameters": {"role": "target", "optional": True},
        }
        rows = [
            {"price": 2.5, "deal": 1, "feat": 0, "week": times[0], "units": 9000.0},
            {"price": 2.25, "deal": 0, "feat": 1, "week": times[1]},
        ]
        needed = [n for n, t in inputs.items() if not t.get("parameters", {}).get("optional")]
        sent = [*dict.fromkeys([*needed, "week", "units"])]
        tensors = [
            {"name": n, "datatype": inputs[n]["datatype"], "shape": [2],
             "data": [row.get(n) for row in rows]}
            for n in sent
        ]  # fmt: skip
        v1 = client.post(f"/v1/partitions/{key}/predict", json={"rows": rows})
        assert v1.status_code == 200, v1.text
        answer = infer(client, key, {"inputs": tensors})
        assert answer["outputs"][0]["data"] == v1.json()["predictions"]
        timeless = [t for t in tensors if t["name"] not in ("week", "units")]
        refused = infer(client, key, {"inputs": timeless}, status=400)["error"]
        assert "the row has no 'week', and its " in refused  # the time, not "feature '…'
        assert repr(derived[-1]) in refused  # is missing" as it said of this one


def test_one_2d_tensors_elements_are_checked_against_its_datatype(
    reader: Any, trained_categorical: Path
) -> None:
    """INT8 data of 300 or BOOL data of 2.5 in one 2-D tensor were scored as sent, where one
    tensor per feature was refused; a word in a text feature's column stays that feature's."""
    for datatype, data, bad in [("INT8", [2, 300, 0], 300), ("BOOL", [True, 2.5, False], 2.5)]:
        body = {"inputs": [{"name": "X", "datatype": datatype, "shape": [1, 3], "data": data}]}
        answer = infer(reader, KEY, body, status=400)
        assert f"input 'X' is {datatype}, but its element 1 is {bad}" in answer["error"]
    row = {"plan": "pro", "sessions": 3, "pages": 14, "notifications": 2, "weekend": 0}
    with open_client(Settings(registry=trained_categorical)) as users:
        key = "user_id=u0001"
        v1 = users.post(f"/v1/partitions/{key}/predict", json={"rows": [row]})
        tensor = {"name": "X", "datatype": "FP64", "shape": [1, 5], "data": list(row.values())}
        answer = infer(users, key, {"inputs": [tensor]})
        assert answer["outputs"][0]["data"] == v1.json()["predictions"]
        words = {**tensor, "data": ["pro", "three", 14, 2, 0]}  # a word in a number's column
        assert 'its element 1 is "three"' in infer(users, key, {"inputs": [words]}, 400)["error"]


def test_a_classifiers_metadata_gives_its_target_as_its_labels_are(tmp_path: Path) -> None:
    """A classifier with calendar parts listed its target ``y`` as FP64 though its labels are
    "yes" / "no", which ``infer`` takes as BYTES: a client following metadata sent numbers."""
    import pandas as pd

    from manymodels.pipeline import train

    rng = np.random.default_rng(0)
    frames = []
    for p in range(2):
        x = rng.normal(size=40)
        y = np.where(x + rng.normal(scale=0.5, size=40) > 0, "yes", "no")
        days = pd.date_range("2022-01-03", periods=40, freq="W-MON").strftime("%Y-%m-%d")
        frames.append(pd.DataFrame({"pid": p, "t": days, "x0": x, "y": y}))
    spec = {
        "name": "churn", "task": "classification", "partition_by": ["pid"], "target": "y",
        "time_column": "t", "features": ["x0"], "calendar": ["month"],
        "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression"}],
    }  # fmt: skip
    train(spec, pd.concat(frames), tmp_path / "reg", backend="local")
    with open_client(Settings(registry=tmp_path / "reg")) as client:
        inputs = {i["name"]: i for i in client.get("/v2/models/pid=1").json()["inputs"]}
        assert inputs["y"]["datatype"] == "BYTES"
        assert inputs["y"]["parameters"] == {"role": "target", "optional": True}
        body = {"inputs": [
            {"name": "x0", "datatype": "FP64", "shape": [1], "data": [0.3]},
            {"name": "t", "datatype": "BYTES", "shape": [1], "data": ["2022-12-05"]},
            {"name": "y", "datatype": inputs["y"]["datatype"], "shape": [1], "data": ["yes"]},
        ]}  # fmt: skip
        assert client.post("/v2/models/pid=1/infer", json=body).status_code == 200


def test_an_empty_model_name_before_a_trailing_slash_is_refused_the_same(reader: Any) -> None:
    """``/v2/models//infer/`` kept its slash (no key before the action), and answered 405."""
    rows = feature_rows(2)
    r = reader.post("/v2/models//infer/", json={"inputs": columnar(rows)})
    assert r.status_code == 400 and "no model name" in r.json()["error"], r.text
    assert reader.get("/v2/models//ready/").json() == {"name": "", "ready": False}


@pytest.mark.parametrize("n", [5, 30_000])
def test_a_big_requests_tensors_are_read_off_the_event_loop(
    reader: Any, shared_registry: Path, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    """Reading tensors into rows is a Python loop over every element: 100,000 rows of three
    features (6 MB) held the event loop 0.3 s (columnar) to 0.7 s (one nested 2-D tensor),
    every other request waiting. A body past ``jsonbody.OFF_LOOP_BYTES`` is now read in a
    worker thread, as its JSON is parsed; a small one in place (a thread hop costs more)."""
    import threading

    from serving.routes import v2

    threads: list[str] = []
    read = v2.to_rows

    def spy(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return read(*args)

    monkeypatch.setattr(v2, "to_rows", spy)
    rows = [{"price": 2.0 + (i % 7) * 0.25, "deal": i % 2, "feat": i % 3 % 2} for i in range(n)]
    answer = infer(reader, KEY, {"inputs": matrix(rows, nested=True)})
    [out] = answer["outputs"]
    assert out["shape"] == [n]
    assert out["data"][:5] == pytest.approx(expected(shared_registry, KEY, rows[:5]))
    assert len(threads) == 1
    assert threads[0].startswith("AnyIO worker") == (n > 5), threads
