"""Retrain one partition, end to end, in registries of 100 and 10,000 partitions.

Two paths a user takes: the CLI (``manymodels train SPEC ONE.csv --partitions KEY``, a fresh
process each time) and HTTP (``POST /v1/partitions/KEY/retrain`` on a running router, then
polling the job until it is done). Both train in-process (``--backend local`` /
``retrain_backend="local"``) so Ray's start-up does not hide the cost that matters here: what
grows with the registry. Goal: time at 10,000 ≤ 1.2 × time at 100.

    python benchmarks/retrain.py [--sizes 100 10000] [--repeat 3] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c

ROWS = 20


def _toml(spec: dict[str, Any]) -> str:
    """The bench spec as TOML (only the value types it uses)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return repr(v)

    top = {k: v for k, v in spec.items() if k != "candidates" and not isinstance(v, dict)}
    lines = [f"{k} = {value(v)}" for k, v in top.items()]
    for section in ("validation", "fallback"):
        lines += [f"\n[{section}]"] + [f"{k} = {value(v)}" for k, v in spec[section].items()]
    for cand in spec["candidates"]:
        lines += ["\n[[candidates]]"] + [f"{k} = {value(v)}" for k, v in cand.items()]
    return "\n".join(lines) + "\n"


def _one_partition(key_id: int, seed: int) -> Any:
    from manymodels.samples import synthetic

    df = synthetic(1, ROWS, seed=seed)
    return df.assign(pid=key_id)


def _cli_seconds(registry: Path, spec_path: Path, data_path: Path, key: str) -> float:
    started = time.perf_counter()
    res = subprocess.run(
        [Path(sys.executable).parent / "manymodels", "train", spec_path, data_path,
         "--registry", registry, "--partitions", key, "--backend", "local", "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-1000:])
    assert json.loads(res.stdout)["run"]["n_trained"] == 1
    return elapsed


def _http_seconds(http: Any, key: str, rows: list[dict[str, Any]], token: str) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    accepted = http.post(f"/v1/partitions/{key}/retrain", json={"rows": rows}, headers=headers)
    accepted.raise_for_status()
    link = accepted.json()["links"]["self"]
    deadline = started + 120
    while time.perf_counter() < deadline:
        job = http.get(link, headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            if job["status"] == "failed":
                raise RuntimeError(job.get("error"))
            return time.perf_counter() - started
        time.sleep(0.005)
    raise TimeoutError("retrain job did not finish within 120 s")


def measure(size: int, repeat: int, workdir: Path, warm_ups: int = 1) -> dict[str, float]:
    """Median seconds of ``repeat`` CLI and HTTP retrains, after ``warm_ups`` of each (not
    counted; none in the smoke, which checks the plumbing: each is a process start)."""
    import httpx

    from serving.local import running_server
    from serving.settings import Settings

    registry = workdir / f"reg-{size}"
    shutil.copytree(c.serving_registry(size, ROWS), registry)  # retraining mutates it
    spec_path = workdir / "spec.toml"
    spec_path.write_text(_toml(c.bench_spec(ROWS)))
    cli, http_times = [], []
    for i in range(warm_ups + repeat):  # the first ones are warm-ups, not counted
        pid = (i * 37) % size
        data_path = workdir / f"one-{size}-{i}.csv"
        _one_partition(pid, seed=100 + i).to_csv(data_path, index=False)
        seconds = _cli_seconds(registry, spec_path, data_path, f"pid={pid}")
        if i >= warm_ups:
            cli.append(seconds)
    token = "bench-token"
    settings = Settings(registry=registry, admin_token=token, retrain_backend="local")
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=120) as http:
        for i in range(warm_ups + repeat):
            pid = (i * 53 + 1) % size
            rows = _one_partition(pid, seed=200 + i).drop(columns=["pid"])
            seconds = _http_seconds(http, f"pid={pid}", rows.to_dict(orient="records"), token)
            if i >= warm_ups:
                http_times.append(seconds)
    return {"cli": c.median(cli), "http": c.median(http_times)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[100, 10_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny registries, one repeat, no warm-up"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.repeat = [20, 60], 1
    c.header("retrain one partition", argv)
    small, large = args.sizes
    with tempfile.TemporaryDirectory(prefix="mm-retrain-") as tmp:
        work = Path(tmp)
        warm_ups = 0 if args.smoke else 1
        figures = {size: measure(size, args.repeat, work, warm_ups) for size in (small, large)}
    rows = []
    for path in ("cli", "http"):
        r = figures[large][path] / figures[small][path]
        rows.append([path, f"{figures[small][path]:.3f}", f"{figures[large][path]:.3f}",
                     f"{r:.3f}", "≤ 1.2", c.verdict(r <= 1.2)])  # fmt: skip
    print(c.table(["path", f"s @ {small:,}", f"s @ {large:,}", "ratio", "goal", ""], rows))
    print(c.ratio_line({
        "cli_large_over_small": figures[large]["cli"] / figures[small]["cli"],
        "http_large_over_small": figures[large]["http"] / figures[small]["http"],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
