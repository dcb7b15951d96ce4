"""Memory: the router's RSS follows its cache size, not the partition count; the training
driver's peak RSS stays bounded at 100,000 partitions.

    python benchmarks/memory.py                     # caches 100 / 1,000 / 10,000 over 10,000
    python benchmarks/memory.py --smoke

Router: a server subprocess per configuration (same settings as ``serve.py``); its RSS is read
from ``/proc/<pid>/status`` after start-up and after one request to every partition (bounded:
exactly N requests, 8 at a time, under a time limit). A second, smaller registry with the
smallest cache shows what N alone costs.

Driver: ``pipeline.train`` of N partitions (R=20, Ridge, on Ray) in a subprocess of its own;
its peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (the driver only, not Ray's
workers, which ``DESIGN.md`` bounds separately by chunk size).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import MiB, goal_row, header, ratio_line, rss_bytes, serving_registry, table
from _server import ROW, served

TOUCH_SECONDS = 900  # hard time bound for touching every partition once


async def touch_all(url: str, n: int, *, connections: int = 8) -> int:
    """One one-row request to each of ``pid=0 … pid=n-1``; returns how many succeeded."""
    import httpx

    keys = iter(range(n))
    ok = 0
    deadline = time.monotonic() + TOUCH_SECONDS

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal ok
        for k in keys:
            if time.monotonic() > deadline:
                return
            path = f"/v1/partitions/pid={k}/predict"
            try:
                r = await client.post(path, json={"rows": [ROW]})
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # a kept-alive connection the server closed as this request went out (uvicorn
                # closes one idle past 5 s: seen once at load 30–50); a dead router fails again
                r = await client.post(path, json={"rows": [ROW]})
            ok += r.status_code == 200

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return ok


def router_rss(n: int, cache: int) -> tuple[int, int, int]:
    """(RSS after start-up, RSS after touching every partition, models loaded)."""
    import httpx

    root = serving_registry(n)
    with served("router", "--registry", str(root), "--cache-size", str(cache)) as server:
        idle = rss_bytes(server.pid)
        ok = asyncio.run(touch_all(server.url, n))
        if ok != n:
            raise RuntimeError(f"only {ok} of {n} partitions answered")
        loaded = httpx.get(f"{server.url}/readyz", timeout=10).json()["models_loaded"]
        return idle, rss_bytes(server.pid), loaded


DRIVER = """
import resource, sys, time
import ray
from _common import bench_spec
from manymodels.pipeline import train
from manymodels.samples import synthetic
import tempfile
n, rows = int(sys.argv[1]), int(sys.argv[2])
df = synthetic(n, rows)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False)
with tempfile.TemporaryDirectory() as tmp:
    t = time.perf_counter()
    s = train(bench_spec(rows), df, tmp + "/registry", backend="ray")
    took = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("DRIVER", s.run.n_trained, before * 1024, peak * 1024, took)
"""


def start_driver(n: int, rows: int) -> subprocess.Popen[str]:
    """A fresh driver training ``n`` partitions; ``driver_peak`` reads what it says."""
    here = str(Path(__file__).parent)
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(n), str(rows)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=here,
    )  # fmt: skip


def driver_peak(driver: subprocess.Popen[str], n: int) -> tuple[int, int, float]:
    """(peak RSS before training, peak RSS after, training seconds) of a fresh driver of
    ``n`` partitions."""
    try:
        stdout, stderr = driver.communicate(timeout=3600)
    finally:
        if driver.poll() is None:  # timed out, or this process is stopping: not left behind
            driver.kill()
            driver.wait()
    if driver.returncode != 0:
        raise RuntimeError(f"driver exited {driver.returncode}: {stderr[-2000:]}")
    line = next(x for x in stdout.splitlines() if x.startswith("DRIVER "))
    trained, before, peak, took = line.split()[1:]
    if int(trained) != n:
        raise RuntimeError(f"driver trained {trained} of {n}")
    return int(before), int(peak), float(took)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, default=10_000)
    p.add_argument("--small", type=int, default=1_000, help="the smaller registry's N")
    p.add_argument("--caches", type=int, nargs="+", default=[100, 1_000, 10_000])
    p.add_argument("--driver-partitions", type=int, default=100_000)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.partitions, args.small, args.caches = 300, 100, [10, 300]
        args.driver_partitions = 500  # the plumbing (2,000 trained for 17-20 s when loaded)
    header("memory: router RSS vs cache size and N; training driver peak RSS")
    n, small, caches = args.partitions, args.small, sorted(args.caches)

    runs = [(n, c) for c in caches] + [(small, caches[0])]
    router = {}
    # The smoke checks the plumbing: its driver and routers run side by side (what they
    # measure is memory, each process its own; only the driver's seconds are the worse for it)
    driver = start_driver(args.driver_partitions, 20) if args.smoke else None
    try:
        if args.smoke:
            for nn in dict.fromkeys(nn for nn, _ in runs):  # built before the routers start
                serving_registry(nn)
            with ThreadPoolExecutor(len(runs)) as pool:
                side = dict(zip(runs, pool.map(lambda r: router_rss(*r), runs), strict=True))
        for nn, c in runs:
            router[nn, c] = side[nn, c] if args.smoke else router_rss(nn, c)
            print(f"  router N={nn:,} cache={c:,}: {router[nn, c][1] / MiB:.0f} MiB", flush=True)
        if driver is None:
            driver = start_driver(args.driver_partitions, 20)
        before, peak, took = driver_peak(driver, args.driver_partitions)
    finally:
        if driver is not None and driver.poll() is None:  # an error above: not left behind
            driver.kill()
            driver.wait()

    rows = [[f"{nn:,}", f"{c:,}", loaded, idle / MiB, rss / MiB]
            for (nn, c), (idle, rss, loaded) in router.items()]  # fmt: skip
    print("\nrouter RSS (MiB), after start-up and after one request to every partition:\n")
    print(table(["N", "cache", "models cached", "RSS idle", "RSS after"], rows))
    lo, hi = caches[0], caches[-1]
    per_model = (router[n, hi][1] - router[n, lo][1]) / (hi - lo)
    per_partition = (router[n, lo][1] - router[small, lo][1]) / (n - small)
    idle_partition = (router[n, lo][0] - router[small, lo][0]) / (n - small)
    print(f"\nper cached model: {per_model / 1024:.1f} KiB; per partition at a fixed cache: "
          f"{per_partition / 1024:.2f} KiB after the sweep, {idle_partition / 1024:.2f} KiB "
          "idle (the alias table)")  # fmt: skip
    print(f"driver: peak RSS {peak / MiB:,.0f} MiB training {args.driver_partitions:,} partitions "
          f"(R=20) in {took:.0f} s; {before / MiB:,.0f} MiB with the data alone")  # fmt: skip

    grows = all(router[n, a][1] < router[n, b][1] for a, b in itertools.pairwise(caches))
    goals = [
        [f"RSS rises with cache ({', '.join(f'{c:,}' for c in caches)})",
         " → ".join(f"{router[n, c][1] / MiB:.0f}" for c in caches) + " MiB", "increasing",
         "MET" if grows else "MISSED"],
        goal_row(f"RSS N={n:,} / N={small:,}, both at cache {lo:,}",
                 router[n, lo][1] / router[small, lo][1], 1.1, at_most=True),
        goal_row(f"driver peak RSS at {args.driver_partitions:,} partitions", peak / 1024**3, 2.0,
                 at_most=True, unit=" GiB"),
    ]  # fmt: skip
    print("\n" + table(["goal", "measured", "target", "verdict"], goals))
    print("\n" + ratio_line({
        f"rss@cache{hi}/rss@cache{lo}": router[n, hi][1] / router[n, lo][1],
        f"rss@N{n}/rss@N{small}": router[n, lo][1] / router[small, lo][1],
        "partition/model-bytes": per_partition / per_model,
        "driver-peak-GiB": peak / 1024**3,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
