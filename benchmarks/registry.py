"""Registry reads at 100,000 versions vs 1,000: each should cost O(1) in the registry's size.

    python benchmarks/registry.py                   # 100,000 and 1,000 versions
    python benchmarks/registry.py --smoke

Each registry is built fast, without training: ``SqlStore.record`` is called directly with
synthetic ``NewVersion`` entities shaped like the pipeline's (two versions per partition, so
``production`` → v1 and ``candidate`` → v2), 1,000 per transaction. Then ten partitions get a
v3 promoted to production, and every read below is timed on random partitions (median of many):
the ones the CLI, the API and the router's alias refresh make. Pages hold 100 partitions;
"after" pages by key (keyset), "offset" skips half the partitions; ``since`` sees 10 changes.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import FEATURES, goal_row, header, median, ratio_line, samples, table, timed

from manymodels.registry.client import Registry
from manymodels.registry.entities import CandidateResult, NewVersion, Run
from manymodels.registry.store import now

BATCH = 1000
CHANGES = 10
SCHEMA = {
    "features": FEATURES,
    "dtypes": dict.fromkeys(FEATURES, "float64"),
    "categorical": [],
    "input": "numpy",
    "target": "y",
    "task": "regression",
    "partition_by": ["pid"],
    "time_column": "t",
}


def version(i: int, v: int) -> NewVersion:
    return NewVersion(
        key=f"pid={i}",
        key_values={"pid": i},
        n_rows=100,
        data_fingerprint=uuid.uuid4().hex,
        estimator="sklearn.linear_model.Ridge",
        params={},
        metric="neg_mean_absolute_error",
        score=-0.4 - v / 100,
        naive_score=-1.2,
        candidates=[CandidateResult("Ridge", "sklearn.linear_model.Ridge", {}, -0.4)],
        feature_schema=SCHEMA,
        artifact_sha256=uuid.uuid4().hex * 2,
        artifact_size=611,
        train_seconds=0.001,
        validation={"strategy": "last", "folds": 1, "rows": 20},
    )


def run(run_id: str, n: int) -> Run:
    return Run(
        run_id=run_id, kind="train", status="running", spec_name="bench", spec_hash="0" * 64,
        spec={"partition_by": ["pid"]}, data_source="<benchmark>", data_fingerprint="0" * 32,
        started_at=now(), ended_at=None, n_partitions=n, n_trained=0, n_skipped=0, n_failed=0,
    )  # fmt: skip


def build(root: Path, n_versions: int) -> tuple[Registry, str, float]:
    """A registry of ``n_versions`` (two per partition) plus ``CHANGES`` promotions after
    the returned ``since`` stamp; also returns the build seconds."""
    reg = Registry(root)
    n = n_versions // 2
    libraries = {"python": "3", "scikit-learn": "1"}

    def fill() -> None:
        for v in (1, 2):
            reg.store.create_run(run(f"build{v}", n))
            for start in range(0, n, BATCH):
                batch = [version(i, v) for i in range(start, min(n, start + BATCH))]
                reg.store.record(f"build{v}", batch, [], libraries=libraries)

    seconds, _ = timed(fill)
    since = now()
    reg.store.create_run(run("changes", CHANGES))
    changed = [version(i, 3) for i in random.sample(range(n), CHANGES)]
    reg.store.record("changes", changed, [], libraries=libraries, promote=lambda v: "bench")
    return reg, since, seconds


def operations(reg: Registry, since: str) -> dict[str, Callable[[int], Any]]:
    n = reg.count_partitions()
    keys = [f"pid={i}" for i in range(n)]
    middle = sorted(keys)[n // 2]
    pick = random.Random(0).choice
    return {
        "list_partitions:first-page": lambda i: reg.list_partitions(limit=100),
        "list_partitions:middle-page-after": lambda i: reg.list_partitions(limit=100, after=middle),
        "list_partitions:middle-page-offset": lambda i: reg.list_partitions(
            limit=100, offset=n // 2
        ),
        "get_partition": lambda i: reg.get_partition(pick(keys)),
        "list_versions": lambda i: reg.list_versions(pick(keys)),
        "resolve_alias": lambda i: reg.store.resolve_alias(pick(keys), "production"),
        "alias_table:since": lambda i: _expect(
            reg.store.alias_table("production", since=since), CHANGES
        ),
        "alias_changes:since": lambda i: _expect(
            reg.store.alias_changes("production", since=since), CHANGES
        ),
    }


def _expect(found: Any, n: int) -> Any:
    if len(found) != n:
        raise RuntimeError(f"expected {n} changes, found {len(found)}")
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--versions", type=int, nargs=2, default=[1_000, 100_000])
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.versions, args.samples = [200, 2_000], 20
    small, large = sorted(args.versions)
    header("registry: reads at scale")
    figures: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="mm-bench-registry-") as tmp:
        for size in (small, large):
            reg, since, seconds = build(Path(tmp) / str(size), size)
            print(f"  built {size:,} versions in {seconds:.1f} s", flush=True)
            try:
                ops = operations(reg, since)
                figures[size] = {
                    name: median(samples(fn, args.samples)) * 1e3 for name, fn in ops.items()
                }
            finally:
                reg.close()

    rows = [
        [
            name,
            figures[small][name],
            figures[large][name],
            figures[large][name] / figures[small][name],
        ]
        for name in figures[large]
    ]
    print(f"\nmedian ms of {args.samples} calls on random partitions:\n")
    print(table(["operation", f"{small:,} versions", f"{large:,} versions", "ratio"], rows))
    goals = [goal_row(f"{name} at {large:,}", figures[large][name], 10, at_most=True, unit=" ms")
             for name in figures[large]]  # fmt: skip
    print("\n" + table(["goal", "measured", "target", "verdict"], goals))
    print("\n" + ratio_line({f"{name}@{large}/{small}": r for name, _, _, r in rows}))


if __name__ == "__main__":
    main()
