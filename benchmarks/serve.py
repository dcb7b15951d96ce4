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
  ≈ 90 % misses at 10,000), after every partition has answered once (a router that has run
  for a while: the coefficients of the linear models its cache evicted are kept, so a miss
  of one costs no load; the first answer of each partition is a load, timed in process);
* **serve --access-log, hot** — the command with its per-request JSON line turned on;
* **in-process router (no access log), hot** — ``create_app`` under uvicorn without the
  command's logging: the earlier figure, kept as a labelled reference row;
* **batch** — on the hot server: ``POST /v1/predict`` with 100 rows over 100 partitions, the
  same endpoint with 100 rows of one partition, and those 100 rows on
  ``/v1/partitions/{key}/predict``.

Scenarios are interleaved within each repeat, after a warm-up run of each, every other repeat
in reverse order; the batch ratios are the median of each round's ratio (two scenarios run one
after the other). Then, in this
process: one cold model load (``ModelCache`` → ``load_served``) vs ``joblib.load``, and the
garbage collector's pauses under cold load (a ``ModelService`` over the same registry, the
cache and ``gc.freeze()`` as ``manymodels serve`` sets them up, one-row requests to random
partitions, every pause timed by a ``gc.callbacks`` hook, and one full collection timed at
the end: a run may hold none).
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import AbstractContextManager, ExitStack
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
from _server import (
    BODY,
    ROW,
    Load,
    Server,
    Traffic,
    batch_traffic,
    load,
    paired,
    served,
    shipped,
    start_together,
)

MISS = "cache miss: ModelCache.get → serving.served.load_served"
GROUPS = ("hot", "cold", "access-log", "in-process", "batch")


def gc_pauses(root: Path, n: int, requests: int, cache_size: int) -> dict[str, float]:
    """The collector's pauses over ``requests`` cold one-row requests, in process: the
    longest full (generation 2) one, how many ran, the longest of any generation, and a full
    collection timed at the end with the cache full (and how many objects it walked)."""
    import gc
    import random
    import time

    from manymodels.registry.client import Registry
    from serving.service import ModelService

    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def hook(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], time.perf_counter() - started[0]))

    with Registry.open(root) as reg:
        service = ModelService(reg, cache_size=cache_size)
        service.start()
        gc.collect()
        gc.freeze()  # as the app's lifespan does after start-up
        rng = random.Random(0)
        rows = [ROW]
        gc.callbacks.append(hook)
        try:
            for _ in range(requests):
                target = service.resolve(f"pid={rng.randrange(n)}")
                service.score_inline(target, rows) or service.score_target(target, rows)
            # a run may hold no full collection at all (few objects outlive a load): time one
            # at its end, with everything the cache holds, for what the next one would cost
            mark = len(pauses)  # the run's pauses; the forced one is counted apart
            t = time.perf_counter()
            gc.collect()
            forced = time.perf_counter() - t
            tracked = len(gc.get_objects())  # what a full collection walks (not the frozen)
        finally:
            gc.callbacks.remove(hook)
            gc.unfreeze()
    full = [s for g, s in pauses[:mark] if g == 2]
    return {
        "full collections": float(len(full)),
        "longest full collection ms": max(full, default=0.0) * 1e3,
        "longest collection ms": max((s for _, s in pauses[:mark]), default=0.0) * 1e3,
        "full collection at the end ms": forced * 1e3,
        "tracked objects at the end": float(tracked),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used (``/proc/<pid>/stat``): per request, a
    figure that stays comparable when other processes share the machine."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def visit_all(url: str, n: int) -> None:
    """One row to every partition, in batches of 500 (bounded: ``n`` rows in all)."""
    with httpx.Client(base_url=url, timeout=120) as client:
        for lo in range(0, n, 500):
            rows = [{"pid": k, **ROW} for k in range(lo, min(n, lo + 500))]
            client.post("/v1/predict", json={"rows": rows}).raise_for_status()


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each load run")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--only", default=",".join(GROUPS), help=f"scenarios beside bare, of {', '.join(GROUPS)}"
    )
    p.add_argument(
        "--max-wait", type=float, default=60.0, help="seconds to wait for a quiet machine per run"
    )
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    only = set(args.only.split(","))
    if not only <= set(GROUPS):
        p.error(f"--only takes {', '.join(GROUPS)}")
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
    gc_ms = gc_pauses(root, n, 300 if args.smoke else 20_000, 30 if args.smoke else 1000)

    batches = batch_traffic(hot)
    group_of = {
        "bare": "bare",
        "serve hot": "hot",
        "serve cold": "cold",
        "serve --access-log, hot": "access-log",
        "in-process router (no access log), hot": "in-process",
        **dict.fromkeys(batches, "batch"),
    }
    every: dict[str, Traffic] = {
        "bare": Traffic(range(0, hot)),
        "serve hot": Traffic(range(0, hot)),
        "serve cold": Traffic(range(0, n)),
        "serve --access-log, hot": Traffic(range(0, hot)),
        "in-process router (no access log), hot": Traffic(range(0, hot)),
        **batches,
    }
    scenarios = {k: v for k, v in every.items() if group_of[k] in only | {"bare"}}
    runs: dict[str, list[Load]] = {s: [] for s in scenarios}
    cpu: dict[str, list[float]] = {s: [] for s in scenarios}  # server CPU µs per request
    with ExitStack() as stack:
        # every server up and idle before any load, their starts side by side (as monitoring.py's)
        starting: dict[str, AbstractContextManager[Server]] = {"bare": served("bare")}
        if only & {"hot", "batch"}:
            starting["serve hot"] = shipped(root, *serve_flags)
        if "cold" in only:
            starting["serve cold"] = shipped(root, *serve_flags)
        if "access-log" in only:
            starting["serve --access-log, hot"] = shipped(root, *serve_flags, "--access-log")
        if "in-process" in only:
            cache = "30" if args.smoke else "1000"
            starting["in-process router (no access log), hot"] = served(
                "router", "--registry", str(root), "--cache-size", cache
            )
        up = start_together(stack, starting)
        servers: dict[str, Server] = {"bare": up["bare"]}
        if only & {"hot", "batch"}:
            servers |= {k: up["serve hot"] for k in scenarios if group_of[k] in ("hot", "batch")}
        if "cold" in only:
            servers["serve cold"] = up["serve cold"]
            visit_all(servers["serve cold"].url, n)  # every partition answers once
        for name in ("serve --access-log, hot", "in-process router (no access log), hot"):
            if name in up:
                servers[name] = up[name]
        for name, server in servers.items():
            if group_of[name] not in ("hot", "access-log", "in-process"):
                continue
            with httpx.Client(base_url=server.url, timeout=30) as client:
                for k in range(hot):  # bounded: one request per hot partition
                    client.post(
                        f"/v1/partitions/pid={k}/predict",
                        content=BODY,
                        headers={"content-type": "application/json"},
                    ).raise_for_status()
        # warm-up, not recorded; the smoke checks the plumbing (as train.py's: no warm-up)
        for name, server in servers.items() if not args.smoke else ():
            load(
                server.url,
                scenarios[name],
                connections=args.connections,
                seconds=min(3, args.seconds),
            )
        for rep in range(args.repeat):
            # every other round runs the scenarios in reverse: a pair's ratio is still of two
            # runs back to back, and neither side always runs second (after the other's load)
            order = list(servers.items())
            for name, server in order if rep % 2 == 0 else order[::-1]:
                if not args.smoke:
                    wait_quiet(max_wait=args.max_wait)
                used = cpu_seconds(server.pid)
                r = load(
                    server.url, scenarios[name], connections=args.connections, seconds=args.seconds
                )
                runs[name].append(r)
                cpu[name].append((cpu_seconds(server.pid) - used) / max(r.requests, 1) * 1e6)
                print(
                    f"  {name:<48} run {rep + 1}: {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
                    f"p99 {r.p99_ms:6.2f} ms  errors {r.errors}  CPU {cpu[name][-1]:6.0f} µs/req",
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
            median(cpu[name]),
        )
        for name, rs in runs.items()
    }
    print(
        table(
            ["scenario", "requests/s", "p50 ms", "p99 ms", "errors", "server CPU µs/req"],
            [[k, *v] for k, v in fig.items()],
        )
    )
    steps = [*load_ms.items(), *((f"cold load, gc: {k}", v) for k, v in gc_ms.items())]
    print("\n" + table(["step (in-process)", "median ms / figure"], steps))

    bare_rps, bare_p99 = fig["bare"][0], fig["bare"][2]
    cold_ms = load_ms[MISS]
    ratios: dict[str, float] = {}
    goals = []
    if "serve hot" in fig:
        ratios["hot/bare rps"] = fig["serve hot"][0] / bare_rps
        ratios["hot/bare p99"] = fig["serve hot"][2] / bare_p99
        ratios["hot/bare cpu"] = fig["serve hot"][4] / fig["bare"][4]
        goals += [
            goal_row("serve hot throughput vs bare", ratios["hot/bare rps"], 0.95, at_most=False),
            goal_row("serve hot p99 vs bare", ratios["hot/bare p99"], 1.2, at_most=True),
        ]
    if "serve cold" in fig:
        ratios["cold/bare rps"] = fig["serve cold"][0] / bare_rps
        ratios["cold/bare p99"] = fig["serve cold"][2] / bare_p99
        ratios["cold/bare cpu"] = fig["serve cold"][4] / fig["bare"][4]
        goals += [
            goal_row("serve cold throughput vs bare", ratios["cold/bare rps"], 0.6, at_most=False),
            goal_row("serve cold p99 vs bare", ratios["cold/bare p99"], 3, at_most=True),
        ]
    if "serve --access-log, hot" in fig:
        ratios["access-log hot/bare rps"] = fig["serve --access-log, hot"][0] / bare_rps
    if "in-process router (no access log), hot" in fig:
        ratios["in-process hot/bare rps"] = (
            fig["in-process router (no access log), hot"][0] / bare_rps
        )
    if "batch" in only:
        over, one, per_key = batches
        # each round's ratio of two scenarios run one after the other, then their median:
        # on a VM whose speed drifts ±30 % over minutes, a ratio of medians mixes rounds
        ratios["batch over/one"] = paired(runs[over], runs[one])
        ratios["batch one/per-key"] = paired(runs[one], runs[per_key])
        ratios["batch over/one, of medians"] = fig[over][0] / fig[one][0]
        ratios["batch one/per-key, of medians"] = fig[one][0] / fig[per_key][0]
        over_cpu, one_cpu, per_key_cpu = (fig[name][4] for name in batches)
        ratios["batch cpu one/over"] = one_cpu / over_cpu  # ≥ 0.8 as the rps goal would be
        ratios["batch cpu per-key/one"] = per_key_cpu / one_cpu
        goals += [
            goal_row(
                f"batch: {hot} partitions vs 1 partition (rps, median of rounds)",
                ratios["batch over/one"],
                0.8,
                at_most=False,
            ),
            goal_row(
                "batch: 1 partition on /v1/predict vs per-key (rps, median of rounds)",
                ratios["batch one/per-key"],
                0.95,
                at_most=False,
            ),
        ]
    ratios["cold-load ms"] = cold_ms
    ratios["cold-load/joblib.load"] = cold_ms / load_ms["bare joblib.load of one Ridge"]
    worst_full = max(gc_ms["longest full collection ms"], gc_ms["full collection at the end ms"])
    ratios["longest full gc ms"] = worst_full
    goals += [
        goal_row(
            "cold load of one model (median, in-process)", cold_ms, 1.0, at_most=True, unit=" ms"
        ),
        goal_row(
            "longest full collection under cold load, or one forced at its end (in-process)",
            worst_full,
            20,
            at_most=True,
            unit=" ms",
        ),
    ]
    print("\n" + table(["goal", "measured", "target", "verdict"], goals))
    print("\n" + ratio_line(ratios))


if __name__ == "__main__":
    main()
