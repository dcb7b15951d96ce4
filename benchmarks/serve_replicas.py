"""The router on Ray Serve: 2 replicas behind Serve's proxy vs 1 ``manymodels serve`` process.

    python benchmarks/serve_replicas.py                 # 10,000 partitions, 2 × 10 s per run
    python benchmarks/serve_replicas.py --smoke

Each server is the command as a user starts it (its own subprocess, 127.0.0.1, default cache
of 1,000 models, no access log), loaded by ``wrk -t1 -c64`` (or a bounded httpx client):

* **1 process** — ``manymodels serve``: one uvicorn process;
* **Serve, 2 replicas** — ``manymodels serve --ray-serve --replicas 2`` on embedded Ray: Serve's
  HTTP proxy (one process), two replica processes, Serve's controller;
* **Serve, 1 replica** — the same with ``--replicas 1``: against **1 process**, the cost of the
  proxy hop itself.

Traffic: **hot** (keys uniform over 100 partitions, all cached), **cold** (keys uniform over
all partitions, after a warm-up run over all of them, as ``benchmarks/serve.py`` measures the
single process), and **serial** (hot keys, one connection: per-request latency without
queueing, where the proxy's per-request overhead shows as the difference in p50). Every server
runs on the same cores; Ray is given all of them. The servers run one after another (Serve
takes 20-60 s to start), each scenario ``--repeat`` times after a warm-up run; medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
from _common import header, median, ratio_line, serving_registry, table, wait_quiet
from _server import BODY, Load, Traffic, _wrk, load

READY = "router replica(s) at"  # the line --ray-serve prints once every replica runs


@contextmanager
def command(registry: Path, *flags: str, timeout: float = 300.0) -> Iterator[tuple[str, int]]:
    """``manymodels serve --registry DIR --port P *flags``; yields its URL once it scores a
    row (with --ray-serve: once every replica runs); SIGTERM on exit, as a service manager."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = shutil.which("manymodels", path=str(Path(sys.executable).parent)) or "manymodels"
    cmd = [exe, "serve", "--registry", str(registry), "--port", str(port), *flags]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + timeout
            while not _scores(url) or ("--ray-serve" in flags and READY not in _read(log)):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(cmd[1:])} did not start: {_read(log)[-2000:]}")
                time.sleep(0.5)
            yield url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _read(log: object) -> str:
    log.seek(0)  # type: ignore[attr-defined]
    return str(log.read())  # type: ignore[attr-defined]


def _scores(url: str) -> bool:
    try:
        r = httpx.post(f"{url}/v1/partitions/pid=0/predict", content=BODY, timeout=10,
                       headers={"content-type": "application/json"})  # fmt: skip
    except httpx.TransportError:
        return False
    return r.status_code == 200


ROLES = (("ProxyActor", "proxy"), ("ServeReplica", "replicas"), ("ServeController", "controller"))


def cpu_seconds(root: int) -> dict[str, float]:
    """CPU time (user + system) so far of ``root`` and every process under it, by role: Serve's
    proxy, its replicas, its controller, the command itself, the rest of Ray (Linux)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                parent[int(entry.name)] = int(_stat(int(entry.name))[1])
    tree, todo = {root}, [root]
    while todo:
        pid = todo.pop()
        for child in (c for c, p in parent.items() if p == pid and c not in tree):
            tree.add(child)
            todo.append(child)
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for pid in tree:
        try:
            fields = _stat(pid)
            line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        role = "command" if pid == root else "ray (other)"
        role = next((name for mark, name in ROLES if mark in line), role)
        out[role] = out.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def _stat(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` after the command name: state, ppid, …, utime (11), stime (12)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def run_load(url: str, traffic: Traffic, *, connections: int, seconds: float) -> Load:
    """One load run; with wrk, requests that failed (on a busy machine: a few over wrk's 5 s
    timeout) are counted and reported rather than ending the benchmark."""
    if shutil.which("wrk"):
        return _wrk(url, traffic, connections=connections, seconds=seconds)
    return load(url, traffic, connections=connections, seconds=seconds)


def measure(
    url: str, pid: int, n: int, *, seconds: float, connections: int, repeat: int
) -> tuple[dict[str, list[Load]], dict[str, float]]:
    """hot, cold and serial runs on one server, each after a warm-up run; and the CPU time
    each of its processes spent per hot request (ms)."""
    scenarios = {
        "hot": (Traffic(range(min(100, n))), connections),
        "cold": (Traffic(range(n)), connections),
        "serial": (Traffic(range(min(100, n))), 1),
    }
    out: dict[str, list[Load]] = {name: [] for name in scenarios}
    for traffic, conns in scenarios.values():
        run_load(url, traffic, connections=conns, seconds=seconds)  # warm-up (cold: every key)
    cpu: dict[str, float] = {}
    for _ in range(repeat):
        for name, (traffic, conns) in scenarios.items():
            before = cpu_seconds(pid) if name == "hot" else {}
            out[name].append(run_load(url, traffic, connections=conns, seconds=seconds))
            if name == "hot":
                after, done = cpu_seconds(pid), out[name][-1].requests
                for role, t in after.items():
                    cpu[role] = cpu.get(role, 0.0) + (t - before.get(role, 0.0)) * 1e3 / done
    return out, {role: ms / repeat for role, ms in sorted(cpu.items())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each load run")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.partitions, args.seconds, args.repeat = 200, 2.0, 1
    header("router: Ray Serve replicas vs one process")
    root = serving_registry(args.partitions)
    servers = {
        "1 process": (),
        "Serve, 2 replicas": ("--ray-serve", "--replicas", "2"),
        "Serve, 1 replica": ("--ray-serve", "--replicas", "1"),
    }
    results: dict[str, dict[str, list[Load]]] = {}
    cpu: dict[str, dict[str, float]] = {}
    for name, flags in servers.items():
        for attempt in (1, 2):  # embedded Ray can time out starting on a busy machine
            wait_quiet(max_wait=20)  # a shared machine is rarely quiet: a bounded wait
            try:
                with command(root, "--no-access-log", *flags) as (url, pid):
                    results[name], cpu[name] = measure(
                        url, pid, args.partitions, seconds=args.seconds,
                        connections=args.connections, repeat=args.repeat,
                    )  # fmt: skip
                break
            except RuntimeError as e:
                if attempt == 2 or "did not start" not in str(e):
                    raise
                print(f"({name}: {str(e).splitlines()[-1]}; once more)", flush=True)

    def rps(name: str, scenario: str) -> float:
        return median([r.rps for r in results[name][scenario]])

    def p50(name: str, scenario: str) -> float:
        return median([r.p50_ms for r in results[name][scenario]])

    rows = [
        [name, f"{rps(name, 'hot'):,.0f}", f"{p50(name, 'hot'):.1f}",
         f"{rps(name, 'cold'):,.0f}", f"{p50(name, 'cold'):.1f}",
         f"{rps(name, 'serial'):,.0f}", f"{p50(name, 'serial'):.2f}",
         sum(r.errors for runs in results[name].values() for r in runs)]
        for name in servers
    ]  # fmt: skip
    print(f"{args.partitions:,} partitions, wrk -c{args.connections}, {args.seconds:g} s × "
          f"{args.repeat} per scenario (median), taken on a busy machine")  # fmt: skip
    print(table(["server", "hot req/s", "hot p50 ms", "cold req/s", "cold p50 ms",
                 "serial req/s", "serial p50 ms", "failed"], rows))  # fmt: skip
    roles = ["command", "proxy", "replicas", "controller", "ray (other)"]
    print("\nCPU ms per hot request, by process (user + system; wrk's own not counted)")
    print(table(["server", *roles, "total"], [
        [name, *(f"{cpu[name].get(r, 0.0):.2f}" for r in roles), f"{sum(cpu[name].values()):.2f}"]
        for name in servers
    ]))  # fmt: skip
    overhead = p50("Serve, 1 replica", "serial") - p50("1 process", "serial")
    print(f"\nServe proxy's per-request overhead (serial p50, 1 replica − 1 process): "
          f"{overhead:.2f} ms")  # fmt: skip
    single, two = "1 process", "Serve, 2 replicas"
    print(ratio_line({
        "hot_2replicas_vs_1process": rps(two, "hot") / rps(single, "hot"),
        "cold_2replicas_vs_1process": rps(two, "cold") / rps(single, "cold"),
        "proxy_overhead_ms": overhead,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
