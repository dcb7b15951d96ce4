"""The router over real HTTP (uvicorn on 127.0.0.1, ephemeral port): limits, the cache under
concurrency, hot swaps while requests stream, promotions from elsewhere, tampered artifacts."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from routerkit import KEY, SLASH_KEY, TWO_VERSIONS, admin, expected, feature_rows

from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings


def metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def predict(base: str, key: str, n: int = 2, **kwargs: object) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/partitions/{key}/predict", json={"rows": feature_rows(n)}, **kwargs
    )  # type: ignore[arg-type]


def test_scoring_over_http(server: str, registry_path: Path) -> None:
    rows = feature_rows(4)
    for key in (KEY, SLASH_KEY):
        r = httpx.post(f"{server}/v1/partitions/{key}/predict", json={"rows": rows})
        assert r.status_code == 200, r.text
        assert r.json()["partition"] == key
        assert r.json()["predictions"] == pytest.approx(expected(registry_path, key, rows))
    trick = httpx.post(f"{server}/v1/partitions/%2E%2E%2F%2E%2E%2Fetc/predict", json={"rows": rows})
    assert trick.status_code == 200 and trick.json()["fallback"] is True
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server}/readyz").json()["status"] == "ready"
    missing = httpx.get(f"{server}/no/such/route")
    assert missing.status_code == 404 and "detail" in missing.json()


def test_request_body_limit(registry_path: Path) -> None:
    settings = Settings(registry=registry_path, max_body_bytes=2_000)
    big = {"rows": feature_rows(100)}
    with running_server(settings) as base:
        url = f"{base}/v1/partitions/{KEY}/predict"
        assert httpx.post(url, json={"rows": feature_rows(3)}).status_code == 200
        declared = httpx.post(url, json=big)
        assert declared.status_code == 413 and "2000 bytes" in declared.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            data = httpx.Request("POST", url, json=big).read()
            for i in range(0, len(data), 500):
                yield data[i : i + 500]

        streamed = httpx.post(url, content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413 and "detail" in streamed.json()
        route = "/v1/partitions/{key:path}/predict"
        name = f'manymodels_http_requests_total{{method="POST",route="{route}",status="413"}}'
        assert metric(base, name) == 2


def test_cache_is_bounded_and_counts_evictions(registry_path: Path) -> None:
    settings = Settings(registry=registry_path, cache_size=2)
    keys = [KEY, SLASH_KEY, "store=3,brand=tropicana", "store=4,brand=tropicana"]
    with running_server(settings) as base:
        for key in keys:
            assert predict(base, key).status_code == 200
        assert metric(base, "manymodels_models_loaded") == 2
        assert metric(base, "manymodels_model_cache_evictions_total") == 2
        assert metric(base, "manymodels_model_cache_loads_total") == 4
        assert predict(base, keys[-1]).status_code == 200
        assert metric(base, "manymodels_model_cache_hits_total") == 1


def test_burst_on_a_cold_model_loads_it_once(server: str) -> None:
    n = 16
    barrier = threading.Barrier(n)
    statuses: list[int] = []

    def worker() -> None:
        with httpx.Client() as c:
            barrier.wait()
            r = c.post(f"{server}/v1/partitions/{KEY}/predict", json={"rows": feature_rows(2)})
            statuses.append(r.status_code)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * n
    assert metric(server, "manymodels_model_cache_loads_total") == 1
    assert metric(server, "manymodels_model_load_duration_seconds_count") == 1


def test_promotion_during_a_stream_of_requests(server: str) -> None:
    key = TWO_VERSIONS[0]
    stop = threading.Event()
    seen: dict[int, list[int]] = {}
    failures: list[str] = []

    def stream(i: int) -> None:
        versions = seen.setdefault(i, [])
        with httpx.Client() as c:
            while not stop.is_set():
                r = c.post(f"{server}/v1/partitions/{key}/predict", json={"rows": feature_rows(3)})
                if r.status_code != 200:
                    failures.append(r.text)
                else:
                    versions.append(r.json()["version"])

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    r = httpx.post(f"{server}/v1/partitions/{key}/promote", json={"version": 2}, headers=admin())
    assert r.status_code == 200, r.text
    after = predict(server, key).json()["version"]  # visible at once, not after a refresh
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert after == 2
    for versions in seen.values():
        assert versions and versions == sorted(versions)  # 1 … 1 2 … 2: switched once
        assert versions[-1] == 2
    assert any(1 in v for v in seen.values())


def test_promotion_made_elsewhere_is_picked_up(server: str, registry_path: Path) -> None:
    key = TWO_VERSIONS[1]
    assert predict(server, key).json()["version"] == 1
    with Registry.open(registry_path) as other:  # e.g. the CLI, in another process
        other.set_alias(key, "production", 2, reason="promoted by hand")
    started = time.monotonic()
    while predict(server, key).json()["version"] != 2:
        assert time.monotonic() - started < 3.0, "promotion not picked up"
        time.sleep(0.05)
    assert time.monotonic() - started < 0.2 * 5  # refresh_seconds is 0.2 in these tests


def test_tampered_artifact_is_a_clear_error_and_never_cached(
    server: str, registry_path: Path
) -> None:
    """A 500 naming the version, never a traceback: it was a 409 Conflict, a status that
    tells a client its request clashed with the resource's state and can be fixed by it,
    where the stored bytes changed under the router. Nothing else answers for the partition
    (not the fallback), and other keys are served as before."""
    key = "store=4,brand=minute_maid"
    with Registry.open(registry_path) as reg:
        record = reg.get_version(key)
        path = reg.artifacts.path(record.artifact_sha256)  # type: ignore[attr-defined]
    original = path.read_bytes()
    path.write_bytes(original[:-10] + b"0123456789")
    said = (
        f"the artifact of partition '{key}' version {record.version} failed its sha256 "
        "check; model not served"
    )
    for _ in range(2):
        r = predict(server, key)
        assert r.status_code == 500 and r.json() == {"detail": said}, r.text
    rows = [{"store": 4, "brand": "minute_maid", **feature_rows(1)[0]}]
    batch = httpx.post(f"{server}/v1/predict", json={"rows": rows})
    assert batch.status_code == 500 and batch.json() == {"detail": said}, batch.text
    v2 = httpx.post(
        f"{server}/v2/models/{key}/infer",
        json={"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64",
                          "data": [2.0, 1, 0]}]},
    )  # fmt: skip
    assert v2.status_code == 500 and v2.json() == {"error": said}, v2.text
    assert metric(server, "manymodels_model_cache_load_failures_total") == 4
    assert metric(server, "manymodels_models_loaded") == 0
    assert predict(server, "store=99,brand=nope").json()["fallback"] is True
    path.write_bytes(original)
    assert predict(server, key).status_code == 200


def test_metrics_by_route_template_and_fallback_uses(server: str) -> None:
    predict(server, KEY)
    predict(server, "store=99,brand=nope")
    httpx.post(f"{server}/v1/partitions/{KEY}/predict", json={"rows": []})
    route = "/v1/partitions/{key:path}/predict"
    ok = f'manymodels_http_requests_total{{method="POST",route="{route}",status="200"}}'
    bad = f'manymodels_http_requests_total{{method="POST",route="{route}",status="422"}}'
    assert metric(server, ok) == 2 and metric(server, bad) == 1
    assert metric(server, "manymodels_fallback_uses_total") == 1
    assert metric(server, "manymodels_alias_table_size") == 11


def test_preload_warms_the_cache(registry_path: Path) -> None:
    with running_server(Settings(registry=registry_path, preload=5)) as base:
        assert metric(base, "manymodels_models_loaded") == 5
        assert predict(base, "__fallback__").json()["fallback"] is True
        assert metric(base, "manymodels_model_cache_hits_total") == 1  # the fallback is preloaded
