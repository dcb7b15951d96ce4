"""Registry reads and writes at 100,000 versions vs 1,000, on SQLite and on PostgreSQL: each
should cost O(1) in the registry's size.

    python benchmarks/registry.py                   # 100,000 and 1,000 versions, both databases
    python benchmarks/registry.py --db postgresql   # one of them
    python benchmarks/registry.py --smoke           # SQLite only, unless --db says otherwise

Each registry is built fast, without training: ``SqlStore.record`` is called directly with
synthetic ``NewVersion`` entities shaped like the pipeline's (two versions per partition, so
``production`` → v1 and ``candidate`` → v2), 1,000 per transaction. Then ten partitions get a
v3 promoted to production, and every read below is timed on random partitions (median of many):
the ones the CLI, the API and the router's alias refresh make. Pages hold 100 partitions;
"after" pages by key (keyset), "offset" skips half the partitions; ``since`` sees 10 changes.
Writes are timed last: one version recorded in its own transaction (as a router's retrain
does), and one promotion.

PostgreSQL is a throw-away server started here from the ``pgserver`` wheel's binaries (the
tests' ``tests/registry_contract/pgcluster.py``, dev extra), on a unix socket, with
``fsync=off``: writes cost what the server's work costs, not what a disk's flush does.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
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


def version(i: int, v: int, artifact: str | None = None) -> NewVersion:
    """Partition ``i``'s version ``v``; ``artifact``: a stored digest (``promote`` checks the
    artifact is there and intact, as a reader would), else one that names nothing."""
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
        artifact_sha256=artifact or uuid.uuid4().hex * 2,
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


def build(root: Path, n_versions: int, db_url: str | None = None) -> tuple[Registry, str, float]:
    """A registry of ``n_versions`` (two per partition) plus ``CHANGES`` promotions after
    the returned ``since`` stamp; also returns the build seconds."""
    reg = Registry(root, db_url=db_url)
    n = n_versions // 2
    libraries = {"python": "3", "scikit-learn": "1"}
    model, _ = reg.artifacts.put(b"the benchmark's model bytes")  # every version promoted names it

    def fill() -> None:
        for v in (1, 2):
            reg.store.create_run(run(f"build{v}", n))
            for start in range(0, n, BATCH):
                batch = [version(i, v, model) for i in range(start, min(n, start + BATCH))]
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
    shuffled = random.Random(1).sample(keys, n)
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
        # writes last: they change what the reads above count
        # a partition at most once per run: ``i`` is never repeated, and ``shuffled`` covers it
        "record:one-version": lambda i: reg.store.record(
            "writes", [version(int(shuffled[i % n][4:]), 4)], [], libraries={"python": "3"}
        ),
        "promote": lambda i: reg.promote(pick(keys), 1 + i % 2),
    }


READS = 8  # the first eight operations read; the goal (≤ 10 ms) is theirs


@contextlib.contextmanager
def postgres() -> Iterator[Callable[[], str] | None]:
    """A function making a new database on a throw-away PostgreSQL server, or ``None`` when
    its binaries or driver are not installed."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "registry_contract"))
    try:
        import psycopg  # noqa: F401
        from pgcluster import PostgresServer, find_bin_dir
    except ImportError:
        yield None
        return
    bin_dir = find_bin_dir()
    if bin_dir is None:
        yield None
        return
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server.database
    finally:
        server.stop()


def _expect(found: Any, n: int) -> Any:
    if len(found) != n:
        raise RuntimeError(f"expected {n} changes, found {len(found)}")
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--versions", type=int, nargs=2, default=[1_000, 100_000])
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--db", nargs="+", choices=["sqlite", "postgresql"], default=None)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.versions, args.samples = [200, 2_000], 20
    databases = args.db or (["sqlite"] if args.smoke else ["sqlite", "postgresql"])
    small, large = sorted(args.versions)
    header("registry: reads and writes at scale")
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mm-bench-registry-") as tmp, postgres() as new_db:
        for db in databases:
            if db == "postgresql" and new_db is None:
                print("\npostgresql: skipped (no pgserver binaries or psycopg: pip install "
                      "-e '.[dev]')")  # fmt: skip
                continue
            figures: dict[int, dict[str, float]] = {}
            for size in (small, large):
                url = new_db() if db == "postgresql" and new_db is not None else None
                reg, since, seconds = build(Path(tmp) / f"{db}-{size}", size, url)
                print(f"  {db}: built {size:,} versions in {seconds:.1f} s", flush=True)
                try:
                    reg.store.create_run(run("writes", 1))
                    ops = operations(reg, since)
                    figures[size] = {
                        name: median(samples(fn, args.samples)) * 1e3 for name, fn in ops.items()
                    }
                finally:
                    reg.close()
            ratios.update(report(db, figures, small, large, args.samples))
    print("\n" + ratio_line(ratios))


def report(
    db: str, figures: dict[int, dict[str, float]], small: int, large: int, n: int
) -> dict[str, float]:
    """Print one database's table and goals; its ratios (SQLite's keys unprefixed)."""
    names = list(figures[large])
    rows = [[name, figures[small][name], figures[large][name],
             figures[large][name] / figures[small][name]] for name in names]  # fmt: skip
    print(f"\n{db}: median ms of {n} calls on random partitions:\n")
    print(table(["operation", f"{small:,} versions", f"{large:,} versions", "ratio"], rows))
    goals = [goal_row(f"{db} {name} at {large:,}", figures[large][name], 10, at_most=True,
                      unit=" ms") for name in names[:READS]]  # fmt: skip
    print("\n" + table(["goal", "measured", "target", "verdict"], goals))
    prefix = "" if db == "sqlite" else "pg:"
    return {
        f"{prefix}{name}@{large}/{small}": figures[large][name] / figures[small][name]
        for name in names
    }


if __name__ == "__main__":
    main()
