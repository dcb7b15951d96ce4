"""How a forecast's output columns are typed, decided before its first chunk is written.

A forecast of many partitions is written a chunk at a time (``forecast_select.CHUNK``), so
every chunk must write its times and labels alike: a CSV of dates as dates in every chunk
(``on_midnights``), every time with as many digits after the second (``second_digits``), a
``decision_label`` of one type even in a chunk where no partition labels (``label_dtype``),
a label of another type refused rather than converted (``label_fits``), and a key column
that mixes text and numbers kept value by value (``key_kind``). Each is read from a version's
schema or key alone, so ``forecast_select.select`` decides it in its checking pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from manymodels.feature_schema import FeatureSchema
from manymodels.label_matching import is_bool
from manymodels.weekdays import offset_of


def on_midnights(schema: FeatureSchema) -> bool:
    """Whether every forecast time of a version is a midnight: its last time is one and its
    step keeps it there (a day, a week, a month start; not 12 hours). Known before the first
    chunk, so that a CSV written a chunk at a time writes the dates of a table given as dates
    (``2024-02-10``) as dates in every chunk, as pandas writes a frame of midnights, rather
    than ``2024-02-10 00:00:00``."""
    plan, history = schema.forecast, schema.history
    if plan is None or history is None or not isinstance(plan.frequency, str):
        return False
    try:
        last = pd.Timestamp(history.time)
        step = offset_of(plan.frequency.partition("+")[0])
        if last is pd.NaT or last.tz is not None:
            return False
        times = [last, last + step, last + 2 * step]
    except (TypeError, ValueError, OverflowError):
        return False
    return all(t == t.normalize() for t in times)


def second_digits(schema: FeatureSchema) -> int:
    """The digits after the second a version's forecast times need: 0, 6 (microseconds) or 9
    (nanoseconds), from its last time and its frequency (a step of 500 ms). Known for the
    whole forecast before its first chunk, so that a CSV written a chunk at a time writes
    every time alike: a chunk of whole seconds, then one of half seconds, was a column of two
    formats, which ``read_csv(parse_dates=…)`` leaves as text."""
    plan, history = schema.forecast, schema.history
    if plan is None or history is None or not isinstance(plan.frequency, str):
        return 0
    try:
        last = pd.Timestamp(history.time)
        step = offset_of(plan.frequency.partition("+")[0])
    except (TypeError, ValueError):
        return 0
    nanos = [int(last.nanosecond)] if last is not pd.NaT else []
    nanos.append(last.microsecond * 1000 if last is not pd.NaT else 0)
    if isinstance(step, pd.offsets.Tick):
        nanos.append(int(step.nanos) % 10**9)
    if any(n % 1000 for n in nanos):
        return 9
    return 6 if any(nanos) else 0


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not is_bool(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.number) and not is_bool(v)


# A label type and what belongs to it, narrowest first: ``label_dtype`` takes the first that
# both classes fit, ``label_fits`` checks a label against it - one table, so the two cannot
# disagree (an int label is an Int64 before it is a Float64, and never a boolean).
_LABEL_TYPES: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("boolean", is_bool),
    ("Int64", _is_int),
    ("Float64", _is_number),
    ("string", lambda v: isinstance(v, str)),
)


def label_fits(dtype: str) -> Callable[[Any], bool]:
    """Whether a label is of ``label_dtype``'s type itself: ``pd.array`` would turn another
    version's 0 into '0' under "string" (and True into 1 under "Int64") without a word."""
    return dict(_LABEL_TYPES).get(dtype, lambda v: True)


def label_dtype(classes: Sequence[Any] | None) -> str:
    """The pandas type of a binary classifier's labels (``classes``, as its schema recorded
    them), for a forecast's ``decision_label`` in every chunk: a chunk of partitions none of
    which labels (no ``[decision]`` in the spec their versions came from) had a column of
    ``None`` alone, which Arrow types as null, and a Parquet file written a chunk at a time
    then refused the next chunk's labels. ``object`` when there are no two classes; "string"
    for two of no one type (a label of another type is then refused by ``label_fits``)."""
    values = list(classes or [])
    if len(values) != 2:
        return "object"
    return next((d for d, fits in _LABEL_TYPES if all(map(fits, values))), "string")


def key_kind(value: Any) -> str:
    """What a key value is for a column's type: text, a number, or other (a bool, None)."""
    return "text" if isinstance(value, str) else "a number" if _is_number(value) else "other"
