"""Scoring a fitted model on validation rows, fast: a scikit-learn scorer without its per-call
overhead when it only needs ``predict`` (that overhead is comparable to fitting a small model)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from sklearn.metrics import get_scorer

_sum = np.add.reduce


def _mae(y: np.ndarray, p: np.ndarray) -> float:
    """``np.mean(np.abs(y - p))`` to the bit (``np.mean`` is this sum divided by the count)
    without its ~25 µs of argument handling: selection scores every option on every fold of
    every partition (8,000 calls on a 91-partition panel)."""
    return _mean(np.abs(y - p))


def _mse(y: np.ndarray, p: np.ndarray) -> float:
    """``np.mean((y - p) ** 2)`` to the bit, as ``_mae``."""
    return _mean((y - p) ** 2)


def _mean(d: np.ndarray) -> float:
    """``np.mean(d)``: for float64, its own sum divided by the count (other types go through
    ``np.mean``, which sums integers and small floats in another type, and warns of no rows)."""
    if d.dtype == np.float64 and d.size:
        return float(_sum(d) / d.size)
    return float(np.mean(d))


def mean_of(scores: Sequence[float]) -> float:
    """``float(np.mean(scores))`` of a list of scores, to the bit (``_mean``): selection takes
    one per option over its folds, the interval replay one per option and held-out fold
    (3,000 on Cigar), and ``np.mean``'s argument handling cost more than the sum."""
    return _mean(np.asarray(scores, dtype=np.float64))


# Plain numpy for the commonest scorers on 1-D targets: sklearn's input checks cost ~3× the
# arithmetic. Tests check each against sklearn.
_NUMPY_SCORERS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "neg_mean_absolute_error": lambda y, p: -_mae(y, p),
    "neg_mean_squared_error": lambda y, p: -_mse(y, p),
    "neg_root_mean_squared_error": lambda y, p: -math.sqrt(_mse(y, p)),
    "accuracy": lambda y, p: float(np.mean(y == p)),
}


class Metric:
    """A scikit-learn scorer, called without its per-call overhead when it only needs
    ``predict`` (that overhead is comparable to fitting a small model)."""

    def __init__(self, name: str, pos_label: Any = None) -> None:
        self.name = name
        self._numpy = _NUMPY_SCORERS.get(name)
        self._scorer = get_scorer(name)
        if pos_label is not None:  # the class a binary metric counts (``f1``: not always 1)
            self._scorer = _with_pos_label(self._scorer, pos_label)
        func = getattr(self._scorer, "_score_func", None)
        sign = getattr(self._scorer, "_sign", None)
        kwargs = getattr(self._scorer, "_kwargs", None)
        self._fast: tuple[Callable[..., float], int, dict[str, Any]] | None = None
        if getattr(self._scorer, "_response_method", None) == "predict" and func and sign:
            self._fast = (func, sign, dict(kwargs or {}))

    def __call__(self, estimator: Any, X: Any, y: np.ndarray) -> float:
        if self._numpy is not None and y.ndim == 1 and y.dtype.kind in "fiub":
            pred = np.asarray(estimator.predict(X))
            if pred.shape == y.shape and pred.dtype.kind in "fiub":
                return self._numpy(y, pred)
        if self._fast is not None:
            func, sign, kwargs = self._fast
            return float(sign * func(y, estimator.predict(X), **kwargs))
        return float(self._scorer(estimator, X, y))

    def of_predictions(self, y: np.ndarray, pred: np.ndarray, X: Any = None) -> float:
        """The score of predictions already made, as ``self(estimator, X, y)`` takes it of an
        estimator that predicts ``pred``: the interval replay scores every option again on
        parts of folds (12,000 calls on Cigar), and wrapping each in an estimator cost more
        than the sum."""
        pred = np.asarray(pred)
        numeric = y.ndim == 1 and y.dtype.kind in "fiub" and pred.dtype.kind in "fiub"
        if self._numpy is not None and numeric and pred.shape == y.shape:
            return self._numpy(y, pred)
        return self(Predicted(pred), X, y)


class Predicted:
    """Predictions already made, answering a scorer's ``predict``: the score of a prediction
    is taken without predicting twice."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def predict(self, X: Any) -> np.ndarray:
        return self.values


@lru_cache(maxsize=32)
def metric(name: str, pos_label: Any = None) -> Metric:
    return Metric(name, pos_label)


def _with_pos_label(scorer: Any, pos_label: Any) -> Any:
    """scikit-learn's scorer ``scorer`` with ``pos_label`` among its arguments: its named
    scorers (``f1``, ``average_precision``…) fix ``pos_label`` at 1, which text labels lack."""
    from sklearn.metrics import make_scorer

    return make_scorer(
        scorer._score_func,
        response_method=scorer._response_method,
        greater_is_better=scorer._sign > 0,
        **{**scorer._kwargs, "pos_label": pos_label},
    )


def beats(challenger: float, incumbent: float, margin: float) -> bool:
    """Whether score ``challenger`` beats ``incumbent`` by ``margin`` of the incumbent's
    magnitude (scores are higher-is-better: for an error metric, an error ``margin`` lower).

    A win smaller than the margin on a few validation folds is as likely noise as skill; the
    incumbent (a fitted model against naive, the global model against a local one) keeps it.
    ``margin = 0``: strictly better wins, the plain argmax."""
    return challenger > incumbent + margin * abs(incumbent)
