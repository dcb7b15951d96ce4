"""Stepping readings on a local clock (``3h-local``) against elapsed hours (``3h``).

    python benchmarks/local_hours.py --partitions 100000 --horizon 24 --rounds 3

Times ``timefeatures.advance`` (ISO text in, the forecast's times out) for ``--partitions``
partitions in Europe/Berlin, each ``--horizon`` steps: ``3h`` (elapsed hours, pandas'
``date_range``), ``3h-local`` as committed, and ``3h-local`` before (every partition's every
wall time placed in the zone on its own, ``_local_hours_before.stepped_each``, the copy the
tests check against too). Two tables of last times: ``together``, every partition ends at the
same time (the usual forecast: all read up to the same hour), ``apart``, a last time drawn for
each from 2019–2024 on the 3-hour grid, and ``one`` partition (a router's request; ms, the
mean of ``--calls`` calls). Rounds alternate the order; figures are process CPU seconds (the
machine may be shared), median of the rounds. Checks that before and after give the same times.
``--smoke`` runs it in a second (1,000 partitions, one round).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd
from _common import header, ratio_line
from _local_hours_before import stepped_each

from manymodels import local_hours, timefeatures

ZONE = "Europe/Berlin"
committed = local_hours.advance


def last_times(partitions: int, together: bool) -> list[str]:
    """ISO text of each partition's last reading on Berlin's 3-hour grid (as a version
    records it)."""
    wall = pd.date_range("2019-01-01", "2024-12-31T21:00", freq="3h")
    grid = wall.tz_localize(ZONE, nonexistent="NaT", ambiguous=np.ones(len(wall), dtype=bool))
    grid = grid[~grid.isna()]
    if together:
        return [grid[-1].isoformat()] * partitions
    picks = np.random.default_rng(0).integers(0, len(grid), partitions)
    return [t.isoformat() for t in grid[picks]]


def run(variant: str, last: list[str], horizon: int, calls: int = 1) -> tuple[float, Any]:
    """CPU seconds of one ``advance`` (the mean of ``calls``) and its times."""
    local_hours.advance = stepped_each if variant == "3h-local before" else committed
    frequency = "3h" if variant == "3h" else "3h-local"
    start = time.process_time()
    for _ in range(calls):
        out = timefeatures.advance(last, frequency, horizon, ZONE)
    seconds = (time.process_time() - start) / calls
    local_hours.advance = committed
    return seconds, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, default=100_000)
    ap.add_argument("--horizon", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=300, help="one partition: calls per round")
    ap.add_argument("--smoke", action="store_true", help="1,000 partitions, one round")
    args = ap.parse_args()
    if args.smoke:
        args.partitions, args.rounds, args.calls = 1_000, 1, 10
    header("local-clock hours: advance, 3h vs 3h-local")
    variants = ["3h", "3h-local", "3h-local before"]
    print(f"{args.partitions:,} partitions × {args.horizon} steps, {ZONE}: CPU s (one: ms)\n")
    print("| last times | " + " | ".join(variants) + " | 3h-local / 3h | before / 3h |")
    print("|---|---|---|---|---|---|")
    ratios: dict[str, float] = {}
    for name, partitions, calls in [
        ("together", args.partitions, 1),
        ("apart", args.partitions, 1),
        ("one partition", 1, args.calls),
    ]:
        last = last_times(partitions, name != "apart")
        cpu: dict[str, list[float]] = {v: [] for v in variants}
        outs: dict[str, Any] = {}
        for variant in variants:  # warm: pandas' first calls, the zone's first look-ups
            run(variant, last[:100], args.horizon)
        for r in range(args.rounds):
            for variant in variants if r % 2 == 0 else variants[::-1]:
                seconds, outs[variant] = run(variant, last, args.horizon, calls)
                cpu[variant].append(seconds)
        assert outs["3h-local"].equals(outs["3h-local before"]), "the times differ"
        med = {v: statistics.median(times) for v, times in cpu.items()}
        scale, digits = (1, 3) if partitions > 1 else (1e3, 2)  # one partition: ms
        cells = [
            f"{med[v] * scale:.{digits}f} ({', '.join(f'{t * scale:.{digits}f}' for t in cpu[v])})"
            for v in variants
        ]
        now, before = med["3h-local"] / med["3h"], med["3h-local before"] / med["3h"]
        print(f"| {name} | " + " | ".join(cells) + f" | {now:.2f} | {before:.2f} |")
        tag = name.split()[0]
        ratios[f"local/plain@{tag}"] = now
        ratios[f"before/after@{tag}"] = med["3h-local before"] / med["3h-local"]
    print("\n" + ratio_line(ratios))


if __name__ == "__main__":
    main()
