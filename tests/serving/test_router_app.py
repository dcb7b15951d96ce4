"""The app's lifecycle and error contract: not ready before start-up, JSON for every error,
one metrics registry per app."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from routerkit import KEY, admin, feature_rows, open_client

from serving.auth import OPEN_PATHS
from serving.settings import Settings


def test_not_ready_until_started(settings: Settings) -> None:
    client = open_client(settings)  # not entered: the lifespan has not run
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    r = client.post(f"/v1/partitions/{KEY}/predict", json={"rows": feature_rows(1)})
    assert r.status_code == 503 and "starting" in r.json()["detail"]
    with client:
        assert client.get("/readyz").json()["status"] == "ready"


def test_the_openapi_document_declares_readyz_503_and_names_every_open_path(
    settings: Settings,
) -> None:
    """A client generated from the document must expect the 503 a probe acts on; the
    description must not claim that the docs, the dashboard or the V2 probes need a token."""
    with open_client(settings) as client:
        doc = client.get("/openapi.json").json()
    assert "503" in doc["paths"]["/readyz"]["get"]["responses"]
    said = doc["info"]["description"]
    for path in (*OPEN_PATHS, "/docs", "/redoc", "/openapi.json", "/ui"):
        assert f"`{path}`" in said, path


def test_an_unexpected_error_is_json_without_a_traceback(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug with /secret/paths in it")

    with open_client(settings, raise_server_exceptions=False) as client:
        monkeypatch.setattr(client.app.state.service, "score_target", boom)
        r = client.post(f"/v1/partitions/{KEY}/predict", json={"rows": feature_rows(1)})
    assert r.status_code == 500
    assert r.json() == {"detail": "internal server error (see the server log)"}


def test_every_routing_error_is_json(client: Any) -> None:
    assert client.get("/nope").json() == {"detail": "Not Found"}
    r = client.put(f"/v1/partitions/{KEY}/predict", json={})
    assert r.status_code == 405 and "detail" in r.json()


def test_apps_in_one_process_keep_their_own_metrics(registry_path: Path) -> None:
    first, second = (open_client(Settings(registry=registry_path)) for _ in range(2))
    with first, second:
        first.post(f"/v1/partitions/{KEY}/predict", json={"rows": feature_rows(1)})
        assert "manymodels_predicted_rows_total 1.0" in first.get("/metrics").text
        assert "manymodels_predicted_rows_total 0.0" in second.get("/metrics").text


def test_start_up_leaves_preloaded_models_plain_parts_out_of_the_collectors_walk(
    registry_path: Path,
) -> None:
    """Start-up collects twice before it freezes: a layout's tuple is untracked only after its
    inner tuples are, and a shared layout frozen while tracked would keep every later model's
    ``ServedModel.plain`` in each full collection's walk."""
    with open_client(Settings(registry=registry_path, preload=5)) as client:
        service = client.app.state.service
        pairs = [p for p in service.aliases.pairs_many(service.aliases.partitions()) if p]
        held = [m for m in (service.cache.held(*p) for p in pairs) if m is not None]
        plains = [m.plain for m in held if m.plain is not None]
        assert plains, "no preloaded model is plain: nothing checked"
        assert not any(gc.is_tracked(p) or gc.is_tracked(p[0]) for p in plains)


def test_starting_up_503s_say_when_to_try_again(settings: Settings) -> None:
    """Before the registry is open every route's 503 (``/v1``, ``/v2``, an admin route, the
    readiness probe) carries ``Retry-After: 5``, as every other outage's 503 does: without it a
    client's retry policy took "starting up" for a failure."""
    client = open_client(settings)  # not entered: the lifespan has not run
    answers = {
        "predict": client.post(f"/v1/partitions/{KEY}/predict", json={"rows": feature_rows(1)}),
        "v2": client.post(f"/v2/models/{KEY}/infer", json={"inputs": []}),
        "retrain": client.post(f"/v1/partitions/{KEY}/retrain", json={}, headers=admin()),
        "readyz": client.get("/readyz"),
    }
    for name, r in answers.items():
        assert r.status_code == 503, (name, r.text)
        assert r.headers.get("retry-after") == "5", (name, r.headers)
        assert "starting" in r.text, (name, r.text)
