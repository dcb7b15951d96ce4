"""A monitor page costs the page's work, whatever else the registry holds: the SQLite virtual
machine's instructions (counted on the registry's own connections, as
``test_one_partition_reads`` does) for one page are about the same after 60 more versions of
each partition, and for the page after a key near the start as near the end — no timing,
nothing of ours replaced."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from factories import make_run, new_version, spec_dict
from test_one_partition_reads import instructions, pad

from manymodels.monitoring import pages, report, store
from manymodels.monitoring.live import ErrorSums
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import synthetic

MORE = 60


def test_a_page_reads_the_versions_it_shows_not_every_version(tmp_path: Path) -> None:
    """Three partitions with actuals (whose ``degraded`` reads each version's validation
    record) and a data age (its training profile): reading a page of them read every version
    of each — 61 feature schemas and validation records per partition after 60 challengers
    that were not promoted (a partition retrained daily for a year: 365)."""
    root = tmp_path / "registry"
    train(spec_dict(features=["x0", "x1"]), synthetic(3, 30, n_features=2), root, backend="local")
    with Registry.open(root) as reg:
        keys = sorted(p.key for p in reg.list_partitions())
        versions = [reg.get_version(k, alias="production").version for k in keys]
        sums = ErrorSums(50, 10.0, 4.0, 0, 12.0, 5.0, 0)
        store.add_many_actuals(
            reg.store.engine,
            "2026-01-01",
            [(k, v, sums, None, []) for k, v in zip(keys, versions, strict=True)],
        )

    def page(reg: Registry) -> list[report.PartitionHealth]:
        rows, total = pages.monitor_page(reg.store.engine, "key", 3, 0)
        assert total == 3 and all(r.live_rows == 50 and r.data_time is not None for r in rows)
        return rows

    before = instructions(root, page)
    with Registry.open(root) as reg:
        sha, size = reg.artifacts.put(b"challenger")
        profile = {"features": {f"x{i}": {"counts": [1] * 10} for i in range(50)}}
        for n in range(MORE):
            reg.store.create_run(make_run(f"more{n}", n_partitions=3))
            batch = [new_version(k, sha, size, key_values={"pid": k}) for k in keys]
            for v in batch:
                v.feature_schema["profile"] = profile
            reg.store.record(f"more{n}", batch, [], libraries={}, promote=lambda v: None)
        assert reg.get_version(keys[0], alias="production").version == versions[0]
    after = instructions(root, page)
    assert after < 1.3 * before, (before, after)


def assert_resumes_alike(root: Path, sort: str, order: list[str], early: str, late: str) -> None:
    """The page of 10 after ``early`` and after ``late`` in ``sort`` order are the next 10 of
    ``order`` and cost SQLite about the same number of instructions (within 1.5×)."""

    def page_after(key: str) -> Callable[[Registry], Any]:
        def work(reg: Registry) -> list[str]:
            found = pages.keys_after(reg.store.engine, sort, 10, key)
            assert found == order[order.index(key) + 1 : order.index(key) + 11]
            return found

        return work

    near_start, near_end = (
        instructions(root, page_after(early)),
        instructions(root, page_after(late)),
    )
    assert max(near_start, near_end) < 1.5 * min(near_start, near_end), (near_start, near_end)


def test_the_page_after_a_key_by_age_costs_the_same_anywhere(tmp_path: Path) -> None:
    """``GET /v1/monitor?sort=age&after=…`` (the Health view's "Load more") resumes along
    ix_aliases_age from ``after``'s (creation time, key): its cost is the page's, wherever
    ``after`` is. Written as (created > start) OR (created = start AND key > after), SQLite
    sorted every row after it (and PostgreSQL scanned its index from the first row: 138 ms
    mid-way through 100,000 partitions, 7 ms now). A run records its versions a thousand at
    a time under one time stamp, so ties are the rule: resuming after the 900th row of a tie
    of 1,000 cost 10,243 instructions against 453 after its 10th; the same now."""
    root = tmp_path / "registry"
    train(spec_dict(features=["x0"]), synthetic(3, 30, n_features=1), root, backend="local")
    pad(root, 2000)
    with Registry.open(root) as reg:
        engine = reg.store.engine
        keys, _ = pages.page_keys(engine, "key", 10_000, 0)
        order, _ = pages.page_keys(engine, "age", len(keys), 0)
    assert_resumes_alike(root, "age", order, order[10], order[900])  # both in the first tie


def test_the_page_after_a_key_by_drift_costs_the_same_anywhere(tmp_path: Path) -> None:
    """The same for the drift order (the Health view's default): its resume was
    (score < s) OR (score = s AND key > after), walked from the highest score; bounded by
    score <= s it starts at ``after``'s place. 2,000 partitions' drift rows (as a router's
    flush leaves them: one per partition, its production version, distinct scores)."""
    from sqlalchemy import insert

    from manymodels.registry import schema as t

    root = tmp_path / "registry"
    train(spec_dict(features=["x0"]), synthetic(3, 30, n_features=1), root, backend="local")
    pad(root, 2000)
    with Registry.open(root) as reg:
        engine = reg.store.engine
        keys, _ = pages.page_keys(engine, "key", 10_000, 0)
        with engine.begin() as conn:
            conn.execute(
                insert(t.monitor_drift),
                [
                    {
                        "key": k,
                        "version": 1,
                        "rows": 500.0,
                        "counts_json": "{}",
                        "score": (i * 7919 % 2003) / 2003,
                        "feature": "x",
                        "updated_at": "2026-01-01",
                    }
                    for i, k in enumerate(keys)
                ],
            )
        order, _ = pages.page_keys(engine, "drift", len(keys), 0)
    whole = [r.key for r in report.ranked(report.health(engine), "drift")]
    assert len(order) == len(whole) == len(keys), (len(order), len(whole), len(keys))
    assert order == whole
    assert_resumes_alike(root, "drift", order, order[10], order[-12])
