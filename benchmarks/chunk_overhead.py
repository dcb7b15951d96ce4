"""Per-partition overhead of one training chunk, measured inside one process.

    python benchmarks/chunk_overhead.py --partitions 5000 --rows 60 --rounds 2 --without splits
    python benchmarks/chunk_overhead.py --partitions 5000 --rows 60 --rounds 2 --without checks

Trains one chunk of ``--partitions`` synthetic partitions (a time column, last-8 validation,
two candidates: a Ridge grid and a DecisionTreeRegressor) with ``train_chunk`` as a worker
task does, twice a round: as committed, and without one saving (the code before it):
``splits``, the chunk's ``SplitsByCount`` replaced by one that computes every partition's
splits; ``checks``, scikit-learn's parameter checks kept on every fit
(``training.param_checks``). Rounds alternate the order.
It reports each variant's process CPU time (not wall time: the machine may be shared) and
checks that both produced the same versions: scores, candidates, artifact sha256.
``--smoke`` runs it in seconds (50 partitions, one round).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from manymodels.artifacts import LocalArtifactStore
from manymodels.data import prepare
from manymodels.spec import Spec
from manymodels.training import chunk, splits

unchecked = chunk.fits_unchecked


class Uncached(splits.SplitsByCount):
    """Every partition's splits computed again: the chunk before ``SplitsByCount``."""

    def __call__(self, n: int, *, key: str, time_ordered: bool | None = None) -> list[Any]:
        return splits.validation_splits(n, self.spec, key=key, time_ordered=time_ordered)


@contextmanager
def checked(*args: Any, **kwargs: Any) -> Iterator[None]:
    """Every fit checks its parameters: the chunk before ``param_checks``."""
    yield


def frame(partitions: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = partitions * rows
    x = rng.normal(size=(n, 2))
    pid = np.repeat(np.arange(partitions), rows)
    y = x @ [2.0, -1.0] + pid % 7 + rng.normal(scale=0.1, size=n)
    t = np.tile(np.arange(rows), partitions)
    return pd.DataFrame({"pid": pid, "t": t, "x0": x[:, 0], "x1": x[:, 1], "y": y})


def spec() -> Spec:
    return Spec.from_dict(
        {
            "name": "overhead",
            "partition_by": ["pid"],
            "target": "y",
            "time_column": "t",
            "features": ["x0", "x1"],
            "validation": {"strategy": "last", "size": 8},
            "candidates": [
                {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [0.1, 1.0]}},
                {"estimator": "sklearn.tree.DecisionTreeRegressor", "params": {"max_depth": [3]}},
            ],
        }
    )


def run(table: Any, sp: Spec, root: Path, cached: bool, without: str) -> tuple[float, list[Any]]:
    if without == "splits":
        chunk.SplitsByCount = splits.SplitsByCount if cached else Uncached  # type: ignore[misc]
    else:
        chunk.fits_unchecked = unchecked if cached else checked  # type: ignore[assignment]
    store = LocalArtifactStore(root)
    start = time.process_time()
    out = chunk.train_chunk(table, sp, store)
    return time.process_time() - start, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, default=5000)
    ap.add_argument("--rows", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--without", choices=["splits", "checks"], default="splits")
    ap.add_argument("--smoke", action="store_true", help="50 partitions, one round")
    args = ap.parse_args()
    if args.smoke:
        args.partitions, args.rounds = 50, 1
    sp = spec()
    table, _ = prepare(sp, frame(args.partitions, args.rows))
    cpu: dict[str, list[float]] = {"with": [], "without": []}
    results: dict[str, list[Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = ["with", "without"]
            for name in order if r % 2 == 0 else order[::-1]:
                root = Path(tmp) / f"{name}{r}"
                seconds, out = run(table, sp, root, name == "with", args.without)
                cpu[name].append(seconds)
                results[name] = [replace(v, train_seconds=0.0) for v in out]
    assert results["with"] == results["without"], "the versions differ"
    print(f"| variant (without: {args.without}) | CPU s per round | ms/partition (min) |")
    print("|---|---|---|")
    for name, times in cpu.items():
        per = 1e3 * min(times) / args.partitions
        print(f"| {name} | {', '.join(f'{t:.2f}' for t in times)} | {per:.3f} |")
    ratio = min(cpu["with"]) / min(cpu["without"])
    print(f"ratio: CPU with/without = {ratio:.3f} (identical versions: {len(results['with'])})")


if __name__ == "__main__":
    main()
