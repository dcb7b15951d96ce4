"""gc next to a running router: a promotion followed at once by ``gc --keep 1``.

The router follows ``production`` from a table it refreshes every ``refresh_seconds``; here
the interval is an hour, so every request below falls inside the window in which the router
still believes production is v1. gc must keep v1 through that window (its alias grace), and a
router that finds its version gone anyway (the grace set to 0) re-reads the alias instead of
answering 404 "has no version 1".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from routerkit import SALES_SPEC, TWO_VERSIONS, expected, feature_rows, sales

from manymodels.gc import collect
from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings

A, B = TWO_VERSIONS  # at v1 in production, with a v2 candidate
HGB = "sklearn.ensemble.HistGradientBoostingRegressor"  # takes a missing value as it is


@pytest.fixture
def router(registry_path: Path) -> Iterator[str]:
    with running_server(Settings(registry=registry_path, refresh_seconds=3600)) as url:
        yield url


def promote_then_gc(
    root: Path, *keys: str, version: int = 2, **options: float
) -> list[tuple[str, int]]:
    """What an operator does from a shell while the router runs: promote v2 (or ``version``),
    then gc."""
    with Registry.open(root) as reg:
        for key in keys:
            reg.promote(key, version)
        return collect(reg, keep=1, **options).versions_deleted


def test_gc_keeps_a_version_production_just_left(router: str, registry_path: Path) -> None:
    deleted = promote_then_gc(registry_path, A)
    assert (A, 1) not in deleted
    rows = feature_rows()
    r = httpx.post(f"{router}/v1/partitions/{A}/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1  # the router has not seen the move: v1 still answers
    assert r.json()["predictions"] == pytest.approx(expected(registry_path, A, rows, 1))

    later = promote_then_gc(registry_path, alias_grace_seconds=0)  # the grace is what kept it
    assert (A, 1) in later


def test_a_router_finding_its_version_gone_rereads_the_alias(
    router: str, registry_path: Path
) -> None:
    deleted = promote_then_gc(registry_path, A, B, alias_grace_seconds=0)
    assert {(A, 1), (B, 1)} <= set(deleted)
    rows = feature_rows()

    r = httpx.post(f"{router}/v1/partitions/{A}/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    assert (r.json()["served_by"], r.json()["version"]) == (A, 2)
    assert r.json()["predictions"] == pytest.approx(expected(registry_path, A, rows, 2))

    store, brand = (part.split("=")[1] for part in B.split(","))
    batch = [{"store": int(store), "brand": brand, **row} for row in rows]
    r = httpx.post(f"{router}/v1/predict", json={"rows": batch})
    assert r.status_code == 200, r.text
    answers = r.json()["predictions"]
    assert {(a["served_by"], a["version"]) for a in answers} == {(B, 2)}
    assert [a["prediction"] for a in answers] == pytest.approx(expected(registry_path, B, rows, 2))

    # the table learnt the move: the next request needs no second look
    r = httpx.post(f"{router}/v1/partitions/{A}/forecast", json={"horizon": 2})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2


def test_a_batch_loading_the_full_model_behind_coefficients_gone_rereads_the_alias(
    registry_path: Path,
) -> None:
    """A's v1 evicted (a cache of one) and kept as coefficients, then gc deleting it before
    this router's next refresh: a batch row with a missing price, which coefficients cannot
    score, loads the full model — and that load went to the cache directly, a 404 "has no
    version 1" where every other load re-reads the alias. It re-reads too now: A's row is
    answered by the version production points at (a v3 whose trees take a missing value),
    and says so; B's row, in the same batch, by its own model as before."""
    spec = {
        **SALES_SPEC,
        "promotion": {"policy": "manual"},
        "candidates": [{"estimator": HGB, "params": {"max_iter": [20]}}],
    }
    with Registry.open(registry_path) as reg:  # A v3, a candidate until promoted below
        assert train(spec, sales(), reg, backend="local", only={A}).run.n_trained == 1
    rows = feature_rows(1)
    settings = Settings(registry=registry_path, refresh_seconds=3600, cache_size=1)
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        for key in (A, B):  # B's load evicts A's v1: its coefficients stay
            assert http.post(f"/v1/partitions/{key}/predict", json={"rows": rows}).is_success
        assert {(A, 1), (A, 2)} <= set(
            promote_then_gc(registry_path, A, version=3, alias_grace_seconds=0)
        )
        missing = {**rows[0], "price": None}
        r = http.post("/v1/predict", json={"rows": [*_batch(A, [missing]), *_batch(B, rows)]})
    assert r.status_code == 200, r.text  # before: 404 "… has no version 1"
    a, b = r.json()["predictions"]
    assert (a["partition"], a["served_by"], a["version"], a["fallback"]) == (A, A, 3, False)
    assert a["prediction"] == pytest.approx(expected(registry_path, A, [missing], 3)[0])
    assert (b["served_by"], b["version"]) == (B, 1)
    assert b["prediction"] == pytest.approx(expected(registry_path, B, rows, 1)[0])


def test_a_forecast_finding_its_version_gone_rereads_the_alias(
    router: str, registry_path: Path
) -> None:
    promote_then_gc(registry_path, A, alias_grace_seconds=0)
    r = httpx.post(f"{router}/v1/partitions/{A}/forecast", json={"horizon": 2})
    assert r.status_code == 200, r.text
    assert (r.json()["served_by"], r.json()["version"]) == (A, 2)


def test_an_explicit_version_that_is_gone_stays_a_404(router: str, registry_path: Path) -> None:
    promote_then_gc(registry_path, A, alias_grace_seconds=0)
    r = httpx.post(f"{router}/v1/partitions/{A}/predict?version=1", json={"rows": feature_rows()})
    assert r.status_code == 404
    assert "has no version 1" in r.json()["detail"]


@pytest.mark.parametrize("cache_size", [100, 1])
def test_a_version_gc_deletes_leaves_the_routers_memory(
    registry_path: Path, cache_size: int
) -> None:
    """``?version=1`` of a version gc deleted was answered (200) from the cache of a router
    that had loaded it — for as long as it stayed cached — and 404 by one that had not. Now
    the router drops what gc deleted within a refresh or two: the model cache's entry and,
    with a cache of one, the coefficients the evicted model left (``serving.deletions``)."""
    settings = Settings(registry=registry_path, refresh_seconds=0.1, cache_size=cache_size)
    rows = feature_rows()
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=30) as http:

        def ask(version: int) -> httpx.Response:
            return http.post(f"/v1/partitions/{A}/predict?version={version}", json={"rows": rows})

        with Registry.open(registry_path) as reg:
            reg.promote(A, 2)
        assert ask(1).json()["version"] == 1  # v1, no longer production, now in memory
        assert ask(2).status_code == 200  # with a cache of one, v1 is left as coefficients
        assert ask(1).status_code == 200
        assert (A, 1) in collect_old(registry_path)
        deadline = time.monotonic() + 10
        while (r := ask(1)).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert r.status_code == 404, r.text
        assert "has no version 1" in r.json()["detail"]
        v2 = http.post(f"/v2/models/{A}/versions/1/infer", json=v2_body(rows))
        assert v2.status_code == 404 and "has no version 1" in v2.json()["error"], v2.text
        assert http.post(f"/v2/models/{A}/versions/2/infer", json=v2_body(rows)).is_success
        assert ask(2).json()["predictions"] == pytest.approx(expected(registry_path, A, rows, 2))


def collect_old(root: Path) -> list[tuple[str, int]]:
    with Registry.open(root) as reg:
        return collect(reg, keep=1, alias_grace_seconds=0).versions_deleted


def v2_body(rows: list[dict[str, float]]) -> dict[str, object]:
    names = list(rows[0])
    return {
        "inputs": [
            {"name": n, "shape": [len(rows)], "datatype": "FP64", "data": [r[n] for r in rows]}
            for n in names
        ]
    }


def test_following_deletions_reads_one_row_a_refresh_until_gc_deletes(
    registry_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh reads the mark gc rewrites; the versions in memory are looked up only after
    it changed (and once more at the next refresh), and production's never."""
    from serving.deletions import DeletedVersions
    from serving.service import ModelService

    with Registry.open(registry_path) as reg:
        service = ModelService(reg)
        service.start()
        asked: list[list[tuple[str, int]]] = []
        existing = reg.store.existing_versions
        monkeypatch.setattr(
            reg.store, "existing_versions", lambda pairs: asked.append(pairs) or existing(pairs)
        )
        follower = DeletedVersions(service)
        service.cache.get(A, 1)  # production
        service.cache.get(A, 2)  # a candidate
        assert [follower.follow() for _ in range(3)] == [0, 0, 0] and asked == []
        reg.promote(A, 2)
        service.aliases.refresh()
        assert (A, 1) in collect(reg, keep=1, alias_grace_seconds=0).versions_deleted
        assert follower.follow() == 1 and asked == [[(A, 1)]]  # v2 is production's now
        assert (A, 1) not in service.cache.entries()
        assert [follower.follow() for _ in range(3)] == [0, 0, 0] and len(asked) == 1


def test_a_deleted_version_whose_load_ends_after_gc_leaves_the_cache(registry_path: Path) -> None:
    """A cold load of v1 reads its row, then its artifact — here a real FIFO, so its bytes
    come when the test writes them — while gc deletes v1: the load ends after every refresh
    that followed gc had looked (a large artifact from an object store takes seconds), and v1
    stayed cached, answering ?version=1, for as long as it was held. The follower asks about
    versions being loaded too, and drops such a one once its load has ended."""
    import os
    import threading

    from serving.deletions import DeletedVersions
    from serving.service import ModelService

    with Registry.open(registry_path) as reg:
        service = ModelService(reg)
        service.start()
        follower = DeletedVersions(service)
        artifacts = reg.artifacts.root  # type: ignore[attr-defined]
        digest = reg.get_version(A, 1).artifact_sha256
        path = Path(artifacts) / digest[:2] / digest[2:4] / digest
        data = path.read_bytes()
        path.unlink()
        os.mkfifo(path)  # its reader's open waits for a writer, its read for the bytes
        loaded: list[object] = []
        loader = threading.Thread(target=lambda: loaded.append(service.cache.get(A, 1)))
        loader.start()
        writer = os.open(path, os.O_WRONLY)  # opens once the load has opened it to read
        try:
            assert service.cache.loading(A, 1)
            reg.promote(A, 2)
            service.aliases.refresh()
            assert (A, 1) in collect(reg, keep=1, alias_grace_seconds=0).versions_deleted
            assert [follower.follow() for _ in range(3)] == [0, 0, 0]  # nothing held yet
            os.write(writer, data)
        finally:
            os.close(writer)
            loader.join(30)
        assert loaded and (A, 1) in service.cache.entries()  # the late load put it there
        assert follower.follow() == 1
        assert (A, 1) not in service.cache.entries()
        assert follower.follow() == 0


def test_a_router_finding_its_version_gone_for_a_retired_key_serves_the_fallback(
    router: str, registry_path: Path
) -> None:
    """A promoted to v2 and then retired (the CLI, another process), gc with no alias grace
    deleting v1, all before this router's next refresh: its table still said v1, the load
    found v1 gone, and the re-read of production found no row and kept v1, so the key answered
    404 "has no version 1" where a refreshed router answers from the fallback. The re-read
    sees the retirement now: the fallback answers, on the single-key route (A) and the batch
    one (B, whose load is the batch's own)."""
    with Registry.open(registry_path) as reg:
        for key in (A, B):
            reg.promote(key, 2)
        reg.retire([A, B], reason="old target")
        deleted = collect(reg, keep=1, alias_grace_seconds=0).versions_deleted
    assert {(A, 1), (B, 1)} <= set(deleted)
    rows = feature_rows()
    r = httpx.post(f"{router}/v1/partitions/{A}/predict", json={"rows": rows})
    assert r.status_code == 200, r.text  # before: 404 "… has no version 1"
    assert (r.json()["served_by"], r.json()["fallback"]) == ("__fallback__", True)
    store, brand = (part.split("=")[1] for part in B.split(","))
    batch = [{"store": int(store), "brand": brand, **row} for row in rows]
    r = httpx.post(f"{router}/v1/predict", json={"rows": batch})
    assert r.status_code == 200, r.text
    answers = r.json()["predictions"]
    assert {(a["partition"], a["served_by"], a["fallback"]) for a in answers} == {
        (B, "__fallback__", True)
    }


def _batch(key: str, rows: list[dict[str, float]]) -> list[dict[str, object]]:
    store, brand = (part.split("=")[1] for part in key.split(","))
    return [{"store": int(store), "brand": brand, **row} for row in rows]


def _refused(router: str, route: str) -> httpx.Response:
    """``route``'s request for A (B on the batch route), each refusing the fallback: by
    ``fallback=false`` (``predict``, ``batch``, the V2 routes) or by what it is."""
    rows = feature_rows()
    if route == "explain":
        return httpx.get(f"{router}/v1/partitions/{A}/explain")
    if route == "v2 metadata":
        return httpx.get(f"{router}/v2/models/{A}?fallback=false")
    if route == "v2 infer":
        body = {**v2_body(rows), "parameters": {"fallback": False}}
        return httpx.post(f"{router}/v2/models/{A}/infer", json=body)
    if route == "batch?fallback=false":
        return httpx.post(f"{router}/v1/predict?fallback=false", json={"rows": _batch(B, rows)})
    body = {
        "forecast": {"horizon": 2},
        "actuals": {"rows": [{**row, "units": 3.0} for row in rows]},
    }.get(route, {"rows": rows})
    return httpx.post(f"{router}/v1/partitions/{A}/{route}", json=body)


REFUSING = ["predict?fallback=false", "batch?fallback=false", "v2 infer", "v2 metadata"]


@pytest.mark.parametrize("route", [*REFUSING, "forecast", "explain", "actuals"])
def test_a_route_refusing_the_fallback_says_a_retired_key_has_no_model(
    router: str, registry_path: Path, route: str
) -> None:
    """The same race on a route the fallback does not answer (``fallback=false``, a forecast,
    an explanation, actuals): the 404 a refreshed router gives, "no partition … in production",
    not "has no version 1" (actuals: they read the version gc deleted before loading its model)
    nor the fallback's answer; only a request that refused the fallback is told it did (a
    forecast and an explanation were told "the request refused the fallback model")."""
    with Registry.open(registry_path) as reg:
        reg.promote(A, 2)
        reg.promote(B, 2)
        reg.retire([A, B], reason="old target")
        assert {(A, 1), (B, 1)} <= set(collect(reg, keep=1, alias_grace_seconds=0).versions_deleted)
    r = _refused(router, route)
    assert r.status_code == 404, r.text
    detail = r.json()["error" if route.startswith("v2") else "detail"]
    assert f"no partition '{B if 'batch' in route else A}' in production" in detail, r.text
    assert ("refused the fallback" in detail) == (route in REFUSING), detail
    assert "it was retired from v2" in detail, detail


def test_actuals_finding_their_version_gone_go_to_production(
    router: str, registry_path: Path
) -> None:
    """Actuals posted to a router whose table still says v1 after gc deleted it: they were a
    404 "has no version 1" (the version's record read before the model that re-reads the
    alias); now they are scored and kept under the version production points at."""
    promote_then_gc(registry_path, A, alias_grace_seconds=0)
    rows = [{**row, "units": 3.0} for row in feature_rows()]
    r = httpx.post(f"{router}/v1/partitions/{A}/actuals", json={"rows": rows})
    assert r.status_code == 200, r.text
    assert (r.json()["key"], r.json()["version"], r.json()["rows"]) == (A, 2, len(rows))
