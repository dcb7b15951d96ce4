"""The forms one partition key takes from Python besides its text and a mapping: a row of
the table (a Series), a row of ``df.itertuples()``, a tuple of the key columns' values (a
groupby key), a value of a registry's one key column (a number, a date or text). ``keys``
reads a key through ``row_as_mapping``, ``key_selection`` reads each key of a selection so.

Duck-typed, as ``keys`` is: this module does not import pandas or numpy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from manymodels.exceptions import DataError


def is_scalar(value: Any) -> bool:
    """Whether ``value`` is one non-text value a key column holds (a number, a date, a numpy
    or pandas scalar): of a registry keyed by one column, it is that column's value."""
    if isinstance(value, bool | int | float | dt.date):
        return True
    return (
        type(value).__module__.split(".")[0] in ("numpy", "pandas")
        and getattr(value, "ndim", None) == 0
        and not isinstance(value, str | bytes)
    )


def row_as_mapping(key: Any, columns: Sequence[str] | None = None) -> Any:
    """A pandas Series (a frame's row, ``df.iloc[0][["store", "brand"]]``) as the mapping of
    column to value it is; anything else as it is. It was refused as no key, quoting its
    repr across lines. A whole row (``df.iloc[0]``, features and all) holding every key
    column of ``columns`` is its key columns' mapping: it was "no partition {'asset': …,
    'temperature': …}". A tuple of as many values as ``columns`` (a groupby's key) maps them
    in order: it was "not tuple (1, 'dominicks')". Duck-typed: this module does not import
    pandas. A row of ``df.itertuples()`` is its key columns by field name (``named_row``)."""
    if is_named_row(key):
        return named_row(key, "a partition key", columns)
    if hasattr(key, "to_dict") and hasattr(key, "index") and not hasattr(key, "columns"):
        row = dict(key.to_dict())
        if columns and all(c in row for c in columns):
            return {c: row[c] for c in columns}
        return row
    if (
        isinstance(key, tuple)
        and columns
        and len(key) == len(columns)
        and not any(hasattr(v, "shape") and getattr(v, "ndim", 1) != 0 for v in key)
    ):  # not a groupby's (key, rows) pair: its rows' text was read as a key value
        # a groupby's key, ``for (store, brand), rows in df.groupby(["store", "brand"])``:
        # the key columns' values in their order
        return dict(zip(columns, key, strict=True))
    if columns and len(columns) == 1 and (is_scalar(key) or is_bare_text(key)):
        # a value of the one key column, as ``df.groupby("pid")`` gives it: it was refused
        # as "not int 0" where its one-tuple ``(0,)`` was a key, and text ("u0") as "not a
        # partition key of the form col=value"
        return {columns[0]: key}
    return key


def is_bare_text(key: Any) -> bool:
    """Whether ``key`` is text that is no key's text (it holds no ``=``, and is not the
    fallback's key): of a registry keyed by one column, that column's value (``"u0"``). A
    value holding ``=`` reads as a key's text, so it is given as a mapping."""
    from manymodels.keys import FALLBACK_KEY  # keys imports this module

    return isinstance(key, str) and "=" not in key and key != FALLBACK_KEY


def is_named_row(key: Any) -> bool:
    """Whether ``key`` is a row of ``df.itertuples()``: a namedtuple, ``Index`` first unless
    ``index=False``."""
    return isinstance(key, tuple) and isinstance(getattr(key, "_fields", None), tuple)


def named_row(row: Any, what: str, columns: Sequence[str] | None) -> dict[str, Any]:
    """A row of ``df.itertuples()`` as its key: the key columns' values by field name, the
    ``Index`` field (``index=True``, the default) no key value. Read as a tuple it was
    refused ("not Pandas Pandas(Index=0, …)"), or, with exactly as many fields as key
    columns in another order (``df[["brand", "store"]].itertuples(index=False)``), read in
    the wrong order: a key naming no partition."""
    fields = dict(row._asdict())
    if not columns:
        return {f: v for f, v in fields.items() if f != "Index"}
    missing = [c for c in columns if c not in fields]
    if missing:
        raise DataError(
            f"{what}: a row of df.itertuples() has no field(s) {', '.join(map(repr, missing))} "
            f"(its fields: {', '.join(fields)}): this registry's partitions are keyed by "
            f"{', '.join(columns)}; itertuples renames a column that is no Python name, so "
            f"pass the frame's key columns, df[[{', '.join(map(repr, columns))}]]"
        )
    return {c: fields[c] for c in columns}
