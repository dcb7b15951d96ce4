"""Serving: the router over 10,000 partitions vs a bare FastAPI app holding one Ridge.

    python benchmarks/serve.py                      # 10,000 partitions, 3 × 10 s per scenario
    python benchmarks/serve.py --smoke

Scenarios, each server in its own subprocess on 127.0.0.1 (same uvicorn settings), loaded by
``wrk`` (or a bounded httpx client) with fixed concurrency and duration, one-row requests:

* **bare** — ``async def`` route, model scored inline (the ceiling);
* **bare-thread** — the same route as ``def`` (FastAPI runs it in its threadpool), for reference;
* **router hot** — keys uniform over 1,000 partitions, all cached (cache 1,000, warmed);
* **router cold** — keys uniform over all partitions, cache 1,000 (≈ 90 % misses).

Scenarios are interleaved within each repeat. Then, in this process: one cold model load
(``ModelCache`` → ``load_served``: SQL read + file read + sha256 + unpickle) vs ``joblib.load``; and
over HTTP, 1,000 rows across 100 partitions (``POST /v1/predict``) vs 1,000 rows of one.
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import joblib
from _common import (
    goal_row,
    header,
    median,
    ratio_line,
    samples,
    serving_registry,
    table,
    wait_quiet,
)
from _server import ROW, Load, load, served

MISS = "cache miss: ModelCache.get → serving.served.load_served"


def cold_loads(root: Path, n_samples: int) -> dict[str, float]:
    """Median milliseconds of each step of a cache miss, over distinct partitions."""
    from manymodels.artifacts import deserialize
    from manymodels.registry.client import Registry
    from serving.cache import ModelCache
    from serving.served import ServedModel, load_served

    q = n_samples
    with Registry.open(root) as reg, tempfile.TemporaryDirectory() as tmp:
        # Each step reads its own partitions, so none finds another's work in any cache.
        size = min(q + 3, reg.count_partitions() // 5)
        q = size - 3
        k1, k2, k3, k4, k5 = (
            [f"pid={i}" for i in range(j * size, (j + 1) * size)] for j in range(5)
        )
        shas = [(reg.store.model_ref(k, 1) or ("", ""))[0] for k in k3]
        files = [Path(tmp) / f"{i}.joblib" for i in range(size)]
        for k, f in zip(k4, files, strict=True):  # the bare baseline: the same models, joblib
            joblib.dump(reg.load_model(k, 1).model, f)
        cache: ModelCache[ServedModel] = ModelCache(
            lambda k, v: load_served(reg, k, v), max_size=10
        )
        out = {
            MISS: samples(lambda i: cache.get(k1[i], 1), q),
            "  of which SQL read (SqlStore.model_ref)": samples(
                lambda i: reg.store.model_ref(k2[i], 1), q
            ),
            "  of which artifact (read + sha256 + unpickle)": samples(
                lambda i: deserialize(reg.artifacts.get(shas[i])), q
            ),
            "bare joblib.load of one Ridge": samples(lambda i: joblib.load(files[i]), q),
            "Registry.load_model (whole record, for comparison)": samples(
                lambda i: reg.load_model(k5[i], 1), q
            ),
        }
    return {k: median(v) * 1e3 for k, v in out.items()}


def batch_vs_single(url: str, n_samples: int, n_partitions: int) -> tuple[float, float]:
    """Median seconds: 1,000 rows over ``n_partitions`` in one request vs 1,000 of one."""
    per = 1000 // n_partitions
    batch = {"rows": [{"pid": p, **ROW} for p in range(n_partitions) for _ in range(per)]}
    single = {"rows": [ROW] * 1000}
    with httpx.Client(base_url=url, timeout=30) as client:

        def post(path: str, body: dict[str, Any]) -> None:
            client.post(path, json=body).raise_for_status()

        a, b = [], []
        for _ in range(n_samples + 3):  # interleaved; the first 3 of each are warm-up
            a.append(samples(lambda _i: post("/v1/predict", batch), 1, warmup=0)[0])
            b.append(
                samples(lambda _i: post("/v1/partitions/pid=0/predict", single), 1, warmup=0)[0]
            )
    return median(a[3:]), median(b[3:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, default=10_000)
    p.add_argument("--cache-size", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each load run")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.partitions, args.cache_size, args.seconds, args.repeat = 300, 30, 1.0, 1
    n, c = args.partitions, args.cache_size
    header("serve: router vs bare FastAPI")
    root = serving_registry(n)
    load_ms = cold_loads(root, 100 if args.smoke else 2000)

    scenarios = {
        "bare": range(0, c),
        "bare-thread": range(0, c),
        "router hot": range(0, c),
        "router cold": range(0, n),
    }
    runs: dict[str, list[Load]] = {s: [] for s in scenarios}
    with ExitStack() as stack:
        router_args = ("--registry", str(root), "--cache-size", str(c))
        servers = {
            "bare": stack.enter_context(served("bare")),
            "bare-thread": stack.enter_context(served("bare-thread")),
            "router hot": stack.enter_context(served("router", *router_args)),
            "router cold": stack.enter_context(served("router", *router_args)),
        }
        with httpx.Client(base_url=servers["router hot"].url, timeout=30) as client:
            for k in scenarios["router hot"]:  # bounded: one request per hot partition
                client.post(
                    f"/v1/partitions/pid={k}/predict", json={"rows": [ROW]}
                ).raise_for_status()
        for name, server in servers.items():  # warm-up, not recorded (fills the cold cache)
            load(
                server.url,
                scenarios[name],
                connections=args.connections,
                seconds=min(3, args.seconds),
            )
        for rep in range(args.repeat):
            for name, server in servers.items():
                if not args.smoke:
                    wait_quiet(max_wait=60)
                r = load(
                    server.url, scenarios[name], connections=args.connections, seconds=args.seconds
                )
                runs[name].append(r)
                print(f"  {name:<12} run {rep + 1}: {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
                      f"p99 {r.p99_ms:6.2f} ms  errors {r.errors}", flush=True)  # fmt: skip
        batch_s, single_s = batch_vs_single(servers["router hot"].url, 5 if args.smoke else 30, 100)

    print(f"\n{n:,} partitions, cache {c:,}, {args.connections} connections, "
          f"{args.seconds:g} s per run, medians of {args.repeat} run(s):\n")  # fmt: skip
    fig = {
        name: (median([r.rps for r in rs]), median([r.p50_ms for r in rs]),
               median([r.p99_ms for r in rs]), sum(r.errors for r in rs))
        for name, rs in runs.items()
    }  # fmt: skip
    print(table(["scenario", "requests/s", "p50 ms", "p99 ms", "errors"],
                [[k, *v] for k, v in fig.items()]))  # fmt: skip
    print(
        "\n" + table(["step (in-process, distinct partitions)", "median ms"], list(load_ms.items()))
    )
    requests = [
        ["POST /v1/predict: 1,000 rows over 100 partitions", batch_s * 1e3],
        ["POST /v1/partitions/pid=0/predict: 1,000 rows", single_s * 1e3],
    ]
    print("\n" + table(["request (router, hot cache)", "median ms"], requests))

    bare = fig["bare"]
    cold_ms = load_ms[MISS]
    bare_load = load_ms["bare joblib.load of one Ridge"]
    ratios = {
        "hot/bare rps": fig["router hot"][0] / bare[0],
        "hot/bare p99": fig["router hot"][2] / bare[2],
        "cold/bare rps": fig["router cold"][0] / bare[0],
        "cold-load ms": cold_ms,
        "cold-load/joblib.load": cold_ms / bare_load,
        "batch/single": batch_s / single_s,
        "bare-thread/bare rps": fig["bare-thread"][0] / bare[0],
    }
    goals = [
        goal_row("hot throughput vs bare", ratios["hot/bare rps"], 0.85, at_most=False),
        goal_row("hot p99 vs bare", ratios["hot/bare p99"], 1.5, at_most=True),
        goal_row("cold throughput vs bare", ratios["cold/bare rps"], 0.5, at_most=False),
        goal_row("cold load of one model (median)", cold_ms, 1.0, at_most=True, unit=" ms"),
        goal_row("batch 100 partitions vs one partition", ratios["batch/single"], 5, at_most=True),
    ]
    print("\n" + table(["goal", "measured", "target", "verdict"], goals))
    print("\n" + ratio_line(ratios))


if __name__ == "__main__":
    main()
