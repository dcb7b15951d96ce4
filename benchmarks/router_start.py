"""A router's start, and what its model libraries cost after it, checkout against checkout.

    python benchmarks/router_start.py REGISTRY CHECKOUT [CHECKOUT ...] [--repeat 5]
    python benchmarks/router_start.py --smoke


For each checkout (a directory holding ``manymodels`` and ``serving``, put first on
``PYTHONPATH``), rounds alternating between them: ``manymodels serve`` from its start to the
first ``/readyz`` 200 (wall seconds, and the process's CPU seconds then and 8 s later, once a
background warm-up is done); and, in a started app (TestClient) left alone 20 s, the first
predict's milliseconds, then a full collection's (median of 7) and the objects it walks. A
library imported after the lifespan's ``gc.freeze()`` and never frozen shows in the last two.
REGISTRY is any trained registry with the store sales sample's partition
``store=2,brand=tropicana`` (``manymodels train data-samples/store_sales.toml
data-samples/store_sales.csv``). ``--smoke`` checks the plumbing (two router starts: tens
of seconds, 74 s at load 20): this checkout, one round, the cached 20-partition serving registry
(``_common.serving_registry``), 1 s and 2 s waits for the 8 s and 20 s; its figures mean nothing.
The last line compares each checkout's medians with the first's.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from _common import header, median, ratio_line, serving_registry, table
from _server import ROW as SERVING_ROW

KEY = "store=2,brand=tropicana"
ROW = {"price": 2.5, "deal": 0, "feat": 0}
SMOKE_KEY = "pid=0"  # serving_registry's partitions
IN_APP = """
import gc, json, statistics, sys, time, warnings
warnings.simplefilter("ignore")
from fastapi.testclient import TestClient
from serving.app import create_app
from serving.settings import Settings
client = TestClient(create_app(Settings(registry=sys.argv[1])))
with client:
    time.sleep(float(sys.argv[4]))
    t = time.perf_counter()
    r = client.post(sys.argv[2], json={"rows": [json.loads(sys.argv[3])]})
    first = (time.perf_counter() - t) * 1e3
    assert r.status_code == 200, r.text
    walks = []
    for _ in range(7):
        t = time.perf_counter()
        gc.collect()
        walks.append((time.perf_counter() - t) * 1e3)
    print(json.dumps([first, statistics.median(walks), len(gc.get_objects())]))
"""


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_to_ready(
    registry: Path, checkout: Path, later: float = 8.0
) -> tuple[float, float, float]:
    """Wall and CPU seconds from ``manymodels serve``'s start to its first ``/readyz`` 200,
    and its CPU seconds ``later`` seconds after."""
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(checkout))
    command = [sys.executable, "-m", "manymodels", "serve", "--registry", str(registry)]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        cwd=checkout,  # -m and -c put the working directory first on sys.path
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit(
                        f"{checkout}: manymodels serve exited ({proc.returncode})"
                    ) from None
            time.sleep(0.01)
        wall, cpu = time.perf_counter() - started, _cpu(proc.pid)
        time.sleep(later)
        return wall, cpu, _cpu(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def after_start(
    registry: Path,
    checkout: Path,
    key: str = KEY,
    row: dict[str, float] | None = None,
    idle: float = 20.0,
) -> list[float]:
    """The first predict's ms, a full collection's ms and the objects it walks, in an app
    left alone ``idle`` seconds after its start."""
    path = f"/v1/partitions/{key}/predict"
    env = dict(os.environ, PYTHONPATH=str(checkout))
    body = json.dumps(ROW if row is None else row)
    args = [sys.executable, "-c", IN_APP, str(registry), path, body, str(idle)]
    done = subprocess.run(
        args, env=env, cwd=checkout, capture_output=True, text=True, timeout=300, check=True
    )
    return [float(x) for x in json.loads(done.stdout.splitlines()[-1])]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("registry", type=Path, nargs="?")
    p.add_argument("checkouts", type=Path, nargs="*")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--smoke", action="store_true", help="this checkout, one round, short waits")
    args = p.parse_args()
    header("router_start: a router's start and its model libraries after it")
    key, row, later, idle = KEY, ROW, 8.0, 20.0
    if args.smoke:
        if args.registry is not None or args.checkouts:
            p.error("--smoke takes no REGISTRY or CHECKOUT: it builds its own, on this checkout")
        args.registry, args.repeat = serving_registry(20), 1
        args.checkouts = [Path(__file__).resolve().parent.parent]
        key, row, later, idle = SMOKE_KEY, SERVING_ROW, 1.0, 2.0
    if args.registry is None or not args.checkouts:
        p.error("REGISTRY and at least one CHECKOUT, or --smoke")
    starts: dict[Path, list[tuple[float, float, float]]] = {c: [] for c in args.checkouts}
    apps: dict[Path, list[list[float]]] = {c: [] for c in args.checkouts}
    for _ in range(args.repeat):
        for checkout in args.checkouts:
            starts[checkout].append(start_to_ready(args.registry, checkout, later))
            apps[checkout].append(after_start(args.registry, checkout, key, row, idle))
    print(f"load average {os.getloadavg()[0]:.1f}; medians of {args.repeat}\n")
    medians: dict[Path, list[float]] = {
        c: [median(list(x)) for x in (*zip(*starts[c], strict=True), *zip(*apps[c], strict=True))]
        for c in args.checkouts
    }
    rows = [
        [str(c), f"{wall:.2f}", f"{cpu:.2f}", f"{after:.2f}", f"{first:.0f}", f"{full:.1f}",
         f"{walked:,.0f}"]
        for c, (wall, cpu, after, first, full, walked) in medians.items()
    ]  # fmt: skip
    print(table(["checkout", "start → /readyz s", "CPU at /readyz s", f"CPU {later:g} s later",
                 "first predict ms", "full gc ms", "objects it walks"], rows))  # fmt: skip
    first, last = medians[args.checkouts[0]], medians[args.checkouts[-1]]
    print()
    print(
        ratio_line(
            {
                "last/first readyz wall": last[0] / first[0],
                "last/first first predict": last[3] / first[3],
                "last/first full gc": last[4] / max(first[4], 1e-9),
                "last first predict ms": last[3],
                "last full gc ms": last[4],
            }
        )
    )


if __name__ == "__main__":
    main()
