"""The checks a classification target passes before any partition is fitted: labels that are
classes at all (no fractions, no infinities), and of one kind (not text beside numbers).
Each is knowable of the whole table at once, where the partitions failed one by one after the
work, or the run was refused with a message blaming the metric.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from manymodels.exceptions import DataError
from manymodels.row_numbers import data_row


def refuse_unlabelled(target: pd.Series, *, source: str) -> None:
    """A ``DataError`` naming the first cell of ``target`` that is no class label: a fraction,
    an infinity, or text beside numbers."""
    _refuse_infinite_cells(target, source=source)  # first: ``values % 1`` warns of an inf
    _refuse_continuous(target, source=source)
    _refuse_mixed(target, source=source)


def _refuse_infinite_cells(target: pd.Series, *, source: str) -> None:
    """An ``inf`` among the labels (a CSV's ``inf`` cell, a DataFrame's ``np.inf``, JSON
    rows' ``[0, 1, inf]``): it became a class ``inf``, and the run was refused saying the
    metric "cannot score this table's labels … Input y contains infinity" (with "use a
    classification metric such as 'accuracy'" to an accuracy spec). Text labels (pandas'
    ``infer_dtype``, one pass in C) are not looked at cell by cell."""
    if target.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            found = np.flatnonzero(np.isinf(target.to_numpy()))
        at = int(found[0]) if len(found) else None
    elif target.dtype == object and pd.api.types.infer_dtype(target, skipna=True) in _NUMBERS:
        cells = target.tolist()
        at = next((i for i, v in enumerate(cells) if _is_infinite(v)), None)
    else:
        return
    if at is not None:
        raise DataError(
            f"{source}: target '{target.name}' is {target.iloc[at]} in {data_row(at)}, not a "
            "class label: give a label (a whole number or text), or leave the cell empty"
        )


_NUMBERS = frozenset({"floating", "mixed-integer-float", "mixed", "mixed-integer"})


def _is_infinite(value: object) -> bool:
    return isinstance(value, float | np.floating) and math.isinf(value)


def _refuse_continuous(target: pd.Series, *, source: str) -> None:
    """A classification target of fractional numbers is a quantity, not labels: every
    partition and the fallback failed one by one ("Unknown label type: continuous") after
    the work, where this is knowable of the whole table before it."""
    if target.dtype.kind != "f":
        return
    values = target.to_numpy()
    fractional = np.isfinite(values) & (values % 1 != 0)
    if fractional.any():
        first = float(values[np.flatnonzero(fractional)[0]])
        raise DataError(
            f"{source}: target '{target.name}' holds {first:g}, not a class label: a "
            "classification target holds labels (whole numbers or text); for a quantity, "
            'task = "regression"'
        )


def _refuse_mixed(target: pd.Series, *, source: str) -> None:
    """Labels of text beside labels of another type (``1`` and ``"one"``, a frame built from
    two sources): the classes cannot be sorted, and the run died in numpy ("'<' not supported
    between instances of 'int' and 'str'"). ``infer_dtype`` reads the column in C and stops
    at the first mix; only a mixed column is looked at value by value."""
    if target.dtype != object:
        return
    if pd.api.types.infer_dtype(target, skipna=True) not in ("mixed", "mixed-integer"):
        return
    values = target.dropna()
    text = values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    if text.all() or not text.any():
        return
    word, other = values.iloc[int(np.argmax(text))], values.iloc[int(np.argmin(text))]
    raise DataError(
        f"{source}: target '{target.name}' mixes text and other labels ({word!r} and "
        f"{other!r}): give every label as text (.astype(str)) or every one as a number"
    )
