"""The chosen Ridge (behind ``scale = true``'s scaler or not) refitted on all rows without
scikit-learn's per-call machinery, into the same fitted scikit-learn objects.

``ridge_grid`` already scores a Ridge candidate's alpha grid from one decomposition per fold;
the winner's refit on all rows was still ``Pipeline(StandardScaler(), Ridge(alpha)).fit``,
~2 ms of CPU a partition, nearly all parameter validation, ``check_array`` on copies of the
rows and the pipeline's step bookkeeping, against ~0.2 ms here (benchmarks/HISTORY.md, #12,
twenty-seventh pass). Here the same arithmetic runs in the same order — the scaler's
corrected two-pass variance, Ridge's centring, ``XᵀX + αI`` solved by
``scipy.linalg.solve(assume_a="pos")`` as its cholesky solver does — and the results are set
on the estimators themselves, attribute for attribute, so the artifact, serving and
forecasting are those of scikit-learn's fit (the same bits on the tested inputs,
``tests/test_ridge_refit.py``).

Only what that solver would do takes this path: exactly ``Ridge`` with ``solver="auto"``,
``fit_intercept``, not ``positive``, a positive scalar ``alpha`` and parameters scikit-learn
accepts; exactly a default ``StandardScaler`` in front, or nothing, in a quiet pipeline
without callbacks; estimators not fitted before; a 1-D float target; dense float64 finite
features with at least as many rows as features, in an array or a frame of uniquely
string-named float64 columns; and a system whose reciprocal condition number is far from
where scipy warns. All else (and every error, warning, log line or change to the caller's
rows) is scikit-learn's own ``fit``. The alpha, the rows and the arithmetic's guard are
``ridge_scope``'s, asked by ``ridge_grid`` too; the estimator's other parameters are asked
here alone (the grid's candidate leaves them at their defaults).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from manymodels.candidates import MeanOf
from manymodels.training.ridge_grid import scaler_moments
from manymodels.training.ridge_scope import finite_rows, plain_alpha, solved
from manymodels.training.shared_columns import SharedColumns

_RCOND = 1e-10
"""Below this reciprocal condition number (1-norm, LAPACK's estimate) scikit-learn fits: scipy
warns under machine epsilon, and an estimate from our own factorisation may differ from its
by a little, never by six orders of magnitude."""


def fit(model: Any, X: Any, y: np.ndarray) -> Any:
    """``model`` fitted on ``X, y`` in place, as ``model.fit(X, y)`` would (the members of a
    top-2 ``MeanOf`` each so), and returned."""
    if type(model) is MeanOf:  # two members of one preprocessing shape transform X once
        shared = SharedColumns(X, y)
        for member in model.members:
            if hasattr(member, "fit") and not shared.in_place(member):
                fit(member, X, y)
        return model
    if not fitted_here(model, X, y):
        model.fit(X, y)
    return model


def _parts(model: Any) -> tuple[Any, Any] | None:
    """The scaler (or None) and the Ridge of a model this path fits, else None."""
    if type(model).__name__ not in ("Ridge", "Pipeline"):
        return None  # scikit-learn's linear models and pipelines not imported for others
    from sklearn import get_config
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    config = get_config()
    if config.get("transform_output", "default") != "default" or config.get("array_api_dispatch"):
        return None  # a host's set_output (the scaler hands Ridge a frame), or array API code
    if type(model) is Ridge:
        scaler, ridge = None, model
    elif (
        type(model) is Pipeline
        and len(model.steps) == 2
        and type(model.steps[0][1]) is StandardScaler
        and type(model.steps[1][1]) is Ridge
        and model.memory is None
        and getattr(model, "transform_input", None) is None
    ):
        scaler, ridge = model.steps[0][1], model.steps[1][1]
        if hasattr(scaler, "_sklearn_output_config"):
            return None  # the pipeline's own set_output, likewise
        if not (scaler.with_mean is True and scaler.with_std is True and scaler.copy is True):
            return None  # copy=False: scikit-learn scales the caller's rows in place
        if not _plain_pipeline(model) or not _unfitted(scaler):
            return None
        if "_skl_callbacks" in vars(scaler):
            return None  # the scaler's own callbacks (``set_callbacks``), called by its fit
    else:
        return None
    if not _plain_ridge(ridge, bare=scaler is None) or not _unfitted(ridge):
        return None
    return scaler, ridge


def _plain_ridge(ridge: Any, *, bare: bool) -> bool:
    """Whether scikit-learn's fit of ``ridge`` would take the cholesky solver and neither
    raise on a parameter (``_validate_params``, ~0.1 ms: checked here by hand) nor touch the
    caller's rows (``copy_X=False`` centres them in place when nothing copied them first)."""
    tol, max_iter, seed = ridge.tol, ridge.max_iter, ridge.random_state
    return (
        ridge.solver == "auto"
        and ridge.fit_intercept is True
        and ridge.positive is False
        and (ridge.copy_X is True or (not bare and ridge.copy_X is False))
        and plain_alpha(ridge.alpha)
        and type(tol) in (int, float)
        and 0 <= tol < np.inf
        and (max_iter is None or (type(max_iter) is int and max_iter >= 1))
        and (seed is None or (type(seed) is int and 0 <= seed < 2**32))
    )


_PIPELINE_PARAMS = frozenset({"steps", "memory", "verbose", "transform_input"})


def _plain_pipeline(model: Any) -> bool:
    """Whether scikit-learn's fit of this two-step pipeline would neither raise on its
    parameters or step names, print (``verbose``), call callbacks (``set_callbacks``), nor
    rewrite its ``steps`` (a tuple, or a step given as a list, becomes a list of tuples)."""
    steps = model.steps
    names = [step[0] if type(step) is tuple and len(step) == 2 else None for step in steps]
    return (
        type(steps) is list
        and model.verbose is False
        and "_skl_callbacks" not in vars(model)
        and all(type(name) is str and "__" not in name for name in names)
        and len(set(names)) == len(names)
        and not _PIPELINE_PARAMS.intersection(names)
    )


def _unfitted(estimator: Any) -> bool:
    """Whether ``estimator`` holds no fitted attribute: a refit by scikit-learn deletes and
    re-adds them (the scaler's ``_reset``, the names of a frame no longer given), so the
    attributes of a second fit set here would keep stale names or another order in the
    artifact's pickle."""
    return not any(key.endswith("_") and not key.startswith("__") for key in vars(estimator))


def _values(X: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The rows as scikit-learn's ``check_array`` would hand them on, and the frame's feature
    names, where no conversion is needed; else None."""
    names = None
    if isinstance(X, pd.DataFrame):
        columns = list(X.columns)
        if not columns or not all(type(c) is str for c in columns):
            return None
        if len(set(columns)) != len(columns):
            return None  # scikit-learn refuses duplicate column names
        if not all(d == np.dtype(np.float64) for d in X.dtypes):
            return None
        names = np.asarray(columns, dtype=object)
        values = np.asarray(X)
    elif type(X) is np.ndarray:
        values = X
    else:
        return None
    if values.dtype != np.float64:
        return None
    return values, names


def fitted_here(model: Any, X: Any, y: np.ndarray) -> bool:
    """Whether ``model`` (a supported Ridge) was fitted here; False leaves it untouched."""
    parts = _parts(model)
    if parts is None:
        return False
    got = _values(X)
    if got is None:
        return False
    values, names = got
    if type(y) is not np.ndarray or y.dtype != np.float64 or not finite_rows(values, y):
        return False
    n, width = values.shape
    if n < width:
        return False  # more features than rows: scikit-learn's kernel form
    scaler, ridge = parts
    alpha = float(ridge.alpha)
    found = solved(lambda: _solve(values, y, alpha, scaled=scaler is not None))
    if found is None:
        return False
    moments, coef, intercept = found
    if scaler is not None:
        mean, var, scale = moments
        # attribute order as scikit-learn sets them: the artifact pickles the same bytes
        if names is not None:
            scaler.feature_names_in_ = names
        scaler.n_features_in_ = width
        scaler.n_samples_seen_ = np.float64(n)
        scaler.mean_, scaler.var_, scaler.scale_ = mean, var, scale
    elif names is not None:
        ridge.feature_names_in_ = names
    ridge.n_features_in_ = width
    ridge.coef_ = coef
    ridge.n_iter_ = None
    ridge.solver_ = "cholesky"
    ridge.intercept_ = intercept
    return True


def _solve(
    values: np.ndarray, target: np.ndarray, alpha: float, *, scaled: bool
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray, np.float64] | None:
    """The scaler's moments, Ridge's ``coef_`` and ``intercept_``, each step the arithmetic of
    scikit-learn's (``StandardScaler.transform``, ``_preprocess_data``, ``_solve_cholesky``,
    ``_set_intercept``); None where scipy would warn or scikit-learn would take its SVD."""
    from scipy import linalg
    from scipy.linalg import lapack

    moments = scaler_moments(values) if scaled else None
    Z = values - moments[0] if moments is not None else values.copy(order="K")
    if moments is not None:
        Z /= moments[2]
    x_offset = np.mean(Z, axis=0)
    Z -= x_offset
    y_offset = np.mean(target, axis=0)
    centred = (target - y_offset).reshape(-1, 1)
    A = Z.T @ Z
    Xy = Z.T @ centred
    A.flat[:: A.shape[0] + 1] += np.asarray([alpha], dtype=np.float64)[0]
    factor, info = lapack.dpotrf(A, lower=False, clean=False)
    if info != 0:
        return None  # not positive definite: scikit-learn falls back to its SVD solver
    rcond, info = lapack.dpocon(factor, np.abs(A).sum(axis=0).max())
    if info != 0 or not rcond >= _RCOND:
        return None
    coef = linalg.solve(A, Xy, assume_a="pos", overwrite_a=True).T.ravel()
    coef = coef / np.ones(len(coef), dtype=np.float64)
    intercept = y_offset - x_offset @ coef
    empty = np.empty(0)
    return (moments or (empty, empty, empty)), coef, intercept
