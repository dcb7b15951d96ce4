"""Live accuracy: the error of a version on rows whose actual values came later.

Predictions are not stored: the version that answered is deterministic, so the posted rows
are scored again by it (the answer named its version) and compared with their actuals. Only
sums are kept — per partition, version and UTC day of arrival, the newest ``WINDOWS`` days —
from which the spec's metric is computed when it decomposes into per-row parts (MAE, MSE,
RMSE, accuracy); any other metric is reported as MAE (regression) or the error rate
(classification), and then not compared with the validation score, which is in other units.

The naive answer on the same rows is what training's naive baseline would answer
(``candidates.naive_baseline``): for a classifier the class of the smoothed constant (its
counts pulled toward the table's class rates), the training mean, or — time-ordered — the
previous actual (the last training target for the first actual of a version).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from manymodels.exceptions import InvalidRows
from manymodels.huge_numbers import is_too_large, too_large
from manymodels.inputs import problem
from manymodels.label_matching import KnownClasses, same_label

HUGE = 1e150  # training.rows.HUGE, without its imports: a value whose square overflows

WINDOWS = 14
"""Days of actuals kept per partition and version (older days are deleted as new ones come)."""

DECOMPOSABLE = {
    "neg_mean_absolute_error",
    "neg_mean_squared_error",
    "neg_root_mean_squared_error",
    "accuracy",
}


@dataclass(frozen=True)
class ErrorSums:
    """What one batch of actuals adds to a window: the model's and the naive answer's error
    parts over ``rows`` rows.

    A classifier's ``wrong`` counts its most probable class, as its validation accuracy and
    the naive majority class are counted, so that the ratios compare like with like; a
    binary classifier with a ``[decision]`` also counts the labels it answered at its
    threshold (what a consumer acted on) in ``abs_error``, over ``sq_error`` rows (rows
    recorded before labels were counted apart have 0 there). Counted in ``wrong``, the
    labels of a cost threshold of 1/11 — wrong more often than the most probable class by
    design — read as a live error 5–8 times the validation error on rows like the training
    rows, and flagged every such partition ``degraded``."""

    rows: int
    abs_error: float
    sq_error: float
    wrong: int
    naive_abs_error: float
    naive_sq_error: float
    naive_wrong: int

    def __add__(self, other: ErrorSums) -> ErrorSums:
        return ErrorSums(
            *(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True))  # type: ignore[arg-type]
        )

    def astuple(self) -> tuple[float, ...]:
        return (
            self.rows, self.abs_error, self.sq_error, self.wrong,
            self.naive_abs_error, self.naive_sq_error, self.naive_wrong,
        )  # fmt: skip


_OVERFLOW = (
    "this row's error cannot be measured: the model's prediction is not a finite number, or "
    "the target is too far from it to square"
)


def targets(
    rows: Sequence[Mapping[str, Any]],
    target: str,
    *,
    task: str,
    positions: Sequence[int] | None = None,
    classes: Sequence[Any] | None = None,
) -> list[Any]:
    """The actual value of every row; ``InvalidRows`` naming the target column for a row
    without one (or, for regression, with one that is not a number; for classification, with
    a label none of ``classes`` is — a typo, or another column's value — that would count as
    the model's mistake). ``positions``: the rows' places in the request, which the errors
    name."""
    errors: list[dict[str, Any]] = []
    out: list[Any] = []
    where = positions if positions is not None else range(len(rows))
    known = KnownClasses(classes or ())
    for i, row in zip(where, rows, strict=True):
        value = row.get(target)
        if value is None:
            errors.append(problem(i, target, f"target '{target}' is missing", "missing"))
        elif task == "classification" and classes:
            why = known.refusal(value)
            if why is not None:
                errors.append(problem(
                    i, target, f"target '{target}' is {value!r}, {why} the version knows "
                    f"({known.shown})", "enum",
                ))  # fmt: skip
        elif task != "classification" and (
            isinstance(value, bool) or not isinstance(value, int | float | np.number)
        ):
            errors.append(problem(i, target, f"target '{target}' must be a number", "float_type"))
        elif task != "classification" and is_too_large(value):  # JSON's 1000…0, 400 digits
            what = f"target '{target}'"
            errors.append(problem(i, target, too_large(what, value), "number_too_large"))
        elif task != "classification" and not _finite(value):  # 1e400 or NaN in JSON
            errors.append(problem(i, target, f"target '{target}' must be finite", "finite_number"))
        out.append(value)
    if errors:
        raise InvalidRows(errors)
    return out


def _finite(value: float | np.number) -> bool:
    """Whether ``value`` is a finite float: an integer past float's range (JSON's
    ``1000…0`` of 400 digits, which the router reads as a Python int) is not, where
    ``math.isfinite`` raised ``OverflowError`` on it (the actuals route's 500)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def error_sums(
    actual: Sequence[Any],
    predicted: Sequence[Any],
    *,
    task: str,
    naive: Any,
    time_ordered: bool,
    previous: Any = None,
    positions: Sequence[int] | None = None,
    labels: Sequence[Any] | None = None,
) -> tuple[ErrorSums, Any]:
    """The error parts of ``predicted`` and of the naive answer against ``actual`` (rows in
    time order), and the last actual (the next batch's first naive answer when
    time-ordered). ``previous`` is the last actual posted before these.

    Raises ``InvalidRows`` naming (by ``positions``, their places in the request) the rows
    without a finite prediction or whose error is too large to square and sum (``|e| >
    1e150``, a target of ``1e308``): an infinite sum would be kept in the day's window and
    hide every later error. A previous actual that large is not the naive answer: the
    training rows' naive (the version's profile) is. ``labels``: a classifier's answers at
    its ``[decision]`` threshold, counted apart (see ``ErrorSums``)."""
    n = len(actual)
    if task == "classification":
        wrong = sum(not same_label(p, a) for p, a in zip(predicted, actual, strict=True))
        naive_wrong = sum(not same_label(naive, a) for a in actual)
        labelled = 0.0 if labels is None else float(n)
        mislabelled = (
            0.0 if labels is None
            else float(sum(not same_label(p, a) for p, a in zip(labels, actual, strict=True)))
        )  # fmt: skip
        sums = ErrorSums(n, mislabelled, labelled, wrong, 0.0, 0.0, naive_wrong)
        return sums, actual[-1] if n else previous
    y = np.asarray(actual, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if time_ordered:
        first = previous if _squarable(previous) else naive  # else the training rows' naive
        base = np.concatenate(([np.nan if first is None else float(first)], y[:-1]))
    else:
        base = np.full(n, np.nan if naive is None else float(naive))
    with np.errstate(over="ignore", invalid="ignore"):
        e, b = y - p, y - base
        # |error| ≤ 1e150: its square, and the sums of a day's window, stay finite
        bad = ~(np.abs(e) <= HUGE) | (np.isfinite(base) & ~(np.abs(b) <= HUGE))
    if bad.any():
        where = positions if positions is not None else range(n)
        raise InvalidRows(
            [
                problem(where[int(i)], None, _OVERFLOW, "error_not_finite")
                for i in np.flatnonzero(bad)
            ]
        )
    answered = np.isfinite(b)
    scale = n / int(answered.sum()) if answered.any() else math.nan
    sums = ErrorSums(
        n, float(np.abs(e).sum()), float((e**2).sum()), 0,
        # the rows with a naive answer (the first may have none: no earlier actual, no
        # recorded naive), scaled to all n rows so that their mean is what the window reads
        float(np.abs(b[answered]).sum() * scale), float((b[answered] ** 2).sum() * scale), 0,
    )  # fmt: skip
    return sums, float(y[-1]) if n else previous


def _squarable(value: Any) -> bool:
    """A number whose square is finite: an earlier actual of 1e160 answers no naive error."""
    return isinstance(value, int | float) and math.isfinite(value) and abs(value) <= HUGE


def live_error(metric: str, task: str, sums: ErrorSums, *, naive: bool = False) -> float | None:
    """The error (lower is better) on live rows in the units of ``live_metric(metric)``."""
    if sums.rows <= 0:
        return None
    n = sums.rows
    name = live_metric(metric, task)
    if name == "accuracy":
        return (sums.naive_wrong if naive else sums.wrong) / n
    sq = sums.naive_sq_error if naive else sums.sq_error
    if name == "neg_mean_squared_error":
        return sq / n
    if name == "neg_root_mean_squared_error":
        return math.sqrt(sq / n)
    return (sums.naive_abs_error if naive else sums.abs_error) / n


def label_error(task: str, sums: ErrorSums) -> float | None:
    """A ``[decision]`` classifier's error rate of the labels it answered at its threshold,
    over the rows they were counted on; ``None`` without such rows."""
    if task != "classification" or sums.sq_error <= 0:
        return None
    return sums.abs_error / sums.sq_error


def live_metric(metric: str, task: str) -> str:
    """The metric live errors are reported in: the spec's when it decomposes per row."""
    if metric in DECOMPOSABLE:
        return metric
    return "accuracy" if task == "classification" else "neg_mean_absolute_error"


def validation_error(metric: str, score: float | None) -> float | None:
    """A version's validation score as an error comparable with ``live_error`` (``None`` for
    metrics that are not decomposable)."""
    if score is None or metric not in DECOMPOSABLE or not math.isfinite(score):
        return None
    return 1.0 - score if metric == "accuracy" else 0.0 - score  # 0.0, not -0.0, for a perfect one


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` for errors; ``None`` when undefined (no error against none: a perfect model
    still perfect), infinite for an error against none (shown ``∞``, ``null`` in JSON)."""
    if a is None or b is None or not math.isfinite(a) or not math.isfinite(b):
        return None
    if b == 0:
        return None if a == 0 else math.inf
    return a / b
