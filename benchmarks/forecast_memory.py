"""Memory of ``manymodels forecast --out`` as users run it: above what a forecast of one
partition takes, its peak RSS should follow one chunk of partitions (``forecast_select.CHUNK``,
1,000) × the horizon, not every partition × the horizon — the file is written a chunk at a time.

    python benchmarks/forecast_memory.py            # 1,000 and 5,000 partitions, horizon 1,000
    python benchmarks/forecast_memory.py --smoke    # 50 and 200 partitions, horizon 50

Each forecast is the installed ``manymodels`` command in a process of its own, on the cached
5,000-partition Ridge registry of the other benchmarks (``_common.serving_registry``), writing
Parquet; its peak RSS is the kernel's ``ru_maxrss`` of that process (``os.wait4``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import MiB, goal_row, header, ratio_line, serving_registry, table

GROWTH_GOAL = 1.5  # above one partition: the larger forecast ÷ one chunk's at most


def peak_rss(command: list[str]) -> tuple[float, int]:
    """Seconds and peak RSS in bytes of ``command`` run to completion."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        assert proc.stderr is not None
        raise RuntimeError(f"{' '.join(command[:4])} …: {proc.stderr.read().decode().strip()}")
    return seconds, usage.ru_maxrss * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, a quick check")
    args = parser.parse_args(argv)
    header("manymodels forecast --out: peak memory by partitions", argv)
    small, large, horizon = (50, 200, 50) if args.smoke else (1000, 5000, 1000)
    root = serving_registry(large)
    command = shutil.which("manymodels") or str(Path(sys.executable).with_name("manymodels"))
    rows, figures = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, small, large):
            keys = [a for p in range(n) for a in ("--partitions", f"pid={p}")]
            out = Path(tmp) / f"forecast-{n}.parquet"
            seconds, peak = peak_rss(
                [command, "forecast", "--registry", str(root), "--horizon", str(horizon),
                 "--out", str(out), *([] if n == large else keys)]
            )  # fmt: skip
            figures[n] = peak
            above = (peak - figures[1]) / MiB
            rows.append([f"{n:,}", horizon, f"{n * horizon:,}", f"{seconds:.1f}",
                         f"{peak / MiB:.0f}", f"{above:.0f}"])  # fmt: skip
    print(table(["partitions", "horizon", "rows", "s", "peak RSS MiB", "above 1 MiB"], rows))
    growth = (figures[large] - figures[1]) / max(figures[small] - figures[1], 1)
    print()
    if args.smoke:  # both sizes fit in one chunk: the goal is about more than one
        print("(smoke: no goal; both sizes are within one chunk of 1,000 partitions)")
    else:
        print(table(["goal", "measured", "target", ""], [
            goal_row(f"above-1 peak, {large:,} ÷ {small:,} partitions", growth, GROWTH_GOAL,
                     at_most=True),
        ]))  # fmt: skip
    print(ratio_line({f"peak_above_one_{large}/{small}": growth}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
