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

from typing import Any

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
