"""Serving: ``manymodels serve`` as a user starts it vs a bare FastAPI app holding one Ridge.

    python benchmarks/serve.py                      # 10,000 partitions, 3 × 10 s per scenario
    python benchmarks/serve.py --smoke

Each server runs in its own subprocess on 127.0.0.1, loaded by ``wrk -t1 -c64`` (or a bounded
httpx client) for a fixed duration:

* **bare** — what a user writes without manymodels: an ``async def`` route scoring one
  in-memory Ridge, run by uvicorn with the settings ``manymodels serve`` passes to it;
* **serve hot** — the ``manymodels serve --registry DIR --port P`` command with its default
  flags and logging (stderr to a file), one-row requests, keys uniform over 100 partitions,
  all cached;
* **serve cold** — the same command, keys uniform over all partitions (default cache 1,000:
  ≈ 90 % misses at 10,000);
* **serve --access-log, hot** — the command with its per-request JSON line turned on;
* **in-process router (no access log), hot** — ``create_app`` under uvicorn without the
  command's logging: the earlier figure, kept as a labelled reference row;
* **batch** — on the hot server: ``POST /v1/predict`` with 100 rows over 100 partitions, the
  same endpoint with 100 rows of one partition, and those 100 rows on
  ``/v1/partitions/{key}/predict``.

Scenarios are interleaved within each repeat, after a warm-up run of each. Then, in this
process: one cold model load (``ModelCache`` → ``load_served``) vs ``joblib.load``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from contextlib import ExitStack
from pathlib import Path

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
from _server import BODY, ROW, Load, Traffic, load, served, shipped

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


HOT = 100  # hot keys: a cache's working set
BATCH = 100  # rows per batch request


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each load run")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    # the command's defaults, except in the smoke run (300 partitions: a cache of 30 misses)
    serve_flags: tuple[str, ...] = ()
    if args.smoke:
        args.partitions, args.seconds, args.repeat, args.connections = 300, 1.0, 1, 8
        serve_flags = ("--cache-size", "30")
    n = args.partitions
    hot = min(HOT, n)
    header("serve: manymodels serve vs bare FastAPI")
    root = serving_registry(n)
    load_ms = cold_loads(root, 100 if args.smoke else 2000)

    batches = batch_traffic(hot)
    scenarios: dict[str, Traffic] = {
        "bare": Traffic(range(0, hot)),
        "serve hot": Traffic(range(0, hot)),
        "serve cold": Traffic(range(0, n)),
        "serve --access-log, hot": Traffic(range(0, hot)),
        "in-process router (no access log), hot": Traffic(range(0, hot)),
        **batches,
    }
    runs: dict[str, list[Load]] = {s: [] for s in scenarios}
    with ExitStack() as stack:
        bare = stack.enter_context(served("bare"))
        serve_hot = stack.enter_context(shipped(root, *serve_flags))
        serve_cold = stack.enter_context(shipped(root, *serve_flags))
        logged = stack.enter_context(shipped(root, *serve_flags, "--access-log"))
        quiet = stack.enter_context(
            served(
                "router", "--registry", str(root), "--cache-size", "30" if args.smoke else "1000"
            )
        )
        servers = {
            "bare": bare,
            "serve hot": serve_hot,
            "serve cold": serve_cold,
            "serve --access-log, hot": logged,
            "in-process router (no access log), hot": quiet,
            **{name: serve_hot for name in batches},
        }
        for name in (
            "serve hot",
            "serve --access-log, hot",
            "in-process router (no access log), hot",
        ):
            with httpx.Client(base_url=servers[name].url, timeout=30) as client:
                for k in range(hot):  # bounded: one request per hot partition
                    client.post(
                        f"/v1/partitions/pid={k}/predict",
                        content=BODY,
                        headers={"content-type": "application/json"},
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
                print(
                    f"  {name:<48} run {rep + 1}: {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
                    f"p99 {r.p99_ms:6.2f} ms  errors {r.errors}",
                    flush=True,
                )

    print(
        f"\n{n:,} partitions, {hot} hot, {args.connections} connections, "
        f"{args.seconds:g} s per run, medians of {args.repeat} run(s); "
        f"`manymodels serve` flags: {' '.join(serve_flags) or '(defaults)'}\n"
    )
    fig = {
        name: (
            median([r.rps for r in rs]),
            median([r.p50_ms for r in rs]),
            median([r.p99_ms for r in rs]),
            sum(r.errors for r in rs),
        )
        for name, rs in runs.items()
    }
    print(
        table(
            ["scenario", "requests/s", "p50 ms", "p99 ms", "errors"],
            [[k, *v] for k, v in fig.items()],
        )
    )
    print(
        "\n" + table(["step (in-process, distinct partitions)", "median ms"], list(load_ms.items()))
    )

    over, one, per_key = (fig[name][0] for name in batches)
    bare_rps, bare_p99 = fig["bare"][0], fig["bare"][2]
    cold_ms = load_ms[MISS]
    ratios = {
        "hot/bare rps": fig["serve hot"][0] / bare_rps,
        "hot/bare p99": fig["serve hot"][2] / bare_p99,
        "cold/bare rps": fig["serve cold"][0] / bare_rps,
        "cold/bare p99": fig["serve cold"][2] / bare_p99,
        "access-log hot/bare rps": fig["serve --access-log, hot"][0] / bare_rps,
        "in-process hot/bare rps": fig["in-process router (no access log), hot"][0] / bare_rps,
        "batch over/one": over / one,
        "batch one/per-key": one / per_key,
        "cold-load ms": cold_ms,
        "cold-load/joblib.load": cold_ms / load_ms["bare joblib.load of one Ridge"],
    }
    goals = [
        goal_row("serve hot throughput vs bare", ratios["hot/bare rps"], 0.95, at_most=False),
        goal_row("serve hot p99 vs bare", ratios["hot/bare p99"], 1.2, at_most=True),
        goal_row("serve cold throughput vs bare", ratios["cold/bare rps"], 0.6, at_most=False),
        goal_row("serve cold p99 vs bare", ratios["cold/bare p99"], 3, at_most=True),
        goal_row(
            f"batch: {hot} partitions vs 1 partition (rps)",
            ratios["batch over/one"],
            0.8,
            at_most=False,
        ),
        goal_row(
            "batch: 1 partition on /v1/predict vs per-key (rps)",
            ratios["batch one/per-key"],
            0.95,
            at_most=False,
        ),
        goal_row(
            "cold load of one model (median, in-process)", cold_ms, 1.0, at_most=True, unit=" ms"
        ),
    ]
    print("\n" + table(["goal", "measured", "target", "verdict"], goals))
    print("\n" + ratio_line(ratios))


if __name__ == "__main__":
    main()
