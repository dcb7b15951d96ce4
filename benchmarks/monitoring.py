"""Monitoring overhead: the router with drift sampling on vs off, in the same run.

    python benchmarks/monitoring.py                 # 10,000 partitions, 3 × 10 s per scenario
    python benchmarks/monitoring.py --smoke

Two routers (``create_app`` under uvicorn, as ``benchmarks/serve.py``'s in-process router) over
one registry, one with monitoring on (flushing every ``--flush-seconds``, 2 s here so that
flushes fall inside every run), one with it off; each loaded with one-row requests over 100
hot partitions and with 100-row batches over 100 partitions, interleaved within each repeat.
Goal: throughput on / off ≥ 0.9. Then, in this process: the sampler's memory when it holds
its bound (2,000 partitions × 64 rows), whatever the number of partitions served.
"""

from __future__ import annotations

import argparse
import json
import tracemalloc
from contextlib import ExitStack

from _common import goal_row, header, median, ratio_line, serving_registry, table, wait_quiet
from _server import ROW, Load, Traffic, load, served, start_together

HOT = 100
BATCH = 100


def sampler_memory(partitions: int) -> tuple[int, int]:
    """Bytes the sampler holds after one row of each of ``partitions`` partitions, 64 times
    over (rows as a request's JSON would give them), and the rows it holds."""
    from serving.monitor import RowSampler

    sampler = RowSampler()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(64):
        for k in range(partitions):
            sampler.offer(f"pid={k}", 1, [dict(ROW)])
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used, sampler.held()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--flush-seconds", type=float, default=2.0)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.partitions, args.seconds, args.repeat, args.connections = 300, 1.0, 1, 8
    header("monitoring: router throughput with drift sampling on vs off")
    root = serving_registry(args.partitions)
    over = [{"pid": i % HOT, **ROW} for i in range(BATCH)]
    traffic = {
        "one row, 100 hot partitions": Traffic(range(0, HOT)),
        f"batch: {BATCH} rows over {HOT} partitions": Traffic(
            range(1), "/v1/predict", json.dumps({"rows": over})
        ),
    }
    runs: dict[tuple[str, str], list[Load]] = {}
    with ExitStack() as stack:
        flags = ("--registry", str(root), "--flush-seconds", str(args.flush_seconds))
        servers = start_together(  # both up and idle before any load
            stack, {"on": served("router", *flags), "off": served("router", *flags, "--no-monitor")}
        )
        # warm-up: fills the caches (not in the smoke, which checks the plumbing, as serve.py's)
        for t in traffic.values() if not args.smoke else ():
            for server in servers.values():
                load(server.url, t, connections=args.connections, seconds=min(2, args.seconds))
        for rep in range(args.repeat):
            for name, t in traffic.items():
                for mode, server in servers.items():
                    if not args.smoke:
                        wait_quiet(max_wait=60)
                    r = load(server.url, t, connections=args.connections, seconds=args.seconds)
                    runs.setdefault((name, mode), []).append(r)
                    print(f"  {name:<36} monitoring {mode:<3} run {rep + 1}: {r.rps:8.0f} req/s "
                          f" p99 {r.p99_ms:6.2f} ms  errors {r.errors}", flush=True)  # fmt: skip
    rows = []
    ratios: dict[str, float] = {}
    for name in traffic:
        on = median([r.rps for r in runs[(name, "on")]])
        off = median([r.rps for r in runs[(name, "off")]])
        ratios[name] = on / off
        p99_on = median([r.p99_ms for r in runs[(name, "on")]])
        p99_off = median([r.p99_ms for r in runs[(name, "off")]])
        rows.append([name, f"{on:,.0f}", f"{off:,.0f}", f"{on / off:.2f}",
                     f"{p99_on:.2f} / {p99_off:.2f}"])  # fmt: skip
    print(f"\n{args.partitions:,} partitions, {args.connections} connections, "
          f"{args.seconds:g} s per run, medians of {args.repeat}; flush every "
          f"{args.flush_seconds:g} s\n")  # fmt: skip
    print(table(["traffic", "on req/s", "off req/s", "on/off", "p99 ms on / off"], rows))
    used, held = sampler_memory(1_000 if args.smoke else 100_000)
    print(f"\nsampler memory at its bound ({held:,} rows held, offered by "
          f"{1_000 if args.smoke else 100_000:,} partitions): {used / 2**20:.1f} MiB")  # fmt: skip
    worst = min(ratios.values())
    print()
    goal = goal_row("throughput on/off, worst traffic", worst, 0.9, at_most=False)
    print(table(["goal", "measured", "target", "verdict"], [goal]))
    print(ratio_line({"on_off": worst}))


if __name__ == "__main__":
    main()
