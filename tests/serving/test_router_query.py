"""A query parameter a route does not take is refused (serving/query.py), over real HTTP.

FastAPI ignores unknown query parameters: ``POST /v1/predict?version=1`` answered with
production, ``?level=80`` without intervals, ``?fallbak=false`` with the fallback. Every /v1
and /v2 route now refuses one, naming it; the probes, /metrics, the API's description and
the dashboard's files do not (infrastructure adds its own parameters there).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from routerkit import KEY, TOKEN, TWO_VERSIONS, admin, feature_rows

from serving.app import create_app
from serving.query import QueryCheckedRoute
from serving.settings import Settings

ROW = {"store": 2, "brand": "tropicana", **feature_rows(1)[0]}
OPEN = ("/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json", "/ui")


@pytest.fixture(scope="module")
def http(reading_server: str) -> Iterator[httpx.Client]:
    """One uvicorn router for the module: every request here is refused before it reads a
    body or a token, or only scores or reads metadata, so none changes what the next sees
    (a router and a registry copy per test were ~1-2 s each)."""
    with httpx.Client(base_url=reading_server, timeout=30) as client:
        yield client


def test_a_batch_refuses_a_version_and_says_where_it_belongs(http: httpx.Client) -> None:
    for name in ("version", "alias"):
        r = http.post("/v1/predict", params={name: "1"}, json={"rows": [ROW]})
        assert r.status_code == 422, r.text
        (error,) = r.json()["detail"]
        assert error["loc"] == ["query", name] and error["input"] == "1"
        assert f"/v1/partitions/{{key}}/predict?{name}=" in error["msg"], error
    ok = http.post("/v1/predict", json={"rows": [ROW]})
    assert ok.status_code == 200 and ok.json()["predictions"][0]["version"] == 1


@pytest.mark.parametrize(
    ("method", "path", "given", "meant"),
    [
        ("POST", "/v1/predict", "level", "levels"),
        ("POST", f"/v1/partitions/{KEY}/predict", "fallbak", "fallback"),
        ("POST", f"/v1/partitions/{KEY}/predict", "verison", "version"),
        ("POST", f"/v1/partitions/{KEY}/forecast", "level", "levels"),
        ("GET", "/v1/partitions", "limt", "limit"),
        ("GET", "/v1/monitor", "sortt", "sort"),
    ],
)
def test_a_misspelt_option_is_a_422_naming_the_one_meant(
    http: httpx.Client, method: str, path: str, given: str, meant: str
) -> None:
    body = {"rows": [ROW]} if path == "/v1/predict" else {"rows": feature_rows(1)}
    r = http.request(method, path, params={given: "80"}, json=body if method == "POST" else None)
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["query", given] and error["type"] == "unknown_parameter"
    assert f"(did you mean '{meant}'?)" in error["msg"], error


def test_a_v2_route_refuses_one_as_the_protocol_does(http: httpx.Client) -> None:
    r = http.get(f"/v2/models/{KEY}", params={"fallbak": "false"})
    assert r.status_code == 400, r.text
    assert "unknown query parameter 'fallbak' (did you mean 'fallback'?)" in r.json()["error"]


@pytest.mark.parametrize(("method", "suffix"), [("POST", "/infer"), ("GET", "")])
def test_a_v2_model_route_takes_its_version_in_the_path_only(
    http: httpx.Client, method: str, suffix: str
) -> None:
    """The unversioned route took ``?version=2`` as a query parameter and answered with it."""
    key = TWO_VERSIONS[0]
    body = {"inputs": [{"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
                       for c, v in feature_rows(1)[0].items()]}  # fmt: skip
    r = http.request(method, f"/v2/models/{key}{suffix}", params={"version": "2"},
                     json=body if method == "POST" else None)  # fmt: skip
    assert r.status_code == 400, r.text
    assert "unknown query parameter 'version'" in r.json()["error"]
    ok = http.request(method, f"/v2/models/{key}/versions/2{suffix}",
                      json=body if method == "POST" else None)  # fmt: skip
    assert ok.status_code == 200, ok.text
    if method == "POST":
        assert ok.json()["model_version"] == "2"


@pytest.mark.parametrize("version", ["²", "١", "0", "x", "2147483648", "99999999999"])
def test_a_v2_version_that_is_not_a_number_from_1_is_a_404(
    http: httpx.Client, version: str
) -> None:
    """'²' is a digit to str.isdigit but not to int(): a 500 (found by schemathesis); '١'
    (Arabic-Indic one) is one to both, and was version 1. A number past the registry's
    integers was told "versions are numbers from 1", which it is: the bound is said."""
    r = http.get(f"/v2/models/{KEY}/versions/{version}")
    assert r.status_code == 404, r.text
    detail = f"no version '{version}': versions are numbers from 1 to 2147483647"
    assert r.json() == {"error": detail}


def test_a_version_with_leading_zeros_is_that_version_on_every_route(http: httpx.Client) -> None:
    """``/versions/02`` and ``?version=02`` are version 2, as the CLI's ``promote KEY 02``
    and MLflow's REST API (``version`` a string read with ``int()``) take it: lenient on
    purpose, the same on /v1, V2 and the command line (a decision, not an accident)."""
    key = TWO_VERSIONS[0]
    body = {"inputs": [{"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
                       for c, v in feature_rows(1)[0].items()]}  # fmt: skip
    v2 = http.post(f"/v2/models/{key}/versions/02/infer", json=body)
    assert v2.status_code == 200 and v2.json()["model_version"] == "2", v2.text
    v1 = http.post(f"/v1/partitions/{key}/predict", params={"version": "02"},
                   json={"rows": feature_rows(1)})  # fmt: skip
    assert v1.status_code == 200 and v1.json()["version"] == 2, v1.text


def test_a_v2_models_readiness_probe_answers_whatever_the_query(http: httpx.Client) -> None:
    """KServe's per-model readiness probe, like /v2/health/ready: a prober's cache-buster is
    not refused (it answered 400 'unknown query parameter')."""
    for path in (f"/v2/models/{KEY}/ready", f"/v2/models/{KEY}/versions/1/ready"):
        r = http.get(path, params={"_": "1700000000"})
        assert (r.status_code, r.json()["ready"]) == (200, True), (path, r.text)


def test_known_options_and_open_routes_answer_as_before(http: httpx.Client) -> None:
    r = http.post(
        f"/v1/partitions/{TWO_VERSIONS[0]}/predict",
        params={"version": "2", "fallback": "false"},
        json={"rows": feature_rows(1)},
    )
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    for path in OPEN:
        assert http.get(path, params={"_": "1700000000"}).status_code == 200, path


def _routes(settings: Settings) -> list[APIRoute]:
    """The app's routes, those of included routers too (FastAPI includes them lazily)."""

    def walk(routes: list[Any]) -> Iterator[Any]:
        for route in routes:
            included = getattr(route, "original_router", None)
            yield from walk(included.routes) if included is not None else [route]

    app = create_app(settings)  # not started: its routes only
    return [r for r in walk(app.routes) if isinstance(r, APIRoute)]


def _url(route: APIRoute) -> str:
    filled = {"key": KEY, "version": "1", "job_id": "j", "run_id": "r", "name": "app.js"}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: filled[m.group(1)], route.path)


def test_every_api_route_refuses_and_no_other_does(
    http: httpx.Client, shared_registry: Path
) -> None:
    """The rule holds for every route there is, new ones included: each /v1 and /v2 route
    (but the probes) is a ``QueryCheckedRoute`` and refuses ``?bogus=`` before reading its
    body or token; every other route answers whatever the query."""
    checked = 0
    for route in _routes(Settings(registry=shared_registry, admin_token=TOKEN)):
        probes = (*OPEN, "/v2/health/live", "/v2/health/ready")
        probes += ("/v2/models/{key:path}/ready", "/v2/models/{key:path}/versions/{version}/ready")
        api = route.path.startswith(("/v1/", "/v2")) and route.path not in probes
        assert isinstance(route, QueryCheckedRoute) or not api, route.path
        for method in sorted(route.methods - {"HEAD"}):
            r = http.request(method, _url(route), params={"bogus": "1"})
            if api:
                assert r.status_code in (400, 422), (method, route.path, r.text)
                assert "unknown query parameter 'bogus'" in r.text, (method, route.path)
                checked += 1
            else:
                assert "bogus" not in r.text, (method, route.path, r.text)
    assert checked > 20


def test_an_admin_route_refuses_one_with_a_token_too(http: httpx.Client) -> None:
    r = http.post(
        f"/v1/partitions/{KEY}/promote", params={"verison": "1"}, json={"version": 1},
        headers=admin(),
    )  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "verison"]


def test_a_route_without_a_parameter_keeps_its_endpoints_annotations() -> None:
    """``without`` wraps an endpoint of a module with ``from __future__ import annotations``:
    FastAPI before 0.123.5 (we allow 0.110) resolved a wrapper's string annotations in the
    wrapper's module, where ``Service`` and the body model mean nothing, and took them for
    query parameters. The wrapper's signature carries them resolved."""
    import inspect

    from serving.query import without
    from serving.routes import v2

    params = inspect.signature(without(v2.infer, "version")).parameters
    assert "version" not in params and "body" in params
    assert not [p.name for p in params.values() if isinstance(p.annotation, str)]
