"""A scored CSV's true/false columns written as its input spelled them.

pandas reads a CSV column of ``true``/``false`` (or ``TRUE``/``FALSE``) as booleans, which the
models were trained on and score from; written back, the column said ``True``/``False``,
Python's spelling, in a table that is otherwise the user's own columns as given. Only those
columns are read again as text, only for a CSV written from a CSV: a file without such a column
pays nothing, one with one pays a read of that column (about a third of the whole read, far
below the write). Numbers stay pandas' (``1.50`` is written ``1.5``): a number is its value, as
``read_csv``/``to_csv`` and polars round-trip it; a boolean's spelling is not a value.

The columns scoring adds (``fallback``; ``prediction`` and ``decision_label`` of a true/false
target) were then ``True``/``False`` beside the user's ``true``: they are written in the
input's spelling when all its boolean cells share one (``true``/``false``, ``TRUE``/``FALSE``);
mixed spellings, or none to read, leave them pandas' ``True``/``False``. ``0``/``1`` columns
are numbers to pandas, and stay so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

SPELLINGS = (("true", "false"), ("TRUE", "FALSE"), ("True", "False"))
"""The pairs pandas' ``read_csv`` reads as booleans by default."""


def boolean_columns(frame: pd.DataFrame, names: list[str]) -> list[str]:
    """Those of ``names`` whose values in ``frame`` are booleans (a missing value among them
    makes the column ``object``: still booleans). One C-level scan a column, which stops at
    the first value that is not a boolean."""
    return [
        c
        for c in names
        if c in frame.columns
        and frame[c].ndim == 1
        and (frame[c].dtype == bool or infer_dtype(frame[c], skipna=True) == "boolean")
    ]


def is_csv(source: str | Path) -> bool:
    """Whether ``read_given`` reads ``source`` as a CSV (by its name, as it does)."""
    return Path(source).name.lower().endswith((".csv", ".txt", ".csv.gz"))


def as_spelled(frame: pd.DataFrame, csv: Path) -> pd.DataFrame:
    """``frame`` (scored from the CSV ``csv``, its columns first) with each of the input's
    boolean columns replaced by its text in ``csv``, cell for cell (``true``, ``TRUE``,
    ``True``; a missing cell stays empty), and the boolean columns scoring added in the
    input's one spelling, when it has one (``spelling``). ``frame`` unchanged when no column
    is boolean, or the text cannot be matched to its rows (read again, the file differs)."""
    header = list(pd.read_csv(csv, nrows=0).columns)
    if len(set(header)) != len(header):
        return frame
    columns = boolean_columns(frame, header)
    if not columns:
        return frame
    try:
        text = pd.read_csv(csv, usecols=columns, dtype=str)
    except (OSError, ValueError):  # changed since it was read: the booleans as pandas writes
        return frame
    if len(text) != len(frame):
        return frame
    pair = spelling(text)
    ours = boolean_columns(frame, [c for c in frame.columns if c not in set(header)])
    return frame.assign(
        **{c: text[c].to_numpy(dtype=object) for c in columns},
        **({c: spelled(frame[c], pair) for c in ours} if pair else {}),
    )


def spelling(text: pd.DataFrame) -> tuple[str, str] | None:
    """The one pair of ``SPELLINGS`` every non-missing cell of ``text`` is spelled in, or
    ``None`` when they mix pairs or none is there to read: then no spelling is the input's."""
    seen = {v for v in pd.unique(text.to_numpy().ravel()) if isinstance(v, str)}
    if not seen:
        return None
    return next((pair for pair in SPELLINGS if seen <= set(pair)), None)


def spelled(column: pd.Series, pair: tuple[str, str]) -> np.ndarray:
    """``column``'s booleans as ``pair``'s text; a missing value stays missing (empty)."""
    values = column.to_numpy(dtype=object, na_value=None)
    out = np.full(len(values), None, dtype=object)
    out[values == True] = pair[0]  # noqa: E712 (object cells: True, False or None)
    out[values == False] = pair[1]  # noqa: E712
    return out
