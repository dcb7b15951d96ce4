"""The one answer for an integer past float64's range (JSON's or a CSV's ``1000…0`` of 400
digits), wherever a number is read: a feature to score (``/v1/predict``, ``score``,
``LoadedModel.predict``), a forecast's future feature, a retrain's feature or target, an
observed value (``/actuals``).

Python reads such an integer exactly, and pandas keeps it in an object column; ``float()`` of
it raises ``OverflowError``. Each door caught that its own way, so the same value got
different answers: "too large a number … it does not fit a float" from predict, "is inf …
too large to train on" from a retrain (which had turned it into ``inf``), "must be finite"
from ``/actuals``. Each now names the value, its column's role and its row in these words.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from manymodels.exceptions import DataError

_FLOAT_MAX = 1.7976931348623157e308  # sys.float_info.max


def is_too_large(value: Any) -> bool:
    """Whether ``value`` is an integer (not a bool) that no float holds."""
    return type(value) is int and not -_FLOAT_MAX <= value <= _FLOAT_MAX


def too_large(what: str, value: Any, where: str | None = None) -> str:
    """The message: ``what`` is the column with its role (``feature 'price'``), ``where``
    the row as the caller counts rows (``row 2``); none for a request's cell, whose error
    names its row in its ``loc`` (which the CLI prints before the message)."""
    at = f" in {where}" if where is not None else ""
    return f"{what} is too large a number ({shown(value)}){at}: it does not fit a float"


def shown(value: Any) -> str:
    """``value``'s repr, cut to 40 characters; an integer past Python's digit limit for
    ``str()`` (4,300 digits) by its size."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's str() digit limit
        return f"an integer of about {value.bit_length() * 30103 // 100000} digits"
    return text if len(text) <= 40 else text[:37] + "..."


def refuse_infinite(values: np.ndarray, what: str, *, source: str, where: Any) -> None:
    """A ``DataError`` for the first infinity among a numeric column's ``values`` (float64),
    naming ``what`` (``feature 'price'``), its value and its row (``where(position)``, as the
    caller counts rows). A Parquet file's or a DataFrame's ``inf`` (a CSV's ``inf`` cell, as
    pandas reads it) reached the estimator, and ``train`` failed its partition, ``score``
    the whole table, with scikit-learn's "Input X contains infinity or a value too large",
    naming neither the column nor the row."""
    with np.errstate(invalid="ignore"):
        infinite = np.isinf(values)
    if infinite.any():
        at = int(np.flatnonzero(infinite)[0])
        raise DataError(
            f"{source}: {what} is {values[at]} in {where(at)}: give a finite number, or leave "
            "the cell empty"
        )


def coerced_numbers(values: pd.Series) -> pd.Series:
    """``pd.to_numeric(values, errors="coerce")``, an integer past float64 missing too: pandas
    raises ``OverflowError`` on one in an object column, ``coerce`` or not, so every caller
    wrote its own fallback (features' ``_float_or_nan`` read the text "7" as missing beside
    such an integer, the time column's ``_number_or_nan`` as 7). One fallback, value by value,
    on that path only."""
    try:
        return pd.to_numeric(values, errors="coerce")
    except OverflowError:
        pass
    return pd.Series([_number_or_nan(v) for v in values], index=values.index, dtype=np.float64)


def _number_or_nan(value: Any) -> float:
    try:
        return float(pd.to_numeric(value))
    except (ValueError, TypeError, OverflowError):
        return math.nan
