"""A monitor page read in the database's order (``manymodels.monitoring.pages``) is exactly
the slice of the whole-pass ranking (``report.ranked(report.health(...))``), for every order
it answers, on a registry with scored, unscored, stale and fallback drift rows."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from factories import spec_dict

from manymodels.monitoring import pages, report, store
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import synthetic
from serving.local import running_server
from serving.settings import Settings

N = 24


def samples(
    reg: Registry, key: str, rows: int, shift: int, version: int | None = None
) -> store.Sample:
    """A router's sample of ``rows`` rows of ``key``, all in one bin per feature rotated by
    ``shift`` (different shifts give different drift scores; equal shifts tie)."""
    current = reg.get_version(key, alias="production")
    profile = current.feature_schema["profile"]
    counts = {}
    for name, stats in profile["features"].items():
        bins = [0] * len(stats["counts"])
        bins[shift % len(bins)] = rows
        counts[name] = bins
    return store.Sample(key, version or current.version, rows, counts, profile)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pages") / "r"
    spec = spec_dict(features=["x0", "x1", "x2"], fallback={"enabled": True})
    with Registry(root) as reg:
        train(spec, synthetic(N, 30, n_features=3), reg, backend="local")
        engine = reg.store.engine
        keys = sorted(p.key for p in reg.list_partitions() if p.key != FALLBACK_KEY)
        assert len(keys) == N
        batch = [samples(reg, k, 200, shift=i % 7) for i, k in enumerate(keys[:12])]  # ties
        batch += [samples(reg, k, 10, shift=3) for k in keys[12:15]]  # too few rows: no score
        stale = reg.get_version(keys[15], alias="production").version + 1
        batch += [samples(reg, keys[15], 200, shift=5, version=stale)]  # not production's
        batch += [samples(reg, FALLBACK_KEY, 500, shift=4)]  # never listed
        store.add_samples(engine, batch)
    return root


@pytest.mark.parametrize("sort", pages.PAGED_SORTS)
def test_every_page_is_the_slice_of_the_whole_ranking(registry: Path, sort: str) -> None:
    with Registry.open(registry) as reg:
        engine = reg.store.engine
        whole = [r.key for r in report.ranked(report.health(engine), sort)]
        scored = [r for r in report.health(engine) if r.drift is not None]
        assert len(whole) == N and len(scored) == 12  # the fixture's mix is what it says
        for limit, offset in [(5, 0), (5, 5), (7, 8), (50, 0), (3, 11), (4, 12), (10, 30)]:
            keys, total = pages.page_keys(engine, sort, limit, offset)
            assert total == N
            assert keys == whole[offset : offset + limit], (sort, limit, offset)


@pytest.mark.slow  # a real router (~5-12 s on a busy machine)
def test_the_router_pages_the_monitor_without_the_whole_pass(registry: Path) -> None:
    """Over HTTP the paged orders answer the same rows as the whole pass (which ``error``
    still takes), page after page."""
    with Registry.open(registry) as reg:
        whole = report.ranked(report.health(reg.store.engine), "drift")
    with running_server(Settings(registry=registry)) as url:
        seen = []
        for offset in range(0, N, 10):
            page = httpx.get(
                f"{url}/v1/monitor", params={"sort": "drift", "limit": 10, "offset": offset}
            )
            assert page.status_code == 200, page.text
            assert page.json()["total"] == N
            seen += page.json()["partitions"]
        error = httpx.get(f"{url}/v1/monitor", params={"sort": "error", "limit": 5})
        assert error.status_code == 200 and error.json()["total"] == N
    assert [p["key"] for p in seen] == [r.key for r in whole]
    assert [p["drift"] for p in seen] == [r.drift for r in whole]
    assert seen[0]["drift"] is not None and seen[-1]["drift"] is None


def test_an_order_no_index_answers_is_refused() -> None:
    with pytest.raises(ValueError, match="error"):
        pages.page_keys(None, "error", 10, 0)  # type: ignore[arg-type]


def test_two_versions_of_one_partition_in_one_flush_keep_one_drift_row(tmp_path: Path) -> None:
    """A router that scored two versions of a partition since its last flush (a promotion,
    then a rollback) hands both samples over: the flush keeps one drift row, of the version
    put last — the one it serves (``production_last``) — instead of failing the whole flush
    on the table's unique key (``manymodels demo`` printed that warning)."""
    from serving.monitor import production_last

    with Registry(tmp_path / "r") as reg:
        train(spec_dict(features=["x0"]), synthetic(3, 30, n_features=1), reg, backend="local")
        engine = reg.store.engine
        keys = sorted(p.key for p in reg.list_partitions() if p.key != FALLBACK_KEY)
        live = reg.get_version(keys[0], alias="production").version
        older, serving = (
            samples(reg, keys[0], 200, 1, version=live + 1),
            samples(reg, keys[0], 200, 2),
        )
        other = samples(reg, keys[1], 200, 3)
        batch = production_last([serving, other, older], {keys[0]: live, keys[1]: 1}.get)
        assert batch.index(older) < batch.index(serving)  # per partition, production last
        store.add_samples(engine, batch)
        rows = store.drift_rows(engine, keys[:2])
        assert rows[keys[0]].version == live and keys[1] in rows
