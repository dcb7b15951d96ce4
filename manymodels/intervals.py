"""Conformal prediction intervals from each partition's validation residuals: what a version
records when it is trained (the bands around an answer are ``manymodels.interval_bands``').

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
add up). A model of the level whose every lag is at least the fold's length makes forecasts of
steps 1 … ``k`` on its folds too (``training.heldout.direct_steps``), so a version of changes
whose held-out folds came partly from such a model keeps ``chained``. A record without
``units`` holds transformed errors: ``scale`` widths are then multiplied by the partition's
spread.

The record lives in the version's feature schema (``"intervals"``), which every reader —
``forecast``, ``score``'s plan and the router's cache — already has: no extra read per answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

# answering (levels asked, bands around predictions) is ``interval_bands``'; re-exported for
# the callers that reach it as ``intervals.<name>`` (interval_bands imports nothing from here)
from manymodels.interval_bands import MAX_LEVELS as MAX_LEVELS
from manymodels.interval_bands import bands as bands
from manymodels.interval_bands import check_levels as check_levels
from manymodels.interval_bands import choose_levels as choose_levels
from manymodels.interval_bands import json_bands as json_bands
from manymodels.interval_bands import parse_levels as parse_levels
from manymodels.interval_bands import recorded_levels as recorded_levels
from manymodels.interval_bands import stacked_bands as stacked_bands
from manymodels.interval_bands import widths as widths
from manymodels.spec import Spec
from manymodels.written_columns import interval_columns

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
    rows: Sequence[Any] | None = None,
) -> dict[str, Any] | None:
    """What a version keeps of its validation errors: ``levels``, ``rows`` (how many errors),
    ``quantiles`` (pooled, one per level) and, with ``ordered`` folds whose steps each hold
    enough errors, ``steps`` (one list of per-level quantiles per step). ``folds`` are the
    (true targets, predictions) of each validation fold, in row order. ``None`` when no
    error is finite (nothing to calibrate on). With ``pool_partitions`` (``[intervals]
    pool_partitions``) also ``mean_error`` and ``scores``, the errors made scale-free
    (``scale_free``): what the run pools across partitions (``manymodels.interval_pool``),
    which takes ``scores`` out again before the version is written. ``rows``: each fold's
    validation rows, where folds may share rows (``[validation] step_size``): a scale-free
    error is then divided by the mean of the errors of *other* rows (``scale_free``)."""
    errors = [_abs_errors(y, p) for y, p in folds]
    pooled = np.concatenate(errors) if errors else np.zeros(0)
    finite = np.isfinite(pooled)
    pooled = pooled[finite]
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
        groups = _row_groups(rows, finite) if rows is not None else None
        out["mean_error"], out["scores"] = scale_free(pooled, _rounding(truth), groups)
    return out


def _row_groups(rows: Sequence[Any], finite: np.ndarray) -> np.ndarray | None:
    """Each finite error's validation row (``record``'s ``rows``, folds concatenated);
    ``None`` when no row is validated twice (disjoint folds: nothing to group)."""
    index = np.concatenate(
        [np.arange(r.start, r.stop) if isinstance(r, slice) else np.asarray(r) for r in rows]
    )
    if len(index) != len(finite):
        return None
    index = index[finite]
    return index if len(np.unique(index)) < len(index) else None


def _rounding(truth: np.ndarray) -> float:
    """Errors this small are float rounding, not errors: a constant series that a linear
    model predicts to the last bit but one (1e-16 on targets of 1/3) is a series that never
    moves, as one with exact zeros is."""
    finite = np.abs(truth[np.isfinite(truth)])
    return 1e-9 * max(float(finite.max()) if len(finite) else 0.0, 1.0)


def scale_free(
    errors: np.ndarray, rounding: float = 0.0, groups: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
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
    zeros (``record`` passes float rounding at the targets' scale). ``groups``: each error's
    validation row, where folds overlap (``[validation] step_size``): the same period
    forecast from several origins errs alike, so "the others" are the errors of other rows
    — with its own row's errors in it, an error's mean is partly itself, and the pooled
    scores' tail is too short (a new period's error shares a row with none)."""
    n = len(errors)
    mean_error = float(errors.mean())
    if n < 2 or not (errors > rounding).any():  # ``rounding``: errors no larger are zeros
        return mean_error, np.zeros(0)
    if groups is None:
        others = (errors.sum() - errors) / (n - 1)
    else:
        _, where, counts = np.unique(groups, return_inverse=True, return_counts=True)
        if len(counts) < 2:
            return mean_error, np.zeros(0)
        own = np.bincount(where, weights=errors)[where]
        others = (errors.sum() - own) / (n - counts[where])
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
    frames: Callable[[Any], Any] | None = None,
) -> dict[str, Any] | None:
    """``record`` of the chosen model's validation fits (one per split, as selection fitted
    them): one more ``predict`` per fold (of ``frames``, ``Folds.rows``, when given), no fit.
    ``None`` without ``[intervals]``, for a classifier, or when a fit cannot predict its fold
    (the version then has no intervals; nothing fails)."""
    if spec.intervals is None or spec.task != "regression" or len(fits) != len(splits):
        return None
    levels = spec.intervals.levels
    from manymodels.training.splits import frames_of  # training imports this, not vice versa

    frame = frames_of(X, frames)
    try:
        folds = [
            (y[va], np.asarray(fit.predict(frame(va)), dtype=np.float64))
            for fit, (_, va) in zip(fits, splits, strict=True)
        ]
        pool = spec.intervals.pool_partitions
        rows = [va for _, va in splits] if spec.validation.step_size is not None else None
        return record(folds, levels, ordered=ordered, pool_partitions=pool, rows=rows)
    except (ValueError, TypeError):
        return None
