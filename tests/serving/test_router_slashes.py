"""Every route answers the same with a trailing slash as without it, never with a redirect
(``serving.keys.KeyPaths``). ``GET /v1/partitions/`` was a 404 for partition ``''`` where
``/v1/partitions`` lists them, and ``POST /v1/predict/`` (like ``/v1/jobs/``, ``/healthz/``…)
a 307 that curl and httpx do not follow unless asked to. The routes are read from the app,
so a route added later is checked too."""

from __future__ import annotations

import re
from typing import Any

import pytest
from routerkit import KEY, admin, feature_rows

from serving.routes.ui import ASSETS

# what each path parameter is filled with: a real key, version, run (read below), file
PARAMS = {"key": KEY, "version": "1", "job_id": "no-such-job", "name": next(iter(ASSETS))}
VOLATILE = {"/metrics"}  # its body counts the requests just made


@pytest.fixture
def client(reader: Any) -> Any:
    """The module's one router (``reader``), for every test here: each only reads or scores,
    its POSTs refused before anything is done (a body that is not JSON), and there is no
    DELETE route, so none changes what the next sees (a router and a registry copy a test)."""
    return reader


def routes(app: Any) -> list[tuple[str, str]]:
    """``(method, path template)`` of every route the app answers, with those of included
    routers (FastAPI ≥ 0.16x keeps them behind one entry per ``include_router``)."""
    try:
        from fastapi.routing import iter_route_contexts

        found = [(r.path, r.methods) for r in iter_route_contexts(app.routes)]
    except ImportError:  # an older FastAPI copies them into app.routes
        found = [(getattr(r, "path", None), getattr(r, "methods", None)) for r in app.routes]
    return sorted(
        (method, path)
        for path, methods in found
        if path
        for method in methods or ()
        if method != "HEAD"
    )


def filled(template: str, params: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in params, f"{template}: give PARAMS a value for {{{name}}}"
        return params[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, template)


def same_answer(one: Any, other: Any, *, volatile: bool) -> bool:
    """The same body, but for what moves between two requests: JSON by its fields (a
    monitor's ages, a readiness count), the metrics page not at all."""
    if volatile:
        return True
    if "json" in one.headers.get("content-type", ""):
        a, b = one.json(), other.json()
        return set(a) == set(b) if isinstance(a, dict) and isinstance(b, dict) else a == b
    return bool(one.content == other.content)


def test_every_route_answers_the_same_with_a_trailing_slash(client: Any) -> None:
    """A key's own trailing ``/`` is the one exception: a value may end with it
    (``pid=c/``), so ``…/{key:path}`` itself is not tried with one (below)."""
    params = {**PARAMS, "run_id": client.get("/v1/runs").json()["runs"][0]["run_id"]}
    checked = []
    for method, template in routes(client.app):
        if template.endswith((":path}", "/")):
            continue
        path = filled(template, params)
        # POSTs get a body that is not JSON: refused before anything is done, twice alike
        body = {"content": b"{", "headers": {**admin(), "content-type": "application/json"}}
        kwargs: dict[str, Any] = body if method == "POST" else {"headers": admin()}
        plain = client.request(method, path, follow_redirects=False, **kwargs)
        for slashed in (path + "/", path + "//"):
            r = client.request(method, slashed, follow_redirects=False, **kwargs)
            assert r.status_code == plain.status_code, (method, slashed, r.status_code, r.text)
            assert r.headers.get("content-type") == plain.headers.get("content-type")
            assert same_answer(r, plain, volatile=template in VOLATILE), (method, slashed)
        checked.append((method, template))
    assert ("POST", "/v1/predict") in checked and ("GET", "/v1/jobs") in checked
    assert ("POST", "/v1/partitions/{key:path}/predict") in checked
    assert ("GET", "/v1/runs/{run_id}") in checked and ("GET", "/ui/{name}") in checked


def test_the_collections_answer_with_a_slash_as_without(client: Any) -> None:
    listed = client.get("/v1/partitions")
    assert listed.status_code == 200 and listed.json()["partitions"]
    slashed = client.get("/v1/partitions/", follow_redirects=False)
    assert slashed.status_code == 200 and slashed.json() == listed.json(), slashed.text
    plain = client.post("/v1/predict", json={"rows": [{"store": 2, "brand": "tropicana",
                                                        **feature_rows(1)[0]}]})  # fmt: skip
    assert plain.status_code == 200, plain.text
    r = client.post("/v1/predict/", json={"rows": [{"store": 2, "brand": "tropicana",
                                                    **feature_rows(1)[0]}]},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 200 and r.json() == plain.json(), r.text


@pytest.mark.parametrize("path", ["/v2/models", "/v2/models/"])
def test_v2_without_a_model_name_is_one_answer_not_a_redirect(client: Any, path: str) -> None:
    """``/v2/models`` was a 307 to ``/v2/models/``, which answers 400: now the 400 itself."""
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("no model name")


def test_a_key_value_ending_in_a_slash_is_still_that_value(client: Any) -> None:
    """``pid=c/`` may be partition ``c/``: the slash ending a key is not dropped."""
    r = client.get(f"/v1/partitions/{KEY}/", follow_redirects=False)
    assert r.status_code == 404 and r.json()["detail"].startswith(f"no partition '{KEY}%2F'")
