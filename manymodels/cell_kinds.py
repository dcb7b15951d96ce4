"""Cells no column of a model holds, as a Parquet file (or a DataFrame) can give them: a
list, a struct (a dict) or a map in a column the spec reads, refused naming it; and
decimals (Parquet's ``decimal128``, as databases and Spark export money), read as the
numbers they are.

Kept apart from ``data`` (reading and checking a table), which calls it for every table it
checks, in memory or a Parquet directory's batch at a time.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from manymodels.exceptions import DataError
from manymodels.huge_numbers import shown
from manymodels.row_numbers import data_row
from manymodels.spec import Spec

_NESTED = (list, tuple, dict, set, np.ndarray)
_UNREAD_KINDS = ("bytes", "timedelta", "complex", "mixed", "mixed-integer")
"""``infer_dtype``'s kinds of an object column that may hold bytes, durations or complex
numbers."""


def numbers_of(df: pd.DataFrame, spec: Spec) -> list[Any]:
    """The columns a model reads as numbers when they hold numbers: the features not
    declared categorical, and the target. A classifier's target of decimals (a database's
    0/1 ``decimal(1,0)`` in a Parquet file) was classes ``Decimal('0')``/``Decimal('1')``,
    and the run was refused blaming the metric ("metric 'accuracy' cannot score this table's
    labels … Unknown label type", telling an accuracy spec to use accuracy): as floats, whole
    ones are the classes 0 and 1 (``classes.as_labels``), fractions refused naming one."""
    roles = {*spec.partition_by, spec.target, spec.time_column}
    features = spec.features or [c for c in df.columns if c not in roles]
    numbers = [c for c in features if c not in set(spec.categorical or [])]
    return [*numbers, spec.target]


def checked_cells(
    df: pd.DataFrame,
    read: Iterable[Any],
    numbers: Iterable[Any],
    *,
    source: str,
    keys: Iterable[Any] = (),
) -> tuple[pd.DataFrame, dict[Any, str]]:
    """``df``, unless a column among ``read`` holds a list, a struct or a map in a cell: a
    ``DataError`` naming the column, the cell and its row (``train`` ended in pandas'
    "TypeError: unhashable type: 'numpy.ndarray'" traceback, hashing the rows). The columns
    among ``numbers`` (the features and the target) holding decimals are read as
    floats: they were taken for text and one-hot encoded ("holds numbers in 100% of its rows
    and text in the rest"). Only object columns are looked at, each by pandas'
    ``infer_dtype`` first (one pass in C); cells one by one only for a mixed column.

    Returns the rows and the kind ``infer_dtype`` found of each object column left as it was
    (``{column: kind}``), for ``stray_values.numbers_as_floats`` to read rather than look at
    every cell of a million-row column again.

    A column among ``read`` but for the ``keys`` (whose values only name a partition: a
    Parquet file's binary key is one) holding durations or bytes is refused too: durations
    were one-hot encoded as text (with a warning that they "hold numbers in 100% of its
    rows and text in the rest") and every later ``score`` of them refused; bytes were text
    to training and no text to ``score``."""
    numeric = set(numbers)
    named = set(keys)
    decimals: dict[Any, pd.Series] = {}
    kinds: dict[Any, str] = {}
    for column in dict.fromkeys(read):
        if column not in df.columns:
            continue
        s = df[column]
        if column not in named:
            refuse_durations(s, column, source=source)
        if s.dtype != object:
            continue
        kind = kinds[column] = ptypes.infer_dtype(s, skipna=True)
        if kind in ("decimal", "mixed", "mixed-integer") and column in numeric:
            # decimals alone, or beside floats: a retrain's posted decimals appended to the
            # rows its version kept (floats) are "mixed", and were trained on as text; beside
            # ints (a frame built from a database's rows) pandas says "mixed-integer"
            floats = _decimal_numbers(s.tolist())
            if floats is not None:
                decimals[column] = pd.Series(floats, index=s.index, dtype=np.float64)
                del kinds[column]  # floats now: no object column
                continue
        if kind in ("mixed", "unknown-array"):
            at = next((i for i, v in enumerate(s.tolist()) if isinstance(v, _NESTED)), None)
            if at is not None:
                value = s.iloc[at]
                held = "a struct or map" if isinstance(value, dict) else "a list"
                cell = shown(value.tolist() if isinstance(value, np.ndarray) else value)
                raise DataError(
                    f"{source}: column '{column}' holds {held} ({cell}) in {data_row(at)}: "
                    "a cell must hold one number, text or time; give each value a column of "
                    "its own"
                )
        if kind in _UNREAD_KINDS and column not in named:
            _refuse_unread_cells(s, column, source=source)
    return (df.assign(**decimals) if decimals else df), kinds


def _decimal_numbers(cells: list[Any]) -> list[float] | None:
    """``cells`` as floats when they hold a decimal and otherwise numbers or missing values
    only; ``None`` otherwise (text among them: the column's own checks name it)."""
    if not any(isinstance(v, decimal.Decimal) for v in cells):
        return None
    out: list[float] = []
    for v in cells:
        if v is None or v is pd.NA:
            out.append(np.nan)
        elif isinstance(v, decimal.Decimal | int | float | np.number) and not isinstance(v, bool):
            out.append(float(v))
        else:
            return None
    return out


def _refuse_unread_cells(s: pd.Series, column: Any, *, source: str) -> None:
    """A ``DataError`` naming the first cell of bytes, of a duration or of a complex number in
    an object column (a complex cell among numbers trained as text likewise, where a
    ``complex128`` column is refused):
    only a ``timedelta64`` column was refused as durations (``refuse_durations``), so an
    object column of ``datetime.timedelta`` cells (``df.astype(object)``, a frame built by
    ``apply``) trained as categories of text, and every ``score`` of the very frame was
    refused ("must be text, as the model was trained on")."""
    unread = bytes | dt.timedelta | np.timedelta64 | complex | np.complexfloating
    at = next((i for i, v in enumerate(s.tolist()) if isinstance(v, unread)), None)
    if at is None:
        return
    value = s.iloc[at]
    if isinstance(value, bytes):
        raise DataError(
            f"{source}: column '{column}' holds bytes ({shown(value)}) in {data_row(at)}: a "
            "cell must hold one number, text or time; decode them to text first "
            f"(df['{column}'].str.decode('utf-8'))"
        )
    if isinstance(value, complex | np.complexfloating):
        raise DataError(
            f"{source}: column '{column}' holds a complex number ({shown(value)}) in "
            f"{data_row(at)}: a model reads real numbers; give the real and imaginary parts "
            "(or the magnitude) as columns of their own"
        )
    raise DataError(
        f"{source}: column '{column}' holds durations ({shown(value)}) in {data_row(at)}: a "
        "model reads numbers or text; give them as numbers, such as seconds "
        f"(pd.to_timedelta(df['{column}']).dt.total_seconds())"
    )


def refuse_durations(column: pd.Series, name: Any, *, source: str, role: str = "column") -> None:
    """A ``DataError`` for a column of durations (``timedelta64``), as train and score word
    it: ``score`` of a feature trained as numbers said only "must be numeric, as the model
    was trained on (found dtype timedelta64[ns])", not how to give them."""
    if ptypes.is_timedelta64_dtype(column):
        raise DataError(
            f"{source}: {role} '{name}' holds durations (dtype {column.dtype}): a model reads "
            "numbers or text; give them as numbers, such as seconds "
            f"(df['{name}'].dt.total_seconds())"
        )
