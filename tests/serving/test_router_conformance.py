"""HTTP conformance through the app (``TestClient``): every integer input is bounded (a 422,
never a 5xx), 405 answers name the methods the route has, and unreadable bodies get the
status the OpenAPI document declares."""

from __future__ import annotations

from typing import Any

import pytest
from routerkit import KEY, admin, feature_rows

from manymodels.cli.options import MAX_INT
from serving.schemas import MAX_VERSION

PREDICT = f"/v1/partitions/{KEY}/predict"


@pytest.fixture
def client(reader: Any) -> Any:
    """The module's one router (``reader``), for every test here: each request is refused
    (422, 404, 405, 401) or only scores, so none changes what the next sees — a rollback of
    the one-version ``KEY`` is refused, no promotion finds its version, no retrain's rows are
    read. A router and a registry copy per test were ~1 s each, 38 times."""
    return reader


# (method, url, where the integer goes, its name, whether the route needs the admin token)
INTEGER_INPUTS = [
    ("POST", PREDICT, "query", "version", False),
    ("POST", f"/v1/partitions/{KEY}/promote", "body", "version", True),
    ("POST", f"/v1/partitions/{KEY}/forecast", "body", "horizon", False),
    ("GET", "/v1/partitions", "query", "limit", False),
    ("GET", "/v1/jobs", "query", "limit", True),
]


def send_integer(client: Any, method: str, url: str, where: str, name: str, value: int,
                 needs_admin: bool) -> Any:  # fmt: skip
    headers = admin() if needs_admin else {}
    if where == "query":
        body = {"rows": feature_rows(1)} if method == "POST" else None
        return client.request(method, url, params={name: str(value)}, json=body, headers=headers)
    return client.request(method, url, json={name: value}, headers=headers)


@pytest.mark.parametrize("value", [2**31, 2**63, 10**30, -(2**63) - 1])
@pytest.mark.parametrize(("method", "url", "where", "name", "needs_admin"), INTEGER_INPUTS)
def test_every_integer_input_out_of_range_is_a_422_naming_it(
    client: Any, method: str, url: str, where: str, name: str, needs_admin: bool, value: int
) -> None:
    r = send_integer(client, method, url, where, name, value, needs_admin)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == [where, name]


def test_the_largest_version_is_looked_up_not_refused(client: Any) -> None:
    """``MAX_VERSION`` itself reaches the registry: a plain 404, as for any missing version."""
    r = client.post(PREDICT, params={"version": MAX_VERSION}, json={"rows": feature_rows(1)})
    assert r.status_code == 404 and str(MAX_VERSION) in r.json()["detail"]
    r = client.post(f"/v1/partitions/{KEY}/promote", json={"version": MAX_VERSION}, headers=admin())
    assert r.status_code == 404, r.text


def test_versions_have_the_bound_the_cli_has() -> None:
    assert MAX_VERSION == MAX_INT


# ------------------------------------------------------------------------------ 405 and Allow
def concrete(path: str) -> str:
    return (
        path.replace("{key:path}", KEY).replace("{key}", KEY).replace("{job_id}", "j1")
        .replace("{version}", "1")
    )  # fmt: skip


def test_a_405_allows_exactly_the_methods_the_openapi_document_gives_the_path(
    client: Any,
) -> None:
    """``/v1/partitions/{key}`` (GET) also matches ``…/promote``: the Allow header must still
    be the action's own ``POST``, for every path and every method it does not have."""
    paths = client.get("/openapi.json").json()["paths"]
    assert len(paths) > 10
    for path, ops in paths.items():
        allowed = {method.upper() for method in ops}
        probes = {"OPTIONS", "DELETE", "PUT", "PATCH", "POST", "GET"} - allowed
        for method in probes:
            r = client.request(method, concrete(path), headers=admin())
            assert r.status_code == 405, (method, path, r.status_code)
            assert set(r.headers["allow"].split(", ")) == allowed, (method, path)
            # the Open Inference Protocol's own routes answer its {"error": ...} where they can
            v2 = path == "/v2" or path.startswith("/v2/")
            assert "detail" in r.json() or (v2 and "error" in r.json())


# ------------------------------------------------------------------------------ trailing slash
# bodies the scoring actions answer with a model's own answer (the others get one they refuse)
ROWS = feature_rows(2)
TENSORS = [
    {"name": f, "datatype": "FP64", "shape": [2], "data": [float(r[f]) for r in ROWS]}
    for f in ("price", "deal", "feat")
]
BODIES = {
    "predict": {"rows": ROWS},
    "infer": {"inputs": TENSORS},
    "retire": {"reason": "r" * 501},  # past the cap: ``{}`` would retire ``KEY``
}


def test_an_action_with_a_trailing_slash_answers_as_without_it(client: Any) -> None:
    """``POST …/predict/`` matched ``GET /v1/partitions/{key}`` by its path (the key taken
    as ``…/predict/``) and was answered 405 ``Allow: GET``: so for every action under a key,
    /v1 and V2. A body the action refuses (``{}``; a rollback of a partition with one
    version; a retirement's reason past the cap) shows which route answered without moving
    an alias or starting a job."""
    paths = client.get("/openapi.json").json()["paths"]
    actions = [
        (method.upper(), path)
        for path, ops in paths.items()
        for method in ops
        if "{key}/" in path and not path.endswith("}")
    ]
    assert {path.rpartition("/")[2] for _, path in actions} >= {
        "predict", "forecast", "actuals", "explain", "retrain", "promote", "rollback", "retire",
        "infer", "ready",
    }  # fmt: skip
    for method, path in actions:
        action = path.rpartition("/")[2]
        body = BODIES.get(action, {}) if method == "POST" else None
        url = concrete(path)
        plain = client.request(method, url, json=body, headers=admin())
        assert plain.status_code != 405, (method, path, plain.text)
        for slashed in (url + "/", url + "//"):
            r = client.request(method, slashed, json=body, headers=admin())
            assert (r.status_code, r.json()) == (plain.status_code, plain.json()), (slashed, r.text)
    assert client.post(PREDICT + "/", json=BODIES["predict"]).json()["predictions"]


# ------------------------------------------------------------------------------ bodies
UNREADABLE = [
    pytest.param(b"{", "application/json", id="json-syntax"),
    pytest.param(b'\xff\xfe{"rows": []}', "application/json", id="not-utf8"),
    pytest.param(b"[" * 100_000, "application/json", id="nested-too-deeply"),
]


def body_routes(client: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, responses) of every operation the OpenAPI document gives a body."""
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (method.upper(), path, op["responses"])
        for path, ops in paths.items()
        for method, op in ops.items()
        if "requestBody" in op
    ]


@pytest.mark.parametrize(("content", "kind"), UNREADABLE)
def test_an_unreadable_body_is_the_422_the_openapi_document_declares(
    client: Any, content: bytes, kind: str
) -> None:
    routes = body_routes(client)
    assert {path for _, path, _ in routes} >= {
        "/v1/predict",
        "/v1/partitions/{key}/predict",
        "/v1/partitions/{key}/forecast",
        "/v1/partitions/{key}/promote",
        "/v1/partitions/{key}/rollback",
        "/v1/partitions/{key}/retrain",
    }
    for method, path, responses in routes:
        r = client.request(
            method, concrete(path), content=content, headers={"content-type": kind, **admin()}
        )
        if path.startswith("/v2/"):  # the Open Inference Protocol's: a 400 {"error": ...}
            assert r.status_code == 400 and "400" in responses, (path, r.status_code, r.text)
            assert "cannot be read" in r.json()["error"], (path, r.text)
            continue
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert str(r.status_code) in responses and "400" not in responses, path
        (error,) = r.json()["detail"]
        assert error["type"] == "json_invalid" and error["loc"][0] == "body", (path, error)


def test_a_malformed_upload_is_a_422_saying_what_is_wrong(client: Any) -> None:
    r = client.post(
        f"/v1/partitions/{KEY}/retrain",
        content=b"--x\r\n",
        headers={"content-type": "multipart/form-data", **admin()},  # no boundary
    )
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["type"] == "multipart_invalid" and error["loc"] == ["body"]
    assert "boundary" in error["msg"].lower()


def test_other_errors_keep_their_status_and_headers(client: Any) -> None:
    """Only the unreadable body's 400 changes: a 401 still says how to authenticate."""
    r = client.post(f"/v1/partitions/{KEY}/promote", json={"version": 1})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.get("/nope").status_code == 404
