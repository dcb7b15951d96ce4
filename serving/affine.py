"""The affine map a linear regressor's ``predict`` computes, which the router applies itself.

Linear regressors score through their coefficients directly. scikit-learn's ``predict``
re-validates its input at every step (``validate_data``: array conversion, dataframe
detection, finiteness, feature count), which costs several times the arithmetic for the one to
a hundred rows of a typical request. ``model_input`` has already built a float64 matrix from
rows checked against the schema, so for a linear regressor — alone, or behind a
``StandardScaler`` as ``scale = true`` builds it — the router does the same arithmetic
scikit-learn would (``(X - mean_) / scale_ @ coef_ + intercept_``, the same operations in the
same order, so the same bits), after the two checks it would still make (feature count,
finiteness). Anything else — another estimator or pipeline, a dataframe input, a NaN — goes
through ``predict`` as it would without the shortcut.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import numpy as np

from manymodels.deferred import deferred

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from manymodels.candidates import LastValueRegressor


@deferred
def model_types() -> tuple[type[Pipeline], type[StandardScaler], type[LastValueRegressor]]:
    """What ``affine_of`` compares a loaded model's type with: imported at the first model
    load (which has imported scikit-learn to unpickle it) or by the router's warm-up, not at
    the router's start; a cached call after the first."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from manymodels.candidates import LastValueRegressor

    return Pipeline, StandardScaler, LastValueRegressor


@deferred
def linear_regressors() -> frozenset[type]:
    """Exact classes (not subclasses: a subclass may override predict) whose predict is
    ``X @ coef_ + intercept_`` on dense input; tests/serving/test_served.py checks each one
    against scikit-learn's own predict, so an upgrade that changes one fails there. Imported at
    the first model load or by the router's warm-up, not at the router's start: scikit-learn
    and SciPy were ~2 s of every ``manymodels serve``'s start."""
    from sklearn.linear_model import (
        ElasticNet,
        ElasticNetCV,
        HuberRegressor,
        Lasso,
        LassoCV,
        LinearRegression,
        Ridge,
        RidgeCV,
    )

    return frozenset(
        {LinearRegression, Ridge, RidgeCV, Lasso, LassoCV, ElasticNet, ElasticNetCV, HuberRegressor}
    )


# An affine map, ``predict(X) = ((X - mean) / scale) @ coef + intercept`` (``mean`` and
# ``scale`` those of a fitted ``StandardScaler`` in front, ``None`` when there is none), kept as
# an exact tuple ``(coef, intercept, mean, scale, packed)``: a tuple of arrays, numbers and bytes
# is untracked by CPython's collector, where an instance of a class is walked by every full
# collection — and every coefficient entry of a router that has run a while holds one.
# ``packed``, for one output: ``[mean | scale | coef | intercept]`` in one row (a missing scaler
# as mean 0, scale 1, which change no bit), stacked with other models' by a batch; kept as the
# row's float64 bytes: 100 of them join into one matrix in ~3 µs, where ``np.array`` of 100
# small arrays took ~30 µs (``row_matrix.stacked``).
Affine = tuple[np.ndarray, Any, np.ndarray | None, np.ndarray | None, bytes | None]
COEF: Final = 0  # the positions of its parts
PACKED: Final = 4


def accepts(affine: Affine, X: Any) -> bool:
    """Whether ``affine`` computes what the model's ``predict`` would for ``X``: a finite
    float64 matrix of its width (anything else goes through ``predict``)."""
    return (
        type(X) is np.ndarray
        and X.dtype == np.float64
        and X.ndim == 2
        and X.shape[0] >= 1
        and X.shape[1] == affine[COEF].shape[-1]
        and bool(np.isfinite(X).all())
    )


def apply(affine: Affine, X: np.ndarray) -> np.ndarray:
    """``affine`` of the rows of ``X``: the operations scikit-learn makes, in its order."""
    coef, intercept, mean, scale, _ = affine
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow: refused (finite_answers)
        if mean is not None:
            X = X - mean
        if scale is not None:
            X = X / scale
        return X @ (coef if coef.ndim == 1 else coef.T) + intercept


def affine_of(model: Any, n_features: int | None = None) -> Affine | None:
    """The affine map a fitted model's ``predict`` computes, if it is one we know exactly.

    The naive ``LastValueRegressor`` (with the number of features it is given) is one too:
    zero weights and its last value, so a batch stacks its rows with the linear models' and
    the coefficient cache keeps it. ``x · 0 + c`` is ``c`` to the bit for every finite row
    (the rows an affine map accepts), save a last value of -0.0, left to ``predict``."""
    Pipeline, StandardScaler, LastValueRegressor = model_types()
    if type(model) is LastValueRegressor:
        last = getattr(model, "last_", None)
        if n_features is None or type(last) is not float or (last == 0.0 and np.signbit(last)):
            return None
        zeros = np.zeros(n_features)
        return (zeros, last, None, None, _packed(zeros, last))
    scaler = None
    if type(model) is Pipeline and len(model.steps) == 2:
        scaler, model = model.steps[0][1], model.steps[1][1]
        if type(scaler) is not StandardScaler:
            return None
    if type(model) not in linear_regressors():
        return None
    coef = getattr(model, "coef_", None)
    if not isinstance(coef, np.ndarray) or not _floats(coef) or coef.ndim not in (1, 2):
        return None
    # owned copies: an unpickled array is a view of the artifact's buffer, through a
    # memoryview and its managed buffer, two more objects for every full garbage collection
    # to walk in each coefficient entry, which outlives the estimator (the same values: the
    # product does not depend on where the array lies; tests/serving/test_cache_coefficients.py
    # compares bits with the model's)
    coef = coef.copy()
    intercept = model.intercept_
    if isinstance(intercept, np.ndarray):
        intercept = intercept.copy()
    if scaler is None:
        return (coef, intercept, None, None, _packed(coef, intercept))
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None
    if not all(v is None or (_floats(v) and v.shape == (coef.shape[-1],)) for v in (mean, scale)):
        return None
    mean, scale = (None if v is None else v.copy() for v in (mean, scale))
    return (coef, intercept, mean, scale, _packed(coef, intercept, mean, scale))


def _packed(
    coef: np.ndarray,
    intercept: Any,
    mean: np.ndarray | None = None,
    scale: np.ndarray | None = None,
) -> bytes | None:
    if coef.ndim != 1 or np.ndim(intercept) != 0:
        return None
    n = coef.shape[0]
    row = np.concatenate(
        [
            np.zeros(n) if mean is None else mean,
            np.ones(n) if scale is None else scale,
            coef,
            [float(intercept)],
        ]
    )
    return row.tobytes()  # float64: coef, mean and scale are (``_floats``), so is the rest


def _floats(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype == np.float64
