"""A version's feature schema, and building its model's input again from new data.

Training records the schema (``manymodels.training.schema.feature_schema``): the feature order, each
feature's dtype, which ones are categorical, and whether the model was fitted on a float64 numpy
array (``input = "numpy"``) or a DataFrame (``"dataframe"``, when there are categorical columns).
The router (JSON rows, checked cell by cell) and batch scoring (a table, checked column by
column) both finish with ``assemble``, so a model sees the same input whichever path scores it:
numeric features as float64 (missing → NaN), text features as Python objects (missing → None).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from manymodels.cell_kinds import refuse_durations
from manymodels.exceptions import DataError
from manymodels.feature_schema import FeatureSchema
from manymodels.huge_numbers import coerced_numbers, shown, too_large
from manymodels.label_matching import is_bool
from manymodels.row_numbers import data_row


@lru_cache(maxsize=256)
def is_numeric(dtype: str) -> bool:
    """Whether a recorded dtype name (``float64``, ``Int64``, ``bool``, ``str`` …) is numeric."""
    try:
        resolved = ptypes.pandas_dtype(dtype)
    except TypeError:
        return False
    return bool(ptypes.is_numeric_dtype(resolved) or ptypes.is_bool_dtype(resolved))


def feature_kinds(schema: FeatureSchema) -> list[tuple[str, bool]]:
    """``[(feature, is_numeric)]`` in the order the model was fitted on."""
    dtypes = schema.dtypes
    return [(f, is_numeric(dtypes.get(f, "float64"))) for f in schema.features]


def assemble(
    schema: FeatureSchema, values: np.ndarray, text: Mapping[int, Any]
) -> np.ndarray | pd.DataFrame:
    """The model input from ``values`` (rows × features, float64; text columns ignored) and
    ``text`` (``{feature index: sequence of str | None}`` for the non-numeric features)."""
    features = list(schema.features)
    if schema.input == "numpy" and not text:
        return values
    columns: dict[str, Any] = {}
    for j, name in enumerate(features):
        if j in text:
            columns[name] = pd.Series(text[j], dtype=object)
        else:
            columns[name] = values[:, j]
    return pd.DataFrame(columns, columns=features)


def column_values(column: pd.Series, *, numeric: bool, name: str, source: str) -> np.ndarray:
    """One table column as a feature: float64 (missing → NaN) or text objects (missing →
    None, a column missing in every row too, whatever its dtype), checked for the whole
    column at once. ``DataError`` names the column and source."""
    if numeric:
        refuse_complex(column, name, source=source)
        refuse_durations(column, name, source=source, role="feature")
        if not (ptypes.is_numeric_dtype(column) or ptypes.is_bool_dtype(column)):
            numbers = python_numbers(column, name, source)
            if numbers is not None:
                return numbers
            raise DataError(f"{source}: {_not_numbers(column, name)}")
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(column.dtype, pd.CategoricalDtype):
        kind = ptypes.infer_dtype(column.cat.categories, skipna=True)
    else:
        kind = ptypes.infer_dtype(column, skipna=True)
    if kind not in ("string", "empty") and not column.isna().all():
        # a column empty in every row is text missing everywhere, as a column of None is:
        # a CSV reader makes it float64 (NaN), and it was refused as "found floating values"
        raise DataError(
            f"{source}: feature '{name}' must be text, as the model was trained on "
            f"(found {kind} values, dtype {column.dtype})"
        )
    return column.to_numpy(dtype=object, na_value=None)


def refuse_complex(column: pd.Series, name: str, *, source: str, role: str = "feature") -> None:
    """A ``DataError`` for a column of complex numbers: pandas counts them as numeric, and
    numpy kept their real part alone with a ``ComplexWarning`` a user rarely sees, so a model
    trained and scored on half of each value."""
    if ptypes.is_complex_dtype(column):
        raise DataError(
            f"{source}: {role} '{name}' holds complex numbers (dtype {column.dtype}): a model "
            "reads real numbers; give the real and imaginary parts (or the magnitude) as "
            "columns of their own"
        )


def python_numbers(
    column: pd.Series, name: str, source: str, *, role: str = "feature"
) -> np.ndarray | None:
    """A column of objects that are all numbers (or booleans, or missing) as float64, as the
    router reads a row's cells: pandas keeps an integer past int64 as a Python ``int`` in an
    object column (a CSV's or JSON's ``123456789012345678901234567890``), so ``score``
    refused the column that ``/v1/predict`` scores as 1.2e29 and ``train`` trains on.
    ``None`` when a cell is anything else (the caller's error names it): a numpy complex
    cell too, which ``float`` cast to its real part with numpy's ``ComplexWarning``, so
    ``predict`` scored ``np.complex128(1+2j)`` as 1; an integer past float64 is a
    ``DataError`` naming it and its row.

    A feature's ``True`` and ``False`` are 1 and 0, as a ``bool`` column's are; a target's
    are no numbers (``None``): ``true`` is no regression target, and ``/actuals`` refuses it."""
    if column.dtype != object:
        return None
    cells = column.tolist()
    # a Parquet file's decimal128 (money from a database) is a number, as training reads it
    kinds = int | float | np.number | decimal.Decimal
    flags = role == "feature"
    if not all(
        v is None
        or v is pd.NA
        or (
            isinstance(v, kinds)
            and not isinstance(v, np.complexfloating)  # a numpy complex is an np.number
            and (flags or not is_bool(v))
        )
        for v in cells
    ):
        return None
    out = np.empty(len(cells), dtype=np.float64)
    for i, v in enumerate(cells):
        try:
            out[i] = math.nan if v is None or v is pd.NA else float(v)
        except OverflowError:
            what = f"{role} '{name}'"
            raise DataError(f"{source}: {too_large(what, v, data_row(i))}") from None
    return out


def _not_numbers(column: pd.Series, name: str) -> str:
    """Why a column that should hold numbers is refused: its first value that is none and
    its row, worded as ``LoadedModel.predict`` and the router word that cell
    (``wrong_kind``), data rows counted from 1 (``score`` said "must be numeric, as the model
    was trained on (found dtype object: 'abc' in data row 3 …)", ``predict`` "row 2: feature
    'x0' must be a number, not text 'abc'"). The dtype alone where every value reads as a
    finite number. A text column (pandas' ``str`` dtype) is read cell by cell as an object
    one is: parsed whole, its text numbers were numbers and no cell was named."""
    if column.dtype == object or isinstance(column.dtype, pd.StringDtype):
        kinds = np.array([_stray_cell(v) for v in column.tolist()], dtype=np.int8)
        worst = int(kinds.max(initial=0))  # garbage named first, text numbers else
        stray = np.flatnonzero(kinds == worst) if worst else np.array([], dtype=np.intp)
    else:
        parsed = coerced_numbers(column)
        stray = np.flatnonzero((column.notna() & ~np.isfinite(parsed.astype(float))).to_numpy())
    if not len(stray):
        return (
            f"feature '{name}' must be numeric, as the model was trained on (found dtype "
            f"{column.dtype})"
        )
    at, value = int(stray[0]), column.iloc[int(stray[0])]
    number = isinstance(value, int | float | np.number) and not isinstance(
        value,
        bool | np.complexfloating,  # a numpy complex: "not complex128", not "too large"
    )
    said = (
        too_large(f"feature '{name}'", value) if number else wrong_kind(name, value, numeric=True)
    )
    more = f" (and {len(stray) - 1} more such value(s))" if len(stray) > 1 else ""
    return f"{data_row(at)}: {said}{more}"


def _stray_cell(value: Any) -> int:
    """How far one cell of an object column is from a number a model reads: 0 a number (or
    missing), 1 text of a finite number ("1.5", which ``predict`` refuses too), 2 anything
    else (other text, a complex number, bytes, a duration, a number past float64). Read by
    its type, on the error path only: parsing the column whole read ``b"12"`` as 12 and a
    complex cell as its real part (numpy's ``ComplexWarning`` printed), so ``score`` named no
    cell where ``predict`` named it."""
    if value is None or value is pd.NA:
        return 0
    if isinstance(value, str):
        try:
            return 1 if math.isfinite(float(value)) else 2
        except ValueError:
            return 2
    if isinstance(value, np.complexfloating) or not isinstance(
        value, int | float | np.number | decimal.Decimal
    ):
        return 2
    try:
        number = float(value)
    except OverflowError:
        return 2
    return 2 if math.isinf(number) else 0


def wrong_kind(name: str, value: Any, *, numeric: bool, boolean: bool = False) -> str:
    """A feature's cell of the wrong kind, as every door words it: "feature 'x0' must be a
    number, not text 'abc'". ``boolean``: the feature was trained on booleans, and the text
    "true" or "false" (what a client that quotes every value sends) is answered with the
    form a JSON row takes them in: "must be a number" alone read as if a boolean were none."""
    wanted = "a number" if numeric else "text"
    said = f"feature '{name}' must be {wanted}, not {_kind(value)} {shown(value)}"
    if boolean and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        said += " (JSON true/false are accepted)"
    return said


def is_boolean(dtype: str) -> bool:
    """Whether a recorded dtype name is a boolean's (``bool``, ``boolean``)."""
    try:
        return bool(ptypes.is_bool_dtype(ptypes.pandas_dtype(dtype)))
    except TypeError:
        return False


def _kind(value: Any) -> str:
    """A cell's kind in a user's words, JSON's where it has one ("text", "an object"): the
    type's name alone read "not Timedelta Timedelta(…)", "not str 'abc'"."""
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, dt.timedelta | np.timedelta64):  # "not Timedelta Timedelta('1 days')"
        return "a duration"
    return type(value).__name__


def missing_value(
    X: Any,
    schema: FeatureSchema,
    rows: Any = None,
    *,
    numbered: bool = True,
    data_rows: bool = False,
) -> str:
    """Where a model input that a model refused holds no value (NaN, None), as a clause to
    append to its error — `` (row 3: no value of feature 'price' …)`` — or ``""``: a model
    that takes no missing values answered scikit-learn's "Input X contains NaN", which named
    neither the row nor the feature. ``rows``: the rows' own numbers (a request's), else
    their positions in ``X``. ``data_rows``: named as a table's, from 1 (``data row 3
    (counting from 1)``)."""
    if isinstance(X, pd.DataFrame):
        missing = X.isna().to_numpy()
    else:
        values = np.asarray(X)
        missing = np.isnan(values) if values.dtype.kind == "f" else pd.isna(values)
    if missing.ndim != 2 or not missing.any():
        return ""
    r, c = (int(v) for v in np.argwhere(missing)[0])
    names = list(X.columns) if isinstance(X, pd.DataFrame) else list(schema.features)
    name = names[c] if c < len(names) else f"#{c}"
    row = int(rows[r]) if rows is not None else r
    n_rows = int(missing.any(axis=1).sum())
    if numbered:  # rows a caller can count (a request's, a frame's): the first one named
        others = f", and {n_rows - 1} more row(s) with a missing value" if n_rows > 1 else ""
        at = data_row(row) if data_rows else f"row {row}"  # a table's rows, a request's
        where = f"{at}: no value of feature '{name}'{others}"
    else:  # a partition's slice of a sorted table, whose positions no caller knows
        where = f"no value of feature '{name}' in {n_rows} of them"
    return (
        f" ({where}; this model takes no missing "
        "values: give one, or train with candidates that do, such as "
        "HistGradientBoostingRegressor)"
    )
