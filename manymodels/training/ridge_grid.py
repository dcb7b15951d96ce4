"""A Ridge candidate's whole alpha grid cross-validated from one decomposition per fold.

Selection fits every grid point on every validation fold. For the most common candidate —
``sklearn.linear_model.Ridge``, scaled or not, a grid over ``alpha`` — that is a scikit-learn
``Pipeline(StandardScaler(), Ridge(alpha))`` fitted ``folds × alphas`` times per partition,
~4–5 ms each of which nearly all is scikit-learn's per-call input checks on a few hundred
rows (benchmarks/HISTORY.md, #12's seventh pass: 2,753 such fits were 18 of 28 s). The
solution itself is a ``p × p`` system: ``(ZᵀZ + αI) w = Zᵀ(y − ȳ)`` on the centred (and, with
``scale``, standardised) features ``Z``. One eigendecomposition of ``ZᵀZ`` per fold solves it
for every ``alpha`` at once, as ``RidgeCV`` and glmnet do.

Only the validation fits come from here, and they are the same model: the scaler's mean and
scale (its variance formula and near-constant rule), Ridge's centring and intercept;
``tests/test_ridge_grid.py`` holds the predictions to scikit-learn's. The chosen grid point
is refitted on all rows into scikit-learn's own ``Pipeline`` (``ridge_refit``, the same
arithmetic, attributes set on the real estimators), so the stored model is as before.
Anything else (other parameters, categorical columns, missing or infinite values, no feature
column, a system too ill-conditioned to solve to working precision — where
scikit-learn warns) takes the general path, which fits the estimator itself and reports its
own errors and warnings; which alpha, rows and arithmetic both shortcuts take is
``ridge_scope``'s to say. With more features than rows the ``p × p`` system costs more than
scikit-learn's ``n × n`` kernel form; partitions have few features.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from manymodels.spec_sections import Candidate
from manymodels.training.ridge_scope import finite_rows, plain_alpha, solved

RIDGE = "sklearn.linear_model.Ridge"
_EPS = np.finfo(np.float64).eps


class RidgeFoldFit:
    """One validation fold's fitted Ridge (behind a scaler or not): what selection needs of a
    fit — ``predict`` — and nothing it would store."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float):
        self.mean = mean
        self.scale = scale
        self.coef = coef
        self.intercept = intercept

    def predict(self, X: Any) -> np.ndarray:
        Z = (np.ascontiguousarray(X, dtype=np.float64) - self.mean) / self.scale
        return Z @ self.coef + self.intercept


def made(fits: Sequence[Any]) -> bool:
    """Whether these validation fits were made here rather than by scikit-learn."""
    return any(isinstance(f, RidgeFoldFit) for f in fits)


def alphas(candidate: Candidate, grid: Sequence[dict[str, Any]]) -> list[float] | None:
    """The grid's ``alpha`` values when this candidate can be cross-validated here, else None:
    a class-path Ridge whose grid sets nothing but a ``plain_alpha`` (1.0 when unset)."""
    if candidate.estimator != RIDGE:
        return None
    out: list[float] = []
    for params in grid:
        if set(params) - {"alpha"}:
            return None
        alpha = params.get("alpha", 1.0)
        if not plain_alpha(alpha):
            return None
        out.append(float(alpha))
    return out


_WIDE = 200
"""Up to this many features the p × p decomposition costs a few milliseconds, whatever the
rows: the shortcut keeps them (a partition of 4 rows and 8 features)."""


def fold_fits(
    X: Any,
    y: np.ndarray,
    splits: Sequence[tuple[Any, Any]],
    alpha_grid: Sequence[float],
    *,
    scale: bool,
) -> list[list[RidgeFoldFit]] | None:
    """``[grid point][fold]`` fits of ``Ridge(alpha)`` (after ``StandardScaler`` with
    ``scale``) on each fold's training rows; None when the rows are not ``finite_rows`` or
    the arithmetic is not ``solved`` (scikit-learn then fits, and says what it says)."""
    try:
        # C order whatever the caller's layout: the same rows give the same bits (BLAS sums
        # in another order over a Fortran-ordered copy)
        values = np.ascontiguousarray(X, dtype=np.float64)
        target = np.ascontiguousarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if not finite_rows(values, target):
        return None
    return solved(partial(_solved, values, target, splits, alpha_grid, scale))


def _solved(
    values: np.ndarray,
    target: np.ndarray,
    splits: Sequence[tuple[Any, Any]],
    alpha_grid: Sequence[float],
    scale: bool,
) -> list[list[RidgeFoldFit]] | None:
    out: list[list[RidgeFoldFit]] = [[] for _ in alpha_grid]
    width = values.shape[1]
    for train, _ in splits:
        rows, ys = values[train], target[train]
        if len(rows) == 0:
            return None
        if width > max(len(rows), _WIDE):
            # more features than rows (a wide file): the decomposition of the features' p × p
            # matrix cost O(p³), 66 s a fold at 3,000 columns where scikit-learn's Ridge
            # solves the rows' n × n system in 2 ms; ``train`` took minutes a partition
            return None
        if scale:
            mean, _, spread = scaler_moments(rows)
        else:
            mean, spread = np.zeros(width), np.ones(width)
        Z = (rows - mean) / spread
        z_mean, y_mean = Z.mean(axis=0), float(ys.mean())
        Zc = Z - z_mean
        eigvals, eigvecs = np.linalg.eigh(Zc.T @ Zc)
        eigvals = np.clip(eigvals, 0.0, None)
        projected = eigvecs.T @ (Zc.T @ (ys - y_mean))
        for at, alpha in enumerate(alpha_grid):
            if (eigvals[0] + alpha) < _EPS * (eigvals[-1] + alpha):
                return None  # scikit-learn solves it with a warning: let it
            coef = eigvecs @ (projected / (eigvals + alpha))
            out[at].append(RidgeFoldFit(mean, spread, coef, y_mean - float(z_mean @ coef)))
    return out


def scaler_moments(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``StandardScaler``'s ``mean_``, ``var_`` and ``scale_``: its corrected two-pass variance
    (``_incremental_mean_and_var``), and a column whose variance is indistinguishable from
    rounding error (its ``_is_constant_feature`` bound) scaled by 1."""
    n = len(rows)
    mean = rows.sum(axis=0) / n
    centred = rows - mean
    correction = centred.sum(axis=0)
    var = ((centred**2).sum(axis=0) - correction**2 / n) / n
    constant = var <= n * _EPS * var + (n * mean * _EPS) ** 2
    return mean, var, np.where(constant, 1.0, np.sqrt(var))
