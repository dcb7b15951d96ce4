"""Which class a label someone sends is: one rule for every door labels come in by.

Labels arrive as a JSON value (``/actuals``, an HTTP retrain) or a cell of a file
(``monitor --actuals``, ``train --append``), and a version knows its table's classes. A blank
cell makes pandas read the labels ``0`` and ``1`` as ``0.0`` and ``1.0``, and JSON clients send
``"1"``: these are the class ``1``, by value. Texts are compared as texts (``"01"`` is not
``"1"``). A label that is no class (a typo: ``"Yes"`` beside ``"yes"``) is refused rather than
counted as the model's mistake or trained as a class of its own, and so is a label that two
classes match by value (``1`` beside the classes ``"01"`` and ``"1"``): nothing can tell which
one it means. Dates are one class however they are written: ``"2024-01-01"``,
``"2024-01-01 00:00:00"`` and a TOML date are the class ``"2024-01-01T00:00:00"`` (the ISO text
date classes are kept as, ``manymodels.classes.as_labels``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

SHOWN_CLASSES = 10
"""Classes named in a refusal; the rest are left out (a table may have hundreds)."""


def same_label(predicted: Any, actual: Any) -> bool:
    """Whether two class labels are one class: texts as texts (``"01"`` is not ``"1"``), and
    where either is a number, by value (``0``, ``0.0``, ``np.int64(0)`` and ``"0"`` are one:
    a blank cell makes pandas read a column of labels ``0`` and ``1`` as ``0.0`` and ``1.0``,
    and they were counted wrong). A bool beside a number is one class with ``1``/``0`` (as
    numpy and pandas compare them): ``[decision] positive = 1`` was refused on labels
    ``True``/``False``, "not one of the table's classes (False, True)". A bool beside text
    is the class that text names in any case (``"true"``, ``"FALSE"``): TOML and JSON write
    ``true``, and ``positive = "true"`` was refused where ``"True"`` was taken; a text
    holding a number is that number (``"1"`` is ``True`` as ``1`` is: it was no class)."""
    predicted, actual = _as_text(predicted), _as_text(actual)
    if isinstance(predicted, str) and isinstance(actual, str):
        return predicted == actual or _same_time(predicted, actual)
    if is_bool(predicted) != is_bool(actual):
        flag, other = (predicted, actual) if is_bool(predicted) else (actual, predicted)
        if isinstance(other, int | float | np.number):
            return bool(float(other) == float(flag))
        if isinstance(other, str):  # a number's text as the number: "1" as 1, JSON's form
            number = label(other)
            if isinstance(number, int | float):
                return bool(float(number) == float(flag))
            return other.strip().lower() == str(bool(flag)).lower()
    return bool(label(predicted) == label(actual))


def _as_text(value: Any) -> Any:
    """A date or time (``datetime.date``, a ``Timestamp``, ``numpy.datetime64``) as its ISO
    text, the form date classes take; anything else as it is."""
    if isinstance(value, np.datetime64):
        return value if np.isnat(value) else pd.Timestamp(value).isoformat()
    return value.isoformat() if isinstance(value, date) else value


def _same_time(a: str, b: str) -> bool:
    """Whether two texts are one date or time: ``"2024-01-01"`` is ``"2024-01-01T00:00:00"``
    and ``"2024-01-01 00:00:00"`` (``[decision] positive = "2024-01-01"`` was refused on the
    classes date labels are kept as). Two zoned times are one instant; where one text has
    no zone, the clock times are compared (a plain date names a zoned class's day)."""
    x, y = _time_of(a), _time_of(b)
    if x is None or y is None:
        return False
    if (x.tzinfo is None) != (y.tzinfo is None):
        x, y = x.replace(tzinfo=None), y.replace(tzinfo=None)
    return x == y


def _time_of(text: str) -> datetime | None:
    """``text`` read as an ISO date or time (``YYYY-MM-DD`` first: not every text is tried)."""
    if len(text) < 10 or text[4] != "-" or text[7] != "-" or not text[:4].isdigit():
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def is_bool(value: Any) -> bool:
    """Whether a cell is a boolean, Python's or numpy's: the one rule for every reader of
    cells (a label, a regression's target, a feature), since ``True`` is an ``int`` to
    Python and would pass for the number 1."""
    return isinstance(value, bool | np.bool_)


def label(value: Any) -> Any:
    """A class label by value: a number (or text holding one) as an int when whole, else a
    float; anything else as its text."""
    if is_bool(value):
        return str(value)
    if isinstance(value, int | float | np.number):
        number = float(value)
        return int(number) if number.is_integer() else number
    if isinstance(value, str):
        try:
            return label(float(value)) if value.strip() else value
        except ValueError:
            return value
    return str(value)


class KnownClasses:
    """A version's classes, and which of them each label sent is (asked once per distinct
    label: a batch of 100,000 rows holds a handful)."""

    def __init__(self, classes: Sequence[Any]) -> None:
        self.classes = list(classes)
        self._asked: dict[tuple[type, Any], list[Any]] = {}

    def matching(self, value: Any) -> list[Any]:
        """The classes ``value`` is, by ``same_label``: one, none (a typo), or several."""
        asked = (type(value), value) if isinstance(value, Hashable) else None
        found = self._asked.get(asked) if asked is not None else None
        if found is None:
            found = [c for c in self.classes if same_label(c, value)]
            if asked is not None:
                self._asked[asked] = found
        return found

    def refusal(self, value: Any) -> str | None:
        """``None`` when ``value`` is exactly one class; otherwise how it relates to them,
        to follow "is {value!r}, " in a message: "not one of the classes" or "more than one
        of the classes" (a refusal's caller names whose classes, then ``shown``)."""
        found = self.matching(value)
        if len(found) == 1:
            return None
        return "not one of the classes" if not found else "more than one of the classes"

    @property
    def shown(self) -> str:
        return ", ".join(map(repr, self.classes[:SHOWN_CLASSES]))
