"""The app's lifecycle and error contract: not ready before start-up, JSON for every error,
one metrics registry per app."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
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


def test_a_started_router_answers_without_training_libraries(shared_registry: Path) -> None:
    """``manymodels serve`` took ~3 s of CPU to start, two thirds of it importing
    scikit-learn and SciPy through training's modules (the retrain job, the forecast route,
    the global model's binding) that no request before a model's load uses. A started router
    answers its probes without them; its first model's load (which unpickles scikit-learn
    objects) brings them, so the probe does see them."""
    rows = feature_rows(1)
    script = (
        "import json, sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from fastapi.testclient import TestClient\n"
        "from serving.app import create_app\n"
        "from serving.settings import Settings\n"
        "heavy = {'sklearn', 'scipy'}\n"
        f"client = TestClient(create_app(Settings(registry={str(shared_registry)!r})))\n"
        "with client:\n"
        "    probes = [client.get(p).status_code for p in ('/healthz', '/readyz')]\n"
        "    started = sorted(heavy & set(sys.modules))\n"
        f"    r = client.post('/v1/partitions/{KEY}/predict', json={{'rows': {rows!r}}})\n"
        "    loaded = sorted(heavy & set(sys.modules))\n"
        "print(json.dumps([probes, started, r.status_code, loaded]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    probes, started, status, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert probes == [200, 200] and started == []
    assert status == 200 and loaded == ["scipy", "sklearn"]
