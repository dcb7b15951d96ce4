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
* **manymodels** — ``manymodels.pipeline.train(spec, df, registry, backend="ray")``, registry
  writes included. Ray is started (and its workers warmed by a tiny run) before anything is
  timed, so Ray start-up is reported on its own line and counted nowhere else; joblib's worker
  pool is warmed the same way.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import shutil
import tempfile
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


def run_joblib(df: pd.DataFrame, out: Path, k: int, model: str) -> None:
    groups = df.sort_values(["pid", "t"]).groupby("pid", sort=True)
    joblib.Parallel(n_jobs=-1)(
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


def run_manymodels(df: pd.DataFrame, spec: dict[str, Any], out: Path) -> Any:
    from manymodels.pipeline import train

    return train(spec, df, out / "registry", backend="ray")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(
    method: str, df: pd.DataFrame, rows: int, model: str, work: Path
) -> tuple[float, dict[str, float]]:
    """Seconds of one run of ``method`` (for ``limit``: summed compute / cores) and extras."""
    out = Path(tempfile.mkdtemp(prefix=f"{method}-", dir=work))
    k = max(1, rows // 5)
    extra: dict[str, float] = {}
    try:
        if method == "pandas":
            seconds, _ = timed(lambda: run_pandas(df, out, k, model))
        elif method == "joblib":
            seconds, _ = timed(lambda: run_joblib(df, out, k, model))
        elif method == "limit":
            X, y = df[FEATURES].to_numpy(np.float64), df["y"].to_numpy()
            single, _ = timed(lambda: run_limit(X, y, rows, out, k, model))
            seconds = single / (os.cpu_count() or 1)
            extra["single-core s"] = single
        else:
            cpu = cpu_seconds()
            seconds, summary = timed(lambda: run_manymodels(df, bench_spec(rows, model), out))
            extra["driver CPU s"] = cpu_seconds() - cpu
            if summary.run.n_trained != df["pid"].nunique():
                raise RuntimeError(f"trained {summary.run.n_trained}: {summary.failures[:3]}")
            extra["startup s"] = summary.startup_seconds
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return seconds, extra


def warm_up(methods: list[str], model: str, work: Path) -> None:
    """Start joblib's and Ray's worker processes (imports included) before timing."""
    df = synthetic(50, 20)
    for method in methods:
        if method in ("joblib", "manymodels"):
            measure(method, df, 20, model, work)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, nargs="+", default=[10_000])
    p.add_argument("--rows", type=int, default=100)
    p.add_argument("--model", choices=["ridge", "forest"], default="ridge")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", default=",".join(METHODS), help="comma-separated methods to run")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: seconds")
    args = p.parse_args()
    if args.smoke:
        args.partitions, args.rows, args.repeat = [100, 200], 20, 1
    methods = [m for m in METHODS if m in args.only.split(",")]
    header("train: manymodels vs pandas loop, joblib.Parallel and the physical limit")

    work = Path(tempfile.mkdtemp(prefix="mm-bench-train-"))
    try:
        if "manymodels" in methods:
            print(f"Ray start-up (not counted in any figure below): {start_ray():.2f} s")
        warm_up(methods, args.model, work)
        results: dict[tuple[int, str], list[float]] = {}
        extras: dict[tuple[int, str], list[dict[str, float]]] = {}
        for n in args.partitions:
            df = synthetic(n, args.rows)
            for rep in range(args.repeat):  # methods interleaved, so noise hits all alike
                for method in methods:
                    busy = -1.0 if args.smoke else wait_quiet()
                    seconds, extra = measure(method, df, args.rows, args.model, work)
                    extra["busy before"] = busy
                    results.setdefault((n, method), []).append(seconds)
                    extras.setdefault((n, method), []).append(extra)
                    print(f"  N={n:,} {method:<10} run {rep + 1}: {seconds:8.2f} s", flush=True)
            del df
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, extras, args, methods)


def report(
    results: dict[tuple[int, str], list[float]],
    extras: dict[tuple[int, str], list[dict[str, float]]],
    args: argparse.Namespace,
    methods: list[str],
) -> None:
    rows = []
    for (n, method), runs in results.items():
        s = median(runs)
        notes = {k: median([e[k] for e in extras[n, method]]) for k in extras[n, method][0]}
        rows.append(
            [f"{n:,}", method, s, s / n * 1e3, n / s, ", ".join(f"{r:.2f}" for r in runs),
             "; ".join(f"{k} {v:.2f}" for k, v in notes.items())]
        )  # fmt: skip
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
    if goals:
        print("\n" + table(["goal", "measured", "target", "verdict"], goals))
    print("\n" + ratio_line(ratios))


if __name__ == "__main__":
    main()
