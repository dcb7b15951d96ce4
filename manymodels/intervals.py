"""Conformal prediction intervals from each partition's validation residuals.

A spec with ``[intervals] levels = [80, 95]`` makes every regression version record, per level,
a quantile ``q`` of absolute errors on the partition's validation rows: with two folds or more,
each fold's errors are those of the model selection would have chosen without that fold
(``training.heldout``: the winner's own errors are the luckiest draw, ``"held_out": true`` in
the record), else the chosen model's own; an answer's interval is then ``prediction ± q``, in
columns named as statsforecast and mlforecast name theirs: ``lo-80``, ``hi-80``, ``lo-95``,
``hi-95``.

How it relates to theirs. mlforecast's ``PredictionIntervals(n_windows, h,
method="conformal_distribution")`` and statsforecast's ``ConformalIntervals`` refit the model
on ``n_windows`` extra cross-validation windows, take the absolute errors per horizon step, and
read each level off ``numpy.quantile`` (interpolated) of the paths ``forecast ± error``. We
take errors selection already made — no extra fit; statsforecast reruns AutoARIMA's order
search in each window, and the held-out replay is the cheap counterpart — and use
the *finite-sample* split-conformal quantile: with ``n`` errors, the
``⌈(n + 1) · level / 100⌉``-th smallest, which covers a new exchangeable error with probability
at least ``level`` (the largest error when ``n`` is too small for that rank: the interval is
then narrower than the guarantee needs, and the version says so through ``rows``).

Per horizon step, as theirs, when the steps have enough errors each: with a time column the
``i``-th validation row after the training rows' end is step ``i``, and k expanding folds give
``k`` errors per step. A step's quantile is recorded only when every level's rank fits in its
errors (``level = 80`` needs 4 folds, ``95`` needs 19); otherwise one pooled quantile over all
validation rows serves every step — the usual case with one ``last`` window. A forecast longer
than the recorded steps uses the pooled quantile for all its steps.

Caveat: validation rows are predicted with their *true* lags, so for a model with lags shorter
than the horizon the recorded errors are one-step errors and a recursive forecast's later steps
are wider than its intervals. With a ``target_transform`` the errors are taken in the target's
units (``manymodels.targetunits``; the record says ``"units": "target"``). A ``difference``
model's folds ordered in time are judged as forecasts, its predicted changes summed from the
fold's origin, so its errors are already those of steps 1 … ``k`` (``"chained": k``) and its
widths grow only past them, as ``√(step / k)``; a version with one-step errors (folds not in
time order, or recorded before) grows them as ``√step`` (``step`` independent one-step errors
add up). A record without ``units`` holds transformed errors: ``scale`` widths
are then multiplied by the partition's spread.

The record lives in the version's feature schema (``"intervals"``), which every reader —
``forecast``, ``score``'s plan and the router's cache — already has: no extra read per answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from manymodels.exceptions import DataError
from manymodels.feature_schema import FeatureSchema
from manymodels.spec import Spec
from manymodels.spec_sections import FRACTION
from manymodels.written_columns import interval_columns, level_name

MAX_LEVELS = 10


column_names = interval_columns  # ``lo-<level>``, ``hi-<level>``: one list of written names


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``⌈(n + 1) · level / 100⌉``-th smallest of ``n`` scores (the largest when the
    rank exceeds ``n``); NaN without scores."""
    n = len(scores)
    if n == 0:
        return math.nan
    k = min(_rank(n, level), n)
    return float(np.partition(np.asarray(scores, dtype=np.float64), k - 1)[k - 1])


def _rank(n: int, level: float) -> int:
    # (n + 1) · level / 100 in exact arithmetic where it is whole (20 · 95 / 100 = 19)
    return math.ceil(round((n + 1) * level / 100, 9))


# --------------------------------------------------------------------------------------------
# training: the record a version keeps
# --------------------------------------------------------------------------------------------
def record(
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    levels: Sequence[float],
    *,
    ordered: bool,
    pool_partitions: bool = False,
) -> dict[str, Any] | None:
    """What a version keeps of its validation errors: ``levels``, ``rows`` (how many errors),
    ``quantiles`` (pooled, one per level) and, with ``ordered`` folds whose steps each hold
    enough errors, ``steps`` (one list of per-level quantiles per step). ``folds`` are the
    (true targets, predictions) of each validation fold, in row order. ``None`` when no
    error is finite (nothing to calibrate on). With ``pool_partitions`` (``[intervals]
    pool_partitions``) also ``mean_error`` and ``scores``, the errors made scale-free
    (``scale_free``): what the run pools across partitions (``manymodels.interval_pool``),
    which takes ``scores`` out again before the version is written."""
    errors = [_abs_errors(y, p) for y, p in folds]
    pooled = np.concatenate(errors) if errors else np.zeros(0)
    pooled = pooled[np.isfinite(pooled)]
    if not len(pooled):
        return None
    out: dict[str, Any] = {
        "levels": [float(lv) for lv in levels],
        "rows": len(pooled),
        "quantiles": [conformal_quantile(pooled, lv) for lv in levels],
    }
    if ordered and len(errors) >= max(_needed(lv) for lv in levels):  # one error per fold
        n_steps = min(len(e) for e in errors)
        grid = np.stack([e[:n_steps] for e in errors])  # folds × steps
        if n_steps and np.isfinite(grid).all():
            out["steps"] = [[conformal_quantile(step, lv) for lv in levels] for step in grid.T]
    if pool_partitions:
        truth = np.concatenate([np.asarray(y, dtype=np.float64) for y, _ in folds])
        out["mean_error"], out["scores"] = scale_free(pooled, _rounding(truth))
    return out


def _rounding(truth: np.ndarray) -> float:
    """Errors this small are float rounding, not errors: a constant series that a linear
    model predicts to the last bit but one (1e-16 on targets of 1/3) is a series that never
    moves, as one with exact zeros is."""
    finite = np.abs(truth[np.isfinite(truth)])
    return 1e-9 * max(float(finite.max()) if len(finite) else 0.0, 1.0)


def scale_free(errors: np.ndarray, rounding: float = 0.0) -> tuple[float, np.ndarray]:
    """The errors' mean (a partition's ``mean_error``) and each error divided by the mean of
    the *others*: a new error is divided by a mean it took no part in, so each validation
    error must be too, or the pooled scores' tail is too short (an error inside its own mean
    can never exceed ``n`` times it). No scores from fewer than 2 errors, nor from errors of
    which all but some are zero (a zero error scores 0, but one beside only zeros has no
    finite score, and leaving out just it would make the pool look tamer than it is), nor
    from errors that are all zero: such a partition's band is 0 whatever the pool says (a
    series that never moves, a product no longer sold), and its zeros only narrowed every
    other partition's band — ten dead products beside ten live ones cut the live ones' 80 %
    bands to cover about 61 % of their errors. Errors no larger than ``rounding`` count as
    zeros (``record`` passes float rounding at the targets' scale)."""
    n = len(errors)
    mean_error = float(errors.mean())
    if n < 2 or not (errors > rounding).any():  # ``rounding``: errors no larger are zeros
        return mean_error, np.zeros(0)
    others = (errors.sum() - errors) / (n - 1)
    if np.any((others <= 0) & (errors > 0)):
        return mean_error, np.zeros(0)
    scores = np.zeros(n)
    np.divide(errors, others, out=scores, where=errors > 0)
    return mean_error, scores


@dataclass(frozen=True)
class ShortLevel:
    """A level whose band rests on fewer errors than its conformal rank needs: ``needed``
    errors give ``level`` % coverage; with ``rows`` the band is the largest error, narrower
    than the guarantee needs (MAPIE refuses such a level; statsforecast and mlforecast
    interpolate, narrower still)."""

    level: float
    needed: int
    rows: int


def short_levels(rec: Mapping[str, Any] | None) -> list[ShortLevel]:
    """The levels of an interval record (``record``) whose pooled errors are too few."""
    if not rec:
        return []
    rows = int(rec.get("rows", 0))
    pool = rec.get("pool")  # a band from every partition's errors (``interval_pool``)…
    if isinstance(pool, Mapping) and rows >= 2:  # … whose scale is a mean of 2 errors or more
        rows = int(pool["rows"])
    levels = [float(lv) for lv in rec.get("levels", [])]
    return [ShortLevel(lv, _needed(lv), rows) for lv in levels if rows < _needed(lv)]


@lru_cache(maxsize=64)
def _needed(level: float) -> int:
    """The fewest errors whose conformal rank at ``level`` is within them."""
    n = 1
    while _rank(n, level) > n:
        n += 1
    return n


def _abs_errors(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(y, dtype=np.float64) - np.asarray(pred, dtype=np.float64))


def from_fits(
    spec: Spec,
    fits: Sequence[Any],
    splits: Sequence[tuple[Any, Any]],
    X: Any,
    y: np.ndarray,
    *,
    ordered: bool,
) -> dict[str, Any] | None:
    """``record`` of the chosen model's validation fits (one per split, as selection fitted
    them): one more ``predict`` per fold, no fit. ``None`` without ``[intervals]``, for a
    classifier, or when a fit cannot predict its fold (the version then has no intervals;
    nothing fails)."""
    if spec.intervals is None or spec.task != "regression" or len(fits) != len(splits):
        return None
    levels = spec.intervals.levels
    from manymodels.training.splits import take  # training imports this module, not vice versa

    try:
        folds = [
            (y[va], np.asarray(fit.predict(take(X, va)), dtype=np.float64))
            for fit, (_, va) in zip(fits, splits, strict=True)
        ]
        pool = spec.intervals.pool_partitions
        return record(folds, levels, ordered=ordered, pool_partitions=pool)
    except (ValueError, TypeError):
        return None


# --------------------------------------------------------------------------------------------
# answering: which levels, and the bands around predictions
# --------------------------------------------------------------------------------------------
def parse_levels(text: str | Sequence[Any] | None, name: str = "levels") -> list[float] | None:
    """``"80,95"`` (a query or CLI value) or a list of numbers as sorted, distinct levels;
    ``None`` for ``None``. Raises ``DataError`` for anything that is not a percentage, worded
    with ``name`` as the caller's user wrote it (``--levels`` on the command line, the
    router's ``levels``)."""
    example = f"{name} 80,95" if name.startswith("--") else f"{name}=80,95"
    if text is None:
        return None
    if isinstance(text, int | float | np.number) and not isinstance(text, bool):
        text = [text]  # levels=80 from Python: one level, where list() raised a TypeError
    if not isinstance(text, str | Sequence | np.ndarray | set | frozenset):
        raise DataError(f"{name}: give levels in percent as a list, not {type(text).__name__}")
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    out: list[float] = []
    for part in parts:
        try:
            value = float(part)
        except (TypeError, ValueError):
            value = math.nan
        if not 0 < value < 100:
            raise DataError(
                f"{name}: {str(part)!r} is not a coverage in percent between 0 and 100 "
                f"(e.g. {example})"
            )
        if value <= 1:
            raise DataError(f"{name}: {FRACTION.format(value)}")
        if not 0 < float(level_name(value)) < 100:
            raise DataError(
                f"{name}: {str(part)!r} would be named {level_name(value)}% (lo-/hi- names "
                "keep 6 significant digits): give at most 6 significant digits"
            )
        out.append(value)
    if not out or len(out) > MAX_LEVELS:
        raise DataError(f"{name}: give 1 to {MAX_LEVELS} levels (e.g. {example})")
    return sorted(set(out))


def check_levels(schema: FeatureSchema, levels: Sequence[float], *, what: str) -> None:
    """``DataError`` naming the first level ``what`` (a partition and version) did not record,
    and the levels it did."""
    if schema.classifies:
        raise DataError(
            f"{what} is a classifier: prediction intervals are for regression models only"
        )
    rec = schema.intervals
    have = [float(v) for v in rec["levels"]] if rec else []
    missing = [lv for lv in levels if float(lv) not in have]
    if missing:
        # as asked, exactly: a recorded 99.99994 would otherwise read as the asked 99.9999
        kept = ", ".join(map(_exact, have)) or "none"
        raise DataError(
            f"{what} has no {_exact(missing[0])}% interval (levels recorded: {kept}; "
            "[intervals] levels in the spec records them when it trains)"
        )


def _exact(level: float) -> str:
    """A level as written, exactly: ``80.00000000001`` asked read "no 80% interval (levels
    recorded: 80, …)", and a recorded 99.99994 would read as an asked 99.9999."""
    return level_name(level) if float(level_name(level)) == float(level) else repr(float(level))


def widths(schema: FeatureSchema, levels: Sequence[float], steps: int | None = None) -> np.ndarray:
    """Half-widths, shape ``(len(levels), steps or 1)``: per forecast step when the version
    recorded at least ``steps`` steps, else its pooled quantile repeated. NaN for a level it
    did not record (``check_levels`` first where that is an error)."""
    rec = schema.intervals
    n = steps or 1
    out = np.full((len(levels), n), np.nan)
    if rec is None:
        return out
    have = [float(v) for v in rec["levels"]]
    by_step = rec.get("steps") if steps is not None else None
    for i, lv in enumerate(levels):
        if float(lv) not in have:
            continue
        j = have.index(float(lv))
        if by_step is not None and len(by_step) >= n:
            out[i] = [_float(by_step[s][j]) for s in range(n)]
        else:
            out[i] = _float(rec["quantiles"][j])
    return out if steps is None else out * _untransformed(schema, n)


def _untransformed(schema: FeatureSchema, steps: int) -> np.ndarray:
    """What turns a forecast's half-widths, learnt on a transformed target (``[lags]
    target_transform``), back into the target's units, per step: ``scale`` multiplies by the
    partition's spread, unless the record's errors are in ``"units": "target"`` already (the
    training hook turns validation predictions back); ``difference`` sums ``s`` predicted
    changes by step ``s``, whose error — of ``s`` independent one-step errors — grows as
    ``√s``; errors taken of such sums already (``"chained": k``, folds of ``k`` steps) grow
    only past the ``k``-th step, as ``√(s / k)``."""
    transform = schema.transform or {}
    kind = transform.get("kind")
    record = schema.intervals or {}
    if kind == "scale" and record.get("units") != "target":
        return np.full(steps, float(transform.get("spread", 1.0)))
    if kind == "difference":  # errors of forecasts ``chained`` steps long already grew
        known = max(int(record.get("chained") or 1), 1)
        return np.sqrt(np.maximum(np.arange(1, steps + 1, dtype=np.float64) / known, 1.0))
    return np.ones(steps)


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def bands(
    predictions: np.ndarray, half_widths: np.ndarray, levels: Sequence[float]
) -> dict[str, np.ndarray]:
    """``{"lo-80": prediction - q, "hi-80": prediction + q, …}``; ``half_widths`` as
    ``widths`` returns them, with one column or one per prediction."""
    pred = np.asarray(predictions, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for i, lv in enumerate(levels):
        q = half_widths[i] if half_widths.shape[1] == len(pred) else half_widths[i, 0]
        out[f"lo-{level_name(lv)}"] = pred - q
        out[f"hi-{level_name(lv)}"] = pred + q
    return out


def recorded_levels(schemas: Sequence[FeatureSchema]) -> list[float]:
    """Every level any of ``schemas`` recorded: the columns an answer carries by default."""
    found = {float(v) for s in schemas if (rec := s.intervals) for v in rec["levels"]}
    return sorted(found)


def choose_levels(
    schemas: Sequence[tuple[str, FeatureSchema]], levels: Sequence[float] | None
) -> list[float]:
    """The levels an answer over these ``(what, schema)`` pairs carries: ``levels`` when every
    version recorded them (else ``DataError`` naming the first that did not), or by default
    every level any of them recorded (columns stay NaN for a version without that level)."""
    if levels is None:
        return recorded_levels([s for _, s in schemas])
    for what, schema in schemas:
        check_levels(schema, levels, what=what)
    return list(levels)


def stacked_bands(
    schemas: Sequence[FeatureSchema],
    predictions: Sequence[np.ndarray],
    levels: Sequence[float],
    *,
    steps: int | None = None,
) -> dict[str, np.ndarray]:
    """``bands`` of several versions' predictions (one array each, ``steps`` forecast steps
    long when given), concatenated in the same order."""
    if not levels:
        return {}
    parts = [
        bands(p, widths(s, levels, steps), levels)
        for s, p in zip(schemas, predictions, strict=True)
    ]
    names = column_names(levels)
    if not parts:
        return {name: np.zeros(0) for name in names}
    return {name: np.concatenate([part[name] for part in parts]) for name in names}


# --------------------------------------------------------------------------------------------
# JSON answers (the router)
# --------------------------------------------------------------------------------------------
def json_bands(
    schema: FeatureSchema,
    levels: Sequence[float],
    predictions: Sequence[Any],
    *,
    what: str,
    steps: int | None = None,
) -> dict[str, list[float | None]]:
    """``{"lo-80": […], "hi-80": […]}`` around one version's JSON predictions (null where a
    bound is not finite); ``DataError`` when it did not record a level (``check_levels``).
    ``steps``: the predictions are that many forecast steps."""
    check_levels(schema, levels, what=what)
    pred = np.array([math.nan if p is None else p for p in predictions], dtype=np.float64)
    out = bands(pred, widths(schema, levels, steps), levels)
    return {name: [_json(v) for v in values.tolist()] for name, values in out.items()}


def _json(value: float) -> float | None:
    return value if math.isfinite(value) else None
