"""The dashboard's Health view as a user pages it: ``GET /v1/monitor`` on ``manymodels serve``.

A registry of N Ridge partitions (``_common.serving_registry``; its database copied, the
artifacts shared, so the cached registry stays untouched) gets drift rows for half of its
partitions (``monitoring.store.add_samples``, the routers' own write path), then the installed
``manymodels serve`` answers pages of 50: sorted by ``drift``, ``age`` and ``key`` (read a page
at a time in SQL order, ``manymodels.monitoring.pages``) and by ``error`` (every partition's
row built and sorted per request, as every sort did before). Prints a table and the ratio
whole pass / page.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import httpx
from _common import header, median, ratio_line, serving_registry, table
from _server import shipped
from sqlalchemy import and_, select

from manymodels.monitoring import store
from manymodels.registry import schema as t
from manymodels.registry.client import Registry


def add_drift(root: Path, share: float) -> int:
    """Drift rows for every ``1/share``-th production partition, each all in one bin per
    feature (a different bin by key, so scores differ), written as routers write them."""
    a, v = t.aliases.c, t.model_versions.c
    with Registry.open(root) as reg:
        engine = reg.store.engine
        q = (
            select(a.key, a.version, v.feature_schema_json)
            .join(t.model_versions, and_(v.key == a.key, v.version == a.version))
            .where(a.alias == "production")
        )
        with engine.connect() as conn:
            rows = conn.execute(q).all()
        step = max(1, round(1 / share))
        batch = []
        for i, (key, version, schema) in enumerate(rows[::step]):
            profile = json.loads(schema)["profile"]
            counts = {}
            for name, stats in profile["features"].items():
                bins = [0] * len(stats["counts"])
                bins[i % len(bins)] = 200
                counts[name] = bins
            batch.append(store.Sample(key, version, 200, counts, profile))
        for lo in range(0, len(batch), 5000):
            store.add_samples(engine, batch[lo : lo + 5000])
        return len(batch)


def timed_get(url: str, params: dict[str, str | int]) -> tuple[float, int]:
    started = time.perf_counter()
    answer = httpx.get(f"{url}/v1/monitor", params=params, timeout=600)
    answer.raise_for_status()
    return time.perf_counter() - started, int(answer.json()["total"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--smoke", action="store_true", help="300 partitions, 2 repeats: seconds")
    args = p.parse_args()
    n, repeat = (300, 2) if args.smoke else (args.partitions, args.repeat)
    header("monitor pages: GET /v1/monitor on manymodels serve")
    source = serving_registry(n)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copy(source / "registry.db", root / "registry.db")
        (root / "artifacts").symlink_to(source / "artifacts")  # read-only here: no model loads
        drifted = add_drift(root, 0.5)
        print(f"  {n:,} partitions, {drifted:,} with a drift row")
        cases = [
            ("drift, first page", {"sort": "drift", "limit": 50, "offset": 0}),
            (
                "drift, a page past the scored half",
                {"sort": "drift", "limit": 50, "offset": n * 3 // 4},
            ),
            ("age, middle page", {"sort": "age", "limit": 50, "offset": n // 2}),
            ("key, middle page", {"sort": "key", "limit": 50, "offset": n // 2}),
            ("error (whole pass), first page", {"sort": "error", "limit": 50, "offset": 0}),
        ]
        seconds: dict[str, list[float]] = {name: [] for name, _ in cases}
        with shipped(root) as server:
            for _ in range(repeat):
                for name, params in cases:
                    took, total = timed_get(server.url, params)
                    assert total == n, (name, total)
                    seconds[name].append(took)
        rows = [
            [name, f"{median(s) * 1000:,.1f}", f"{max(s) * 1000:,.1f}"]
            for name, s in seconds.items()
        ]
        print()
        print(table(["GET /v1/monitor (limit 50)", "median ms", "max ms"], rows))
        whole = median(seconds["error (whole pass), first page"])
        page = median(seconds["drift, first page"])
        print()
        print(
            ratio_line(
                {f"whole/page@{n}": whole / page, "page_ms": page * 1000, "whole_ms": whole * 1000}
            )
        )


if __name__ == "__main__":
    main()
