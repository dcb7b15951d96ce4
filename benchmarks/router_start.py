"""A router's start, and what its model libraries cost after it, checkout against checkout.

    python benchmarks/router_start.py REGISTRY CHECKOUT [CHECKOUT ...] [--repeat 5]

For each checkout (a directory holding ``manymodels`` and ``serving``, put first on
``PYTHONPATH``), rounds alternating between them: ``manymodels serve`` from its start to the
first ``/readyz`` 200 (wall seconds, and the process's CPU seconds then and 8 s later, once a
background warm-up is done); and, in a started app (TestClient) left alone 20 s, the first
predict's milliseconds, then a full collection's (median of 7) and the objects it walks. A
library imported after the lifespan's ``gc.freeze()`` and never frozen shows in the last two.
REGISTRY is any trained registry with the store sales sample's partition
``store=2,brand=tropicana`` (``manymodels train data-samples/store_sales.toml
data-samples/store_sales.csv``).
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

from _common import median

KEY = "store=2,brand=tropicana"
ROW = {"price": 2.5, "deal": 0, "feat": 0}
IN_APP = """
import gc, json, statistics, sys, time, warnings
warnings.simplefilter("ignore")
from fastapi.testclient import TestClient
from serving.app import create_app
from serving.settings import Settings
client = TestClient(create_app(Settings(registry=sys.argv[1])))
with client:
    time.sleep(20)
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


def start_to_ready(registry: Path, checkout: Path) -> tuple[float, float, float]:
    """Wall and CPU seconds from ``manymodels serve``'s start to its first ``/readyz`` 200,
    and its CPU seconds 8 s later."""
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
        time.sleep(8)
        return wall, cpu, _cpu(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def after_start(registry: Path, checkout: Path) -> list[float]:
    """The first predict's ms, a full collection's ms and the objects it walks, in an app."""
    path = f"/v1/partitions/{KEY}/predict"
    env = dict(os.environ, PYTHONPATH=str(checkout))
    args = [sys.executable, "-c", IN_APP, str(registry), path, json.dumps(ROW)]
    done = subprocess.run(
        args, env=env, cwd=checkout, capture_output=True, text=True, timeout=300, check=True
    )
    return [float(x) for x in json.loads(done.stdout.splitlines()[-1])]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("registry", type=Path)
    p.add_argument("checkouts", type=Path, nargs="+")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    starts: dict[Path, list[tuple[float, float, float]]] = {c: [] for c in args.checkouts}
    apps: dict[Path, list[list[float]]] = {c: [] for c in args.checkouts}
    for _ in range(args.repeat):
        for checkout in args.checkouts:
            starts[checkout].append(start_to_ready(args.registry, checkout))
            apps[checkout].append(after_start(args.registry, checkout))
    print(f"load average {os.getloadavg()[0]:.1f}; medians of {args.repeat}")
    for checkout in args.checkouts:
        wall, cpu, later = (median(list(x)) for x in zip(*starts[checkout], strict=True))
        first, full, walked = (median(list(x)) for x in zip(*apps[checkout], strict=True))
        print(
            f"{checkout}: start to /readyz {wall:.2f} s wall, {cpu:.2f} s CPU ({later:.2f} s "
            f"8 s later); first predict {first:.0f} ms; full gc {full:.1f} ms over "
            f"{walked:,.0f} objects"
        )


if __name__ == "__main__":
    main()
