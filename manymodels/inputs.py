"""A model's input, built from rows or a table and checked against its version's feature schema.

The schema is what training recorded (``manymodels.feature_schema``); what it
means, and how the model input is assembled from checked values, live in
``manymodels.features`` (shared with batch scoring and forecasting). Every door to a model goes
through here — the router's JSON rows, ``LoadedModel.predict`` in Python — so a bad value gets
the same answer wherever it is sent: rows are checked cell by cell and every problem is
reported at once, each with its row and column, in the shape FastAPI uses for its own 422s.
A table is checked column by column (fast), and cell by cell only when a column fails, to
say which rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from manymodels.derived_nulls import left_out
from manymodels.exceptions import MAX_REPORTED, DataError, InvalidRows, problem
from manymodels.feature_schema import FeatureSchema
from manymodels.features import (
    assemble,
    column_values,
    feature_kinds,
    is_boolean,
    wrong_kind,
)
from manymodels.huge_numbers import too_large
from manymodels.rowlags import derived_missing, fill_rows
from manymodels.tables import refuse_repeated_columns

_MISSING = object()
_NUMBER_TYPES = (int, float, bool)


def from_rows(
    rows: Sequence[Mapping[str, Any]],
    schema: FeatureSchema,
    positions: Sequence[int] | None = None,
) -> np.ndarray | pd.DataFrame:
    """The model input for ``rows``; ``positions`` are their indexes in the request (for
    error locations). Raises ``InvalidRows`` naming every bad cell. Rows that leave out the
    target lags, rolling statistics or calendar parts and give their time get them from the
    version's history (``manymodels.rowlags``); so do rows that send one as ``null`` (a
    derived feature without a value is one not given: ``manymodels.derived_nulls``)."""
    rows = left_out(rows, schema)
    if derived_missing(rows, schema):
        rows = fill_rows(rows, schema, positions)
    kinds = feature_kinds(schema)
    features = [name for name, _ in kinds]
    numeric = [is_num for _, is_num in kinds]
    where = positions if positions is not None else range(len(rows))
    errors: list[dict[str, Any]] = []
    n_errors = 0

    values = np.empty((len(rows), len(features)), dtype=np.float64)
    text: dict[int, list[Any]] = {
        j: [None] * len(rows) for j, f in enumerate(features) if not numeric[j]
    }
    for i, row in enumerate(rows):
        for j, name in enumerate(features):
            v = row.get(name, _MISSING)
            if numeric[j]:
                if type(v) in _NUMBER_TYPES:
                    try:
                        values[i, j] = v
                    except OverflowError:  # a JSON integer beyond float64 (e.g. 10**400)
                        n_errors += 1
                        if len(errors) < MAX_REPORTED:
                            errors.append(_too_large(where[i], name, v))
                        continue
                    if type(v) is float and math.isinf(v):  # JSON's 1e400, 1000…0.5: inf
                        n_errors += 1
                        if len(errors) < MAX_REPORTED:
                            errors.append(_too_large(where[i], name, v))
                    continue
                if v is None:
                    values[i, j] = math.nan
                    continue
                if isinstance(v, np.integer | np.floating | np.bool_):  # rows built in Python
                    values[i, j] = v
                    continue
            elif isinstance(v, str) or v is None:
                text[j][i] = v
                continue
            n_errors += 1
            if len(errors) < MAX_REPORTED:
                boolean = numeric[j] and is_boolean(schema.dtypes.get(name, "float64"))
                errors.append(_describe(where[i], name, v, numeric[j], boolean))
    if n_errors:
        raise InvalidRows(errors, n_errors)

    return assemble(schema, values, text)


def as_floats(cells: Sequence[Any], what: str, *, booleans: bool = True) -> list[float] | None:
    """A column's cells read as ``from_rows`` reads a row's numeric feature — a number or a
    boolean as a float, ``None`` as NaN — for a table that pandas left as objects (an integer
    past int64, such as a JSON or CSV ``123456789012345678901234567890``, or booleans beside
    nulls): ``None`` when a cell is anything else (text: the caller's check names it). An
    integer past float64 (``10**400``) is a ``DataError`` naming ``what`` (``feature 'x'``),
    the value and its row (from 0, as a request's rows are numbered), as ``/v1/predict``
    refuses it. ``booleans=False``: a boolean is no number (a target: ``/actuals`` refuses
    one)."""
    kinds = _NUMBER_TYPES if booleans else (int, float)
    if not all(v is None or type(v) in kinds for v in cells):
        return None
    out: list[float] = []
    for i, v in enumerate(cells):
        try:
            out.append(math.nan if v is None else float(v))
        except OverflowError:
            raise DataError(too_large(what, v, f"row {i}")) from None
    return out


def _too_large(row: int, column: str, value: float) -> dict[str, Any]:
    what = f"feature '{column}'"
    return problem(row, column, too_large(what, value), "number_too_large")


def _describe(
    row: int, column: str, value: Any, numeric: bool, boolean: bool = False
) -> dict[str, Any]:
    if value is _MISSING:
        return problem(row, column, f"feature '{column}' is missing", "missing")
    kind = "number_type" if numeric else "str_type"
    said = wrong_kind(column, value, numeric=numeric, boolean=boolean)
    return problem(row, column, said, kind)


def from_frame(df: pd.DataFrame, schema: FeatureSchema) -> np.ndarray | pd.DataFrame:
    """The model input for a table holding (at least) the version's features.

    Columns are checked whole, as batch scoring checks them; when one fails, its cells are
    checked one by one so that the error names rows and values exactly as the router would
    (``InvalidRows``). An empty cell of a derived feature's column is read as a row's
    ``null`` is (``derived_nulls``): not given, so computed from the history."""
    kinds = feature_kinds(schema)
    refuse_repeated_columns(df, "rows", [*(n for n, _ in kinds), schema.time_column])
    missing = [name for name, _ in kinds if name not in df.columns]
    if (
        missing
        and schema.time_column in df.columns
        and derived_missing([dict.fromkeys(df.columns)], schema)
    ):
        return from_rows(df.to_dict("records"), schema)  # derived features from the history
    given = [name for name in schema.derived if name in df.columns]
    if given and df[given].isna().to_numpy().any():  # as a row's null: not given (computed)
        return from_rows(df.to_dict("records"), schema)
    if missing:
        errors = [problem(0, name, f"feature '{name}' is missing", "missing") for name in missing]
        raise InvalidRows(errors)
    values = np.empty((len(df), len(kinds)), dtype=np.float64)
    text: dict[int, Any] = {}
    for j, (name, numeric) in enumerate(kinds):
        try:
            column = column_values(df[name], numeric=numeric, name=name, source="rows")
        except DataError:
            records = df[[n for n, _ in kinds]].to_dict("records")
            return from_rows(records, schema)  # raises InvalidRows naming the cells
        if numeric:
            if np.isinf(column).any():  # the cells' own errors (``from_rows``), not sklearn's
                return from_rows(df[[n for n, _ in kinds]].to_dict("records"), schema)
            values[:, j] = column
        else:
            text[j] = column
    return assemble(schema, values, text)


def one_row(data: Any, schema: FeatureSchema) -> Any:
    """``data``, or a Series given as one row of a table (``df.iloc[i]``, ``df.loc[label]``)
    as the dict it is: a model refused it ("not Series") where ``load_model`` takes such a
    row for a key. A Series whose index holds none of the version's features (a column,
    ``df["price"]``) is refused saying how to give it."""
    if not isinstance(data, pd.Series):
        return data
    wanted = [n for n, _ in feature_kinds(schema)] + [str(schema.time_column or "")]
    if not any(name in data.index for name in wanted):
        raise DataError(
            "a Series is read as one row (df.iloc[i]), and this one's index holds none of "
            f"the features ({', '.join(n for n, _ in feature_kinds(schema))}): give a "
            "DataFrame (series.to_frame(), or the table itself)"
        )
    return {str(k): v for k, v in data.items()}


def model_input(data: Any, schema: FeatureSchema) -> np.ndarray | pd.DataFrame:
    """``from_frame`` for a DataFrame, ``from_rows`` for a list of dicts (or one dict)."""
    if isinstance(data, pd.DataFrame):
        return from_frame(data, schema)
    if isinstance(data, Mapping):
        data = [data]
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if not all(isinstance(row, Mapping) for row in data):
            raise DataError("rows must be mappings of feature name to value (or a DataFrame)")
        return from_rows(data, schema)
    raise DataError(
        "a model scores a pandas DataFrame, a list of dicts or one dict (a row), not "
        f"{type(data).__name__}"
        + (
            ": pandas.DataFrame(array, columns=loaded.features) names its columns"
            if isinstance(data, np.ndarray)
            else ""
        )
    )
