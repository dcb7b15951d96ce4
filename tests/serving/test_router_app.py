"""The app's lifecycle and error contract: not ready before start-up, JSON for every error,
one metrics registry per app."""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from routerkit import KEY, admin, feature_rows, open_client

from manymodels.registry import Registry
from manymodels.registry.model_access import FORMATS_TTL
from manymodels.serialization import TRUSTED_META
from serving.auth import OPEN_PATHS
from serving.settings import Settings
from serving.warm_up import WarmUp


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


def test_a_started_router_warms_the_model_libraries_after_it_is_ready(
    shared_registry: Path,
) -> None:
    """Start-up leaves scikit-learn and SciPy out (~2 s of CPU a ``manymodels serve`` paid
    before ``/readyz``); a daemon thread imports them once the router is ready, so the first
    model load does not pay for them inside a request, and freezes them, so full collections
    do not walk their ~65,000 objects again. The subprocess holds the warm-up's import of
    either (a finder first on ``sys.meta_path`` that waits) until the probes answered: ready
    does not wait for the warm-up. Then, with no request, both arrive within 60 s and what
    they made is frozen: the collector tracks about as many objects as before them."""
    rows = feature_rows(1)
    script = (
        "import gc, json, logging, sys, threading, time, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from fastapi.testclient import TestClient\n"
        "from serving.app import create_app\n"
        "from serving.settings import Settings\n"
        "heavy = {'sklearn', 'scipy'}\n"
        "release, warmed = threading.Event(), threading.Event()\n"
        "class Hold:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in heavy:\n"
        "            release.wait(60)\n"
        "        return None\n"
        "class Seen(logging.Handler):\n"
        "    def emit(self, record):\n"
        "        if 'model libraries warmed' in record.getMessage():\n"
        "            warmed.set()\n"
        "sys.meta_path.insert(0, Hold())\n"
        "logging.getLogger('manymodels.serving').addHandler(Seen())\n"
        "logging.getLogger('manymodels.serving').setLevel(logging.INFO)\n"
        f"client = TestClient(create_app(Settings(registry={str(shared_registry)!r})))\n"
        "with client:\n"
        "    probes = [client.get(p).status_code for p in ('/healthz', '/readyz')]\n"
        "    at_probes = sorted(heavy & set(sys.modules))\n"
        "    frozen, tracked = gc.get_freeze_count(), len(gc.get_objects())\n"
        "    release.set()\n"
        "    done = warmed.wait(60)\n"
        "    warm = sorted(heavy & set(sys.modules))\n"
        "    grown = [gc.get_freeze_count() - frozen, len(gc.get_objects()) - tracked]\n"
        f"    r = client.post('/v1/partitions/{KEY}/predict', json={{'rows': {rows!r}}})\n"
        "print(json.dumps([probes, at_probes, done, warm, grown, r.status_code]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    probes, at_probes, warmed, warm, grown, status = json.loads(done.stdout.splitlines()[-1])
    assert probes == [200, 200] and at_probes == []
    assert warmed and warm == ["scipy", "sklearn"], done.stderr[-2000:]
    frozen, tracked = grown
    assert frozen > 20_000, grown  # the imports' objects, frozen
    assert tracked < 5_000, grown  # ... and not in the collector's walk (65,000 without)
    assert status == 200


def test_the_warm_up_runs_in_process_and_says_how_long_it_took(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the thread a router's first model load or retrain imported scikit-learn inside
    the request; its one log line says it ran, and when."""
    caplog.set_level(logging.INFO, logger="manymodels.serving")
    with open_client(settings) as client:
        deadline = time.monotonic() + 60
        while "model libraries warmed" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text[-2000:]
            time.sleep(0.05)
        assert client.get("/readyz").status_code == 200
    line = next(r.getMessage() for r in caplog.records if "libraries warmed" in r.getMessage())
    assert json.loads(line)["seconds"] >= 0


def test_a_trust_policy_unreadable_at_ready_is_the_warm_ups_failure_not_the_starts(
    registry_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The lifespan read the registry's trusted formats before ``yield``, for the warm-up
    alone (skops or not): a read start-up paid, and a policy it could not read then failed the
    start. The warm-up thread reads it now, after ready. Here the policy turns unreadable (a
    format this manymodels does not know, as a newer one may write) as the router says ready,
    once the registry's cached read is stale (``FORMATS_TTL``): the router starts and answers,
    and the warm-up logs the failure, freezes all the same, and says skops was not warmed."""
    caplog.set_level(logging.INFO, logger="manymodels.serving")

    class Unknown(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if '"event": "router ready"' in record.getMessage():
                time.sleep(FORMATS_TTL + 0.2)  # the open's cached read is stale
                with Registry.open(registry_path) as reg:
                    reg.store.set_meta(TRUSTED_META, "onnx")

    handler = Unknown()
    logging.getLogger("manymodels.serving").addHandler(handler)
    try:
        with open_client(Settings(registry=registry_path, refresh_seconds=60)) as client:
            assert client.get("/readyz").status_code == 200
            deadline = time.monotonic() + 60
            while "model libraries warmed" not in caplog.text:
                assert time.monotonic() < deadline, caplog.text[-2000:]
                time.sleep(0.05)
    finally:
        logging.getLogger("manymodels.serving").removeHandler(handler)
    failed = next(r for r in caplog.records if r.getMessage() == "warming skops.io failed")
    assert failed.exc_info is not None and "unknown artifact format(s) onnx" in str(
        failed.exc_info[1]
    )
    line = next(r.getMessage() for r in caplog.records if "libraries warmed" in r.getMessage())
    assert json.loads(line)["skops"] is False
    assert json.loads(line)["skops_error"] == "RegistryError"


def test_a_warm_up_stopped_before_it_finishes_freezes_nothing() -> None:
    """The lifespan's shutdown stops the warm-up before its ``gc.unfreeze()``: a warm-up that
    finished later would freeze, for the rest of the process, what the unfreeze gave back."""
    before = gc.get_freeze_count()
    warm_up = WarmUp()
    warm_up.stop()
    warm_up.start()
    deadline = time.monotonic() + 60
    while any(t.name == "manymodels-warm-up" for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert gc.get_freeze_count() == before
