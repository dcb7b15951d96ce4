"""Servers under test, each in a subprocess of its own, and a bounded load generator.

    python benchmarks/_server.py bare                       # one in-memory Ridge, inline
    python benchmarks/_server.py router --registry DIR --cache-size 1000   # in-process, quiet

Every server binds 127.0.0.1 on an ephemeral port, prints ``PORT <n>`` and runs uvicorn with
the settings ``manymodels serve`` uses (one worker, ``log_level="info"``, uvicorn's access log
off, ``ws="none"``). ``served(...)`` starts one from a benchmark and yields its URL and pid;
``shipped(...)`` does the same for the ``manymodels serve`` command itself, as a user starts it
(default flags and logging; its stderr goes to a file, as under systemd or docker).
``load(...)`` drives a server with ``wrk`` (a Lua script picks a key per request) or, without
wrk, a bounded asyncio + httpx client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from _common import FEATURES, median, percentile
from pydantic import BaseModel

ROW = {f: 0.1 * (j + 1) for j, f in enumerate(FEATURES)}
BODY = json.dumps({"rows": [ROW]})
K = TypeVar("K")


# ------------------------------------------------------------------------------------------
# the server side (runs in the subprocess)
# ------------------------------------------------------------------------------------------
class Body(BaseModel):
    rows: list[dict[str, Any]]


def bare_app() -> Any:
    """What a user writes without manymodels: one model in memory, a pydantic body."""
    import numpy as np
    from fastapi import FastAPI
    from sklearn.linear_model import Ridge

    from manymodels.samples import synthetic

    df = synthetic(1, 100)
    model = Ridge().fit(df[FEATURES].to_numpy(np.float64), df["y"].to_numpy())

    app = FastAPI()

    async def score(key: str, body: Body) -> dict[str, Any]:
        X = np.array([[row[f] for f in FEATURES] for row in body.rows], dtype=np.float64)
        return {"partition": key, "predictions": model.predict(X).tolist()}

    app.post("/v1/partitions/{key:path}/predict")(score)
    app.get("/healthz")(lambda: {"status": "ok"})
    return app


def serve_main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["bare", "router"])
    p.add_argument("--registry", type=Path)
    p.add_argument("--cache-size", type=int, default=1000)
    p.add_argument("--no-monitor", action="store_true", help="no drift sampling (monitoring.py)")
    p.add_argument("--flush-seconds", type=float, default=60.0)
    args = p.parse_args()
    import uvicorn

    if args.kind == "router":
        from serving.app import create_app
        from serving.settings import Settings

        settings = Settings(
            registry=args.registry, cache_size=args.cache_size,
            monitor=not args.no_monitor, monitor_flush_seconds=args.flush_seconds,
        )  # fmt: skip
        app = create_app(settings)
    else:
        app = bare_app()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    # what serving/command.py passes to uvicorn.run
    config = uvicorn.Config(app, log_level="info", access_log=False, workers=1, ws="none")
    uvicorn.Server(config).run(sockets=[sock])


# ------------------------------------------------------------------------------------------
# the client side
# ------------------------------------------------------------------------------------------
@dataclass
class Server:
    url: str
    pid: int


@contextmanager
def served(kind: str, *args: str, timeout: float = 120.0) -> Iterator[Server]:
    """Start ``_server.py kind *args``; yield once ``/healthz`` answers; stop it on exit."""
    cmd = [sys.executable, str(Path(__file__).with_name("_server.py")), kind, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the port comes before the app (and registry) starts
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"server {kind} did not start (exit code {proc.wait(10)})")
    with _running(proc, f"http://127.0.0.1:{int(line.split()[1])}", kind, timeout) as server:
        yield server


@contextmanager
def shipped(
    registry: Path,
    *flags: str,
    timeout: float = 120.0,
    checkout: Path | None = None,
    body: str = BODY,
) -> Iterator[Server]:
    """``manymodels serve --registry DIR --port P *flags`` as a user starts it: the installed
    command (start-up and all), default logging to stderr, here a file. With ``checkout``
    (another commit's git worktree) the same command from that source tree, as
    ``python -m manymodels.cli`` with it first on the path. ``body``: the request whose
    answer says the server is ready."""
    with socket.socket() as s:  # a free port; the command binds it a moment later
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = shutil.which("manymodels", path=str(Path(sys.executable).parent)) or "manymodels"
    head = [command] if checkout is None else [sys.executable, "-m", "manymodels.cli"]
    cmd = [*head, "serve", "--registry", str(registry), "--port", str(port), *flags]
    env = None
    if checkout is not None:  # first on the path, before whatever the caller's had
        path = os.pathsep.join(p for p in (str(checkout), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path}
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=stderr, text=True, env=env, cwd=checkout
        )
        started = False
        try:
            url = f"http://127.0.0.1:{port}"
            with _running(proc, url, "manymodels serve", timeout, body) as srv:
                started = True
                yield srv
        except RuntimeError:
            if started:
                raise
            stderr.seek(0)
            raise RuntimeError(f"manymodels serve failed: {stderr.read()[-2000:]}") from None


def start_together(
    stack: ExitStack, managers: dict[K, AbstractContextManager[Server]]
) -> dict[K, Server]:
    """Enter every server's context at once, each in a thread of its own, and leave them on
    ``stack``'s way out: a start is mostly a new process's imports and a wait for
    ``/healthz``, so several overlap instead of adding up. What is measured comes after they
    are all up. If one fails, those that started are stopped (by ``stack``) and its error is
    raised."""
    with ThreadPoolExecutor(max_workers=max(1, len(managers))) as pool:
        futures = {key: pool.submit(cm.__enter__) for key, cm in managers.items()}
    started: dict[K, Server] = {}
    error: BaseException | None = None
    for key, future in futures.items():
        try:
            started[key] = future.result()
        except BaseException as exc:  # raised below, once the others are on the stack
            error = error or exc
            continue
        stack.push(managers[key])  # its __exit__ runs on the stack's way out
    if error is not None:
        raise error
    return started


@contextmanager
def _running(
    proc: subprocess.Popen[str], url: str, name: str, timeout: float, body: str = BODY
) -> Iterator[Server]:
    """Wait until ``proc`` answers ``/healthz`` and scores ``body``'s row; stop it on exit.

    One client for every probe: ``httpx.get`` builds a client, and with it an SSL context
    (the CA bundle parsed: ~30 ms of CPU quiet, ~0.2 s loaded), per call; ten a second took
    a quarter of a core from the server being waited for."""
    import httpx

    try:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=url) as client:
            while True:
                try:
                    if client.get("/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server {name} is not healthy (exit code {proc.poll()})")
                time.sleep(0.1)
            check = client.post("/v1/partitions/pid=0/predict", json=json.loads(body), timeout=30)
        if check.status_code != 200 or len(check.json()["predictions"]) != 1:
            raise RuntimeError(f"server {name} answers {check.status_code}: {check.text[:300]}")
        yield Server(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass(frozen=True)
class Load:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def paired(a: list[Load], b: list[Load]) -> float:
    """The median over rounds of ``a``'s throughput over ``b``'s in the same round. A round
    whose ``b`` answered nothing (a smoke's 1 s run on a loaded machine) has no ratio and is
    left out; ``nan`` when no round has one, printed as such rather than a crash."""
    ratios = [x.rps / y.rps for x, y in zip(a, b, strict=True) if y.requests > 0]
    return median(ratios) if ratios else math.nan


@dataclass(frozen=True)
class Traffic:
    """What a load run sends: ``path`` with ``{key}`` replaced by a key drawn uniformly from
    ``keys`` for each request (or the same path for all), and one JSON ``body``."""

    keys: range
    path: str = "/v1/partitions/pid={key}/predict"
    body: str = BODY


BATCH = 100  # rows per batch request (serve.py, serve_global.py)


def batch_traffic(hot: int) -> dict[str, Traffic]:
    """Batch requests of ``BATCH`` rows: over ``hot`` partitions, of one partition on the
    batch endpoint, and of one partition on its own endpoint."""
    over = [{"pid": i % hot, **ROW} for i in range(BATCH)]
    one = [{"pid": 0, **ROW} for _ in range(BATCH)]
    return {
        f"batch: {BATCH} rows over {hot} partitions, /v1/predict": Traffic(
            range(1), "/v1/predict", json.dumps({"rows": over})
        ),
        f"batch: {BATCH} rows of 1 partition, /v1/predict": Traffic(
            range(1), "/v1/predict", json.dumps({"rows": one})
        ),
        f"batch: {BATCH} rows, /v1/partitions/pid=0/predict": Traffic(
            range(1), "/v1/partitions/pid=0/predict", json.dumps({"rows": [ROW] * BATCH})
        ),
    }


LUA = """
local lo, hi = %(lo)d, %(hi)d
local head, tail, keyed = '%(head)s', '%(tail)s', %(keyed)s
local body = '%(body)s'
local headers = {["Content-Type"] = "application/json"}
math.randomseed(%(seed)d)
request = function()
  local path = head
  if keyed then
    path = head .. math.random(lo, hi) .. tail
  end
  return wrk.format("POST", path, headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests":%%d,"us":%%d,"errors":%%d,"p50":%%d,"p99":%%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def load(url: str, traffic: Traffic | range, *, connections: int, seconds: float) -> Load:
    """Drive ``url`` for ``seconds`` with ``connections`` concurrent keep-alive connections
    sending ``traffic`` (a ``range`` of keys: one-row POSTs to the per-key endpoint)."""
    if isinstance(traffic, range):
        traffic = Traffic(traffic)
    if shutil.which("wrk"):
        result = _wrk(url, traffic, connections=connections, seconds=seconds)
    else:
        result = asyncio.run(_httpx(url, traffic, connections=connections, seconds=seconds))
    if result.errors:  # a benchmark of error answers measures nothing
        raise RuntimeError(f"{result.errors} of {result.requests} requests to {url} failed")
    return result


def _wrk(url: str, traffic: Traffic, *, connections: int, seconds: float) -> Load:
    head, _, tail = traffic.path.partition("{key}")
    lua = LUA % {
        "lo": traffic.keys.start,
        "hi": traffic.keys.stop - 1,
        "head": head,
        "tail": tail,
        "keyed": "true" if "{key}" in traffic.path else "false",
        "body": traffic.body,
        "seed": random.randrange(1 << 30),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(lua)
        script.flush()
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s",
               "-s", script.name, url]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK "))
    r = json.loads(line[4:])
    return Load(r["requests"], r["errors"], r["us"] / 1e6, r["p50"] / 1e3, r["p99"] / 1e3)


async def _httpx(url: str, traffic: Traffic, *, connections: int, seconds: float) -> Load:
    import httpx

    latencies: list[float] = []
    errors = 0
    limit = int(seconds * 20_000)  # a hard bound on the request count as well as on time
    started = time.perf_counter()
    deadline = started + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline and len(latencies) + errors < limit:
            t = time.perf_counter()
            r = await client.post(
                traffic.path.format(key=random.choice(traffic.keys)),
                content=traffic.body, headers={"content-type": "application/json"},
            )  # fmt: skip
            if r.status_code == 200:
                latencies.append(time.perf_counter() - t)
            else:
                errors += 1

    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    took = time.perf_counter() - started
    return Load(
        len(latencies), errors, took, median(latencies) * 1e3, percentile(latencies, 99) * 1e3
    )


if __name__ == "__main__":
    serve_main()
