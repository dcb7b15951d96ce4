"""The router's batch path in process, this checkout against another commit.

    python benchmarks/batch_path.py --against 07de2e6

``batch.plan`` + ``batch.cached`` + ``batch.score`` of 100 rows over 100 cached partitions of
the cached 10,000-partition serving registry (``_common.serving_registry``): what a
``POST /v1/predict`` of that batch costs past HTTP and JSON. The other commit runs from a git
worktree, in its own process, and the two take turns round by round, so a change to the path
is measured apart from the machine's drift between whole HTTP runs (``serve.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import header, ratio_line, serving_registry, table

CALLS = 200  # per timed sample
SAMPLES = 15  # per round


def measure(registry: str, calls: int = CALLS, samples: int = SAMPLES) -> float:
    """Median µs of one 100-partition batch in this process's checkout."""
    from manymodels.registry import Registry
    from serving import batch
    from serving.service import ModelService

    with Registry.open(registry) as reg:
        service = ModelService(reg)
        service.start()
        # the stored document, as every commit reads it (older ones have no typed schema)
        features = reg.get_version("pid=0").feature_schema["features"]
        rows = [{"pid": i, **dict.fromkeys(features, 0.5)} for i in range(100)]

        def once() -> None:
            plan = batch.plan(service, rows)
            batch.score(service, plan, rows, models=batch.cached(service, plan))

        for _ in range(calls):  # loads the 100 models, warms every cache
            once()
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            for _ in range(calls):
                once()
            times.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(times)


def _child(checkout: Path, registry: Path, smoke: bool) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(
        [sys.executable, __file__, "--measure", str(registry), *(["--smoke"] if smoke else [])],
        env=env, cwd=checkout, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--against", help="the commit to compare with (a git revision)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="against HEAD, 100 partitions: ~30 s")
    p.add_argument("--measure", help=argparse.SUPPRESS)  # a child: one figure on stdout
    args = p.parse_args()
    if args.measure:
        print(measure(args.measure, *((10, 3) if args.smoke else ())))
        return
    if args.smoke:
        args.against, args.rounds = args.against or "HEAD", 1
    if not args.against:
        p.error("--against REV is required")
    header("batch path in process: this checkout vs another commit")
    registry = serving_registry(100 if args.smoke else 10_000)
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "other"
        subprocess.run(["git", "-C", str(here), "worktree", "add", "-q", "--detach",
                        str(other), args.against], check=True)  # fmt: skip
        try:
            ours, theirs = [], []
            for _ in range(args.rounds):  # turns: neither side always runs on a warmer machine
                theirs.append(_child(other, registry, args.smoke))
                ours.append(_child(here, registry, args.smoke))
        finally:
            subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(other)],
                           check=False)  # fmt: skip
    rows = [
        [args.against, *(f"{t:.1f}" for t in theirs)],
        ["this checkout", *(f"{t:.1f}" for t in ours)],
    ]
    print(
        table(["µs per 100-partition batch", *(f"round {i + 1}" for i in range(args.rounds))], rows)
    )
    print(ratio_line({"this/other": statistics.median(ours) / statistics.median(theirs)}))


if __name__ == "__main__":
    main()
