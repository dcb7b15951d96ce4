"""Rows as float64 matrices, read in C: a request's numeric cells as a model's input, and the
linear models of many partitions as one matrix of their packed coefficients. Building a
matrix cell by cell cost more than scoring a batch, so the plain path (``serving.plain``),
the batch (``serving.batch``) and one-key requests (``serving.service``) all build theirs
here, and fall back to ``model_input`` (which checks every cell and names each problem)
when a cell is anything else."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from manymodels.features import is_numeric
from serving.rows import model_input

if TYPE_CHECKING:
    from manymodels.feature_schema import ForecastPlan
    from serving.served import ServedModel

Row = Mapping[str, Any]


def stacked(rows: Sequence[bytes]) -> np.ndarray:
    """Models' packed rows (``Affine``'s ``packed``, all of one width) as one float64 matrix, a
    model a row."""
    joined = b"".join(rows)
    if len(joined) != len(rows) * len(rows[0]):
        raise ValueError("packed rows of different widths cannot be stacked")
    return np.frombuffer(joined, dtype=np.float64).reshape(len(rows), -1)


def affine_rows(X: np.ndarray, packed: np.ndarray) -> np.ndarray:
    """Row ``i``'s ``((x - mean) / scale) @ coef + intercept`` with row ``i`` of ``packed``
    (``stacked`` rows of ``Affine``'s ``packed``): a stack of one-row products, each the dot
    product a one-row request to that partition computes (and scikit-learn's ``predict`` of
    that row)."""
    n = X.shape[1]
    with np.errstate(over="ignore", invalid="ignore"):  # as BLAS, which never warns
        Z = X - packed[:, :n]
        Z /= packed[:, n : 2 * n]  # in place: the same division, one array fewer
        y = np.matmul(Z[:, None, :], packed[:, 2 * n : 3 * n, None])[:, 0, 0]
        y += packed[:, 3 * n]
    return y


def input_of(
    loaded: ServedModel, rows: Sequence[Row], positions: Sequence[int] | None = None
) -> Any:
    """``model_input(rows, loaded.schema, positions)``, the same matrix, built in one
    numpy call when it can be: a numpy input of numeric features whose cells are all
    ``float`` / ``int`` / ``bool`` (read and type-checked in C). Cell by cell it cost more
    than scoring a batch; any other input goes through ``model_input``, which checks every
    cell and names each problem."""
    layout = loaded.layout
    if len(rows) and layout and layout[2] == "numpy" and _all_numeric(layout[1]):
        X = numeric_matrix(layout[0], rows)
        if X is not None and not np.isinf(X).any():  # JSON's 1e400: ``model_input`` names it
            plan = loaded.schema.forecast
            if plan is None or not plan.derives or not _derived_nan(X, layout[0], plan):
                return X  # an ordinary feature's NaN is a missing value, for the model
    return model_input(rows, loaded.schema, positions)


def _derived_nan(X: np.ndarray, features: tuple[str, ...], plan: ForecastPlan) -> bool:
    """Whether a derived feature's cell of ``X`` is NaN (V2 binary's only missing value):
    one not given, which ``model_input`` computes from the history (``derived_nulls``).
    Only those columns are looked at: a NaN anywhere sent V2 binary requests with a missing
    ordinary feature to ``model_input``, cell by cell, for the same matrix."""
    derived = tuple(plan.derived)
    columns = _DERIVED.get((features, derived))
    if columns is None:
        names = set(derived)
        columns = [j for j, name in enumerate(features) if name in names]
        _DERIVED[(features, derived)] = columns
    return bool(columns) and bool(np.isnan(X[:, columns]).any())


def numeric_matrix(features: tuple[str, ...], rows: Sequence[Row]) -> np.ndarray | None:
    """The float64 matrix of ``features`` when every cell is a ``float`` / ``int`` / ``bool``
    that fits (read and type-checked in C), else ``None``: ``model_input`` names the problem."""
    try:
        cells = list(map(itemgetter(*features), rows))
    except (KeyError, TypeError):
        return None
    flat = cells if len(features) == 1 else chain.from_iterable(cells)
    if not set(map(type, flat)) <= NUMBER_TYPES:
        return None
    try:
        return np.array(cells, dtype=np.float64).reshape(len(rows), len(features))
    except OverflowError:  # an integer beyond float64
        return None


NUMBER_TYPES = frozenset({float, int, bool})
_NUMERIC: dict[tuple[str, ...], bool] = {}
_DERIVED: dict[tuple[tuple[str, ...], tuple[str, ...]], list[int]] = {}
"""A layout's features and a plan's derived ones → the derived features' columns."""


def _all_numeric(dtypes: tuple[str, ...]) -> bool:
    known = _NUMERIC.get(dtypes)
    if known is None:
        known = _NUMERIC[dtypes] = all(is_numeric(d) for d in dtypes)
    return known
