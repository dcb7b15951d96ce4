"""Servers under test, each in a subprocess of its own, and a bounded load generator.

    python benchmarks/_server.py bare                       # one in-memory Ridge, inline
    python benchmarks/_server.py bare-thread                # the same, scored in the threadpool
    python benchmarks/_server.py router --registry DIR --cache-size 1000

Every server binds 127.0.0.1 on an ephemeral port, prints ``PORT <n>`` and runs uvicorn with
the same settings (one worker, ``log_level="warning"``, access log off). ``served(...)`` starts
one from a benchmark and yields its URL and pid; ``load(...)`` drives it with ``wrk`` (a Lua
script picks a key per request) or, without wrk, a bounded asyncio + httpx client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import FEATURES, median, percentile
from pydantic import BaseModel

ROW = {f: 0.1 * (j + 1) for j, f in enumerate(FEATURES)}
BODY = json.dumps({"rows": [ROW]})


# ------------------------------------------------------------------------------------------
# the server side (runs in the subprocess)
# ------------------------------------------------------------------------------------------
class Body(BaseModel):
    rows: list[dict[str, Any]]


def bare_app(inline: bool) -> Any:
    """What a user writes without manymodels: one model in memory, a pydantic body."""
    import numpy as np
    from fastapi import FastAPI
    from sklearn.linear_model import Ridge

    from manymodels.samples import synthetic

    df = synthetic(1, 100)
    model = Ridge().fit(df[FEATURES].to_numpy(np.float64), df["y"].to_numpy())

    app = FastAPI()

    def score(key: str, body: Body) -> dict[str, Any]:
        X = np.array([[row[f] for f in FEATURES] for row in body.rows], dtype=np.float64)
        return {"partition": key, "predictions": model.predict(X).tolist()}

    async def score_inline(key: str, body: Body) -> dict[str, Any]:
        return score(key, body)

    app.post("/v1/partitions/{key:path}/predict")(score_inline if inline else score)
    app.get("/healthz")(lambda: {"status": "ok"})
    return app


def serve_main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["bare", "bare-thread", "router"])
    p.add_argument("--registry", type=Path)
    p.add_argument("--cache-size", type=int, default=1000)
    args = p.parse_args()
    import uvicorn

    if args.kind == "router":
        from serving.app import create_app
        from serving.settings import Settings

        app = create_app(Settings(registry=args.registry, cache_size=args.cache_size))
    else:
        app = bare_app(inline=args.kind == "bare")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, workers=1, ws="none")
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
    import httpx

    cmd = [sys.executable, str(Path(__file__).with_name("_server.py")), kind, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the port comes before the app (and registry) starts
        if not line.startswith("PORT "):
            raise RuntimeError(f"server {kind} did not start (exit code {proc.wait(10)})")
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {kind} is not healthy (exit code {proc.poll()})")
            time.sleep(0.1)
        check = httpx.post(f"{url}/v1/partitions/pid=0/predict", json=json.loads(BODY), timeout=30)
        if check.status_code != 200 or len(check.json()["predictions"]) != 1:
            raise RuntimeError(f"server {kind} answers {check.status_code}: {check.text[:300]}")
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


LUA = """
local lo, hi = %(lo)d, %(hi)d
local body = '%(body)s'
local headers = {["Content-Type"] = "application/json"}
math.randomseed(%(seed)d)
request = function()
  return wrk.format("POST", "/v1/partitions/pid=" .. math.random(lo, hi) .. "/predict",
                    headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests":%%d,"us":%%d,"errors":%%d,"p50":%%d,"p99":%%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def load(url: str, keys: range, *, connections: int, seconds: float) -> Load:
    """Drive ``url`` for ``seconds`` with ``connections`` concurrent keep-alive connections,
    one-row POSTs to ``/v1/partitions/pid=<k>/predict``, ``k`` uniform over ``keys``."""
    if shutil.which("wrk"):
        result = _wrk(url, keys, connections=connections, seconds=seconds)
    else:
        result = asyncio.run(_httpx(url, keys, connections=connections, seconds=seconds))
    if result.errors:  # a benchmark of error answers measures nothing
        raise RuntimeError(f"{result.errors} of {result.requests} requests to {url} failed")
    return result


def _wrk(url: str, keys: range, *, connections: int, seconds: float) -> Load:
    lua = LUA % {
        "lo": keys.start,
        "hi": keys.stop - 1,
        "body": BODY,
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


async def _httpx(url: str, keys: range, *, connections: int, seconds: float) -> Load:
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
                f"/v1/partitions/pid={random.choice(keys)}/predict",
                content=BODY, headers={"content-type": "application/json"},
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
