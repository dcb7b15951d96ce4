"""Training throughput: manymodels on Ray vs what users write today, and vs the physical limit.

    python benchmarks/train.py --partitions 10000 --rows 100 --model ridge --repeat 3
    python benchmarks/train.py --partitions 10000 100000 --rows 20 --only manymodels,limit

Every method does the same per-partition work: fit on all but the last ``rows // 5`` rows, score
them (MAE), score the naive last-value forecast, refit on all rows, serialise the model to a
file of its own.

* **pandas** — a ``groupby`` loop handing DataFrames to scikit-learn, one ``joblib.dump`` each;
* **joblib** — the same function under ``joblib.Parallel(n_jobs=-1)``;
* **limit** — the summed single-core time of that work on numpy slices (no pandas, one BLAS
  thread, ``pickle`` + one file write each), divided by the number of cores: no scheduler can
  beat it;
* **manymodels** — ``manymodels.pipeline.train(spec, df, registry, backend=BACKEND)``
  (``--backend``, default ``ray``), registry writes included. Ray is started (and its workers
  warmed by a tiny run) before anything is timed, so Ray start-up is reported on its own line
  and counted nowhere else; joblib's worker pool is warmed the same way.

End to end (``--e2e``), what a user waits for: the ``manymodels train SPEC DATA.csv`` command
as a process (default backend, ``auto``) against the pandas loop as a process (``python
benchmarks/train.py --pandas-process DATA.csv OUT``: read the CSV, the same loop), on the same
CSV in the same run. Each is also run on a one-partition CSV: that fixed start-up cost
(imports, backend start, registry) is reported apart.

``--smoke`` checks the script end to end in seconds: tiny sizes, one repeat, no warm-up, and
manymodels on ``--backend auto`` (in process at that size, as the command would), so no Ray; the
Ray path is covered by ``tests/test_execution.py`` and ``tests/test_ray_lifetime.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from _common import (
    FEATURES,
    bench_spec,
    goal_row,
    header,
    median,
    ratio_line,
    start_ray,
    table,
    timed,
    wait_quiet,
)
from sklearn.metrics import mean_absolute_error

from manymodels.samples import synthetic

METHODS = ("pandas", "joblib", "limit", "manymodels")


def estimator(model: str) -> Any:
    if model == "forest":
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(n_estimators=20, random_state=0)
    from sklearn.linear_model import Ridge

    return Ridge()


# ------------------------------------------------------------------------------------------
# the baselines
# ------------------------------------------------------------------------------------------
def fit_group(key: Any, g: pd.DataFrame, out: Path, k: int, model: str) -> float:
    """One partition the way users write it today: DataFrames in, one joblib file out."""
    train, valid = g.iloc[:-k], g.iloc[-k:]
    m = estimator(model).fit(train[FEATURES], train["y"])
    score = mean_absolute_error(valid["y"], m.predict(valid[FEATURES]))
    naive = mean_absolute_error(valid["y"], np.full(k, train["y"].iloc[-1]))
    m = estimator(model).fit(g[FEATURES], g["y"])
    joblib.dump(m, out / f"pid={key}.joblib")
    return float(score - naive)


def run_pandas(df: pd.DataFrame, out: Path, k: int, model: str) -> None:
    for key, g in df.sort_values(["pid", "t"]).groupby("pid", sort=True):
        fit_group(key, g, out, k, model)


def run_joblib(df: pd.DataFrame, out: Path, k: int, model: str, prefer: str | None = None) -> None:
    groups = df.sort_values(["pid", "t"]).groupby("pid", sort=True)
    joblib.Parallel(n_jobs=-1, prefer=prefer)(
        joblib.delayed(fit_group)(key, g, out, k, model) for key, g in groups
    )


def run_limit(X: np.ndarray, y: np.ndarray, rows: int, out: Path, k: int, model: str) -> None:
    """The same work on numpy slices, one core: the compute no scheduler can avoid."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        for i, start in enumerate(range(0, len(y), rows)):
            Xi, yi = X[start : start + rows], y[start : start + rows]
            m = estimator(model).fit(Xi[:-k], yi[:-k])
            score = np.mean(np.abs(m.predict(Xi[-k:]) - yi[-k:]))
            naive = np.mean(np.abs(yi[-k - 1] - yi[-k:]))
            m = estimator(model).fit(Xi, yi)
            with open(out / f"{i}.pkl", "wb") as f:
                f.write(pickle.dumps(m, protocol=5))
            del score, naive


def run_manymodels(df: pd.DataFrame, spec: dict[str, Any], out: Path, backend: str) -> Any:
    from manymodels.pipeline import train

    return train(spec, df, out / "registry", backend=backend)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(
    method: str,
    df: pd.DataFrame,
    rows: int,
    model: str,
    work: Path,
    backend: str = "ray",
    smoke: bool = False,
) -> tuple[float, dict[str, float]]:
    """Seconds of one run of ``method`` (for ``limit``: summed compute / cores) and extras."""
    out = Path(tempfile.mkdtemp(prefix=f"{method}-", dir=work))
    k = max(1, rows // 5)
    extra: dict[str, float] = {}
    try:
        if method == "pandas":
            seconds, _ = timed(lambda: run_pandas(df, out, k, model))
        elif method == "joblib":
            # the smoke uses threads: loky's pool start (~7 s) is the figures' business
            prefer = "threads" if smoke else None
            seconds, _ = timed(lambda: run_joblib(df, out, k, model, prefer))
        elif method == "limit":
            X, y = df[FEATURES].to_numpy(np.float64), df["y"].to_numpy()
            single, _ = timed(lambda: run_limit(X, y, rows, out, k, model))
            seconds = single / (os.cpu_count() or 1)
            extra["single-core s"] = single
        else:
            cpu = cpu_seconds()
            seconds, summary = timed(
                lambda: run_manymodels(df, bench_spec(rows, model), out, backend)
            )
            extra["driver CPU s"] = cpu_seconds() - cpu
            if summary.run.n_trained != df["pid"].nunique():
                raise RuntimeError(f"trained {summary.run.n_trained}: {summary.failures[:3]}")
            extra["startup s"] = summary.startup_seconds
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return seconds, extra


def warm_up(methods: list[str], model: str, work: Path, backend: str) -> None:
    """Start joblib's and Ray's worker processes (imports included) before timing."""
    df = synthetic(50, 20)
    for method in methods:
        if method in ("joblib", "manymodels"):
            measure(method, df, 20, model, work, backend)


# ------------------------------------------------------------------------------------------
# end to end: the command as a process vs the pandas loop as a process
# ------------------------------------------------------------------------------------------
def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return repr(value)


def spec_toml(spec: dict[str, Any]) -> str:
    """The bench spec as the TOML a user writes (scalars, lists, tables, candidates)."""
    lines = [f"{k} = {_toml(v)}" for k, v in spec.items() if not isinstance(v, dict | list)
             or (isinstance(v, list) and not any(isinstance(x, dict) for x in v))]  # fmt: skip
    for k, v in spec.items():
        if isinstance(v, dict):
            lines += [f"[{k}]", *(f"{a} = {_toml(b)}" for a, b in v.items())]
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
            for item in v:
                lines += [f"[[{k}]]", *(f"{a} = {_toml(b)}" for a, b in item.items())]
    return "\n".join(lines) + "\n"


def run_process(cmd: list[str | Path]) -> tuple[float, str]:
    """Wall seconds of one process, from exec to exit (imports included), and its stdout."""
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, done.stdout


def end_to_end(
    n: int, rows: int, model: str, work: Path, repeat: int, smoke: bool
) -> dict[str, list[float]]:
    """Seconds of ``manymodels train`` and of the pandas loop, each as a process on the same
    CSV, and of both on a one-partition CSV (their fixed start-up cost)."""
    spec = work / "spec.toml"
    spec.write_text(spec_toml(bench_spec(rows, model)))
    df = synthetic(n, rows)
    data, one = work / f"e2e-{n}.csv", work / "e2e-one.csv"
    df.to_csv(data, index=False)
    df[df["pid"] == df["pid"].iloc[0]].to_csv(one, index=False)
    del df
    script = Path(__file__).resolve()
    mm = Path(sys.executable).parent / "manymodels"
    out: dict[str, list[float]] = {}
    for rep in range(repeat):
        runs: list[tuple[str, str, list[str | Path], Path]] = []
        for name, csv in (("startup", one), ("full", data)):
            for method in ("manymodels", "pandas"):
                target = Path(tempfile.mkdtemp(prefix=f"e2e-{method}-", dir=work))
                cmd: list[str | Path]
                if method == "manymodels":
                    cmd = [mm, "train", spec, csv, "--registry", target / "r", "--json"]
                else:
                    cmd = [sys.executable, script, "--pandas-process", csv, target,
                           "--rows", str(rows), "--model", model]  # fmt: skip
                runs.append((method, name, cmd, target))
        # The smoke checks the plumbing, not the figures: its four processes run at once, each
        # timed from their common launch to the moment it is seen to have exited.
        launched = time.perf_counter()
        pending = {i: subprocess.Popen([str(c) for c in r[2]], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
                   for i, r in enumerate(runs)} if smoke else {}  # fmt: skip
        for i, (method, name, cmd, target) in enumerate(runs):
            if smoke:
                stdout, stderr = pending[i].communicate()
                if pending[i].returncode != 0:
                    raise RuntimeError(f"{cmd[:3]} exited {pending[i].returncode}: {stderr}")
                seconds, busy = time.perf_counter() - launched, -1.0
            else:
                busy = wait_quiet()
                seconds, stdout = run_process(cmd)
            shutil.rmtree(target, ignore_errors=True)
            out.setdefault(f"{method} {name}", []).append(seconds)
            if method == "manymodels" and name == "full":
                print(f"  e2e backend: {json.loads(stdout)['backend']}", flush=True)
            print(f"  e2e N={n:,} {method:<10} {name:<7} run {rep + 1}: {seconds:8.2f} s "
                  f"(busy before {busy:.2f})", flush=True)  # fmt: skip
    return out


def pandas_process(data: Path, out: Path, rows: int, model: str) -> None:
    """``--pandas-process``: what a user's script does, in its own process."""
    df = pd.read_csv(data)
    out.mkdir(parents=True, exist_ok=True)
    run_pandas(df, out, max(1, rows // 5), model)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, nargs="+", default=[10_000])
    p.add_argument("--rows", type=int, default=100)
    p.add_argument("--model", choices=["ridge", "forest"], default="ridge")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", default=",".join(METHODS), help="comma-separated methods to run")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: seconds")
    p.add_argument(
        "--backend",
        choices=["auto", "ray", "local"],
        default="ray",
        help="manymodels' backend in the in-process rows (the e2e rows use the default)",
    )
    p.add_argument(
        "--e2e", action="store_true", help="add the command vs the pandas loop, as processes"
    )
    p.add_argument("--pandas-process", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.pandas_process:
        data, out = args.pandas_process
        pandas_process(data, out, args.rows, args.model)
        return
    if args.smoke:
        args.partitions, args.rows, args.repeat = [10, 20], 20, 1
        args.backend, args.e2e = "auto", True
    methods = [m for m in METHODS if m in args.only.split(",")]
    header("train: manymodels vs pandas loop, joblib.Parallel and the physical limit")

    work = Path(tempfile.mkdtemp(prefix="mm-bench-train-"))
    e2e: dict[str, list[float]] = {}
    try:
        if "manymodels" in methods and args.backend == "ray":
            print(f"Ray start-up (not counted in any figure below): {start_ray():.2f} s")
        if not args.smoke:  # the smoke checks the script, not the figures
            warm_up(methods, args.model, work, args.backend)
        results: dict[tuple[int, str], list[float]] = {}
        extras: dict[tuple[int, str], list[dict[str, float]]] = {}
        for n in args.partitions:
            df = synthetic(n, args.rows)
            for rep in range(args.repeat):  # methods interleaved, so noise hits all alike
                for method in methods:
                    busy = -1.0 if args.smoke else wait_quiet()
                    seconds, extra = measure(
                        method, df, args.rows, args.model, work, args.backend, args.smoke
                    )
                    extra["busy before"] = busy
                    results.setdefault((n, method), []).append(seconds)
                    extras.setdefault((n, method), []).append(extra)
                    print(f"  N={n:,} {method:<10} run {rep + 1}: {seconds:8.2f} s", flush=True)
            del df
        if args.e2e:
            n = max(args.partitions)
            e2e = end_to_end(n, args.rows, args.model, work, args.repeat, args.smoke)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, extras, args, methods, e2e)


def report(
    results: dict[tuple[int, str], list[float]],
    extras: dict[tuple[int, str], list[dict[str, float]]],
    args: argparse.Namespace,
    methods: list[str],
    e2e: dict[str, list[float]] | None = None,
) -> None:
    rows = []
    for (n, method), runs in results.items():
        s = median(runs)
        notes = {k: median([e[k] for e in extras[n, method]]) for k in extras[n, method][0]}
        rows.append(
            [f"{n:,}", method, s, s / n * 1e3, n / s, ", ".join(f"{r:.2f}" for r in runs),
             "; ".join(f"{k} {v:.2f}" for k, v in notes.items())]
        )  # fmt: skip
    if rows:  # none with --only none --e2e
        print(f"\nmodel {args.model}, rows {args.rows}, medians of {args.repeat} run(s):\n")
        heads = ["N", "method", "seconds", "ms / model", "models / s", "runs (s)", "notes"]
        print(table(heads, rows))

    ratios: dict[str, float] = {}
    goals = []
    for n in args.partitions:
        mm = results.get((n, "manymodels"))
        if not mm:
            continue
        for other, target in (("pandas", 3.0), ("joblib", 1.5), ("limit", 0.8)):
            if (n, other) not in results:
                continue
            r = median(results[n, other]) / median(mm)
            ratios[f"{other}/manymodels@{n}"] = r
            row = goal_row(f"N={n:,}: manymodels speed vs {other}", r, target, at_most=False)
            if args.model != "ridge" and other != "limit":
                row[2:] = ["(goal set for Ridge only)", "-"]
            goals.append(row)
    ns = [n for n in args.partitions if (n, "manymodels") in results]
    if len(ns) > 1:
        per = {n: median(results[n, "manymodels"]) / n for n in ns}
        r = per[max(ns)] / per[min(ns)]
        ratios[f"per-model@{max(ns)}/per-model@{min(ns)}"] = r
        goals.append(
            goal_row(f"per-model time N={max(ns):,} vs N={min(ns):,}", r, 1.15, at_most=True)
        )
    if e2e:
        n = max(args.partitions)
        m = {k: median(v) for k, v in e2e.items()}
        print(f"\nend to end, N={n:,}, processes on the same CSV, medians of {args.repeat}:\n")
        rows_e2e = [
            [method, m[f"{method} full"], m[f"{method} startup"],
             m[f"{method} full"] - m[f"{method} startup"],
             ", ".join(f"{r:.2f}" for r in e2e[f"{method} full"])]
            for method in ("manymodels", "pandas")
        ]  # fmt: skip
        heads = ["process", "seconds", "start-up (1 partition)", "minus start-up", "runs (s)"]
        print(table(heads, rows_e2e))
        r = m["pandas full"] / m["manymodels full"]
        ratios[f"e2e-pandas/manymodels@{n}"] = r
        ratios["e2e-manymodels-startup-s"] = m["manymodels startup"]
        goals.append(goal_row(f"N={n:,}: `manymodels train` vs pandas loop, processes", r, 2.0,
                              at_most=False))  # fmt: skip
        goals.append(goal_row("`manymodels train` fixed start-up", m["manymodels startup"], 4.0,
                              at_most=True, unit=" s"))  # fmt: skip
    if goals:
        print("\n" + table(["goal", "measured", "target", "verdict"], goals))
    print("\n" + ratio_line(ratios))


if __name__ == "__main__":
    main()
