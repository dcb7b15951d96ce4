"""The keys of a selection (``train``'s ``only=``, ``forecast``'s ``keys=``): one key alone,
a list of them, a frame of key columns, a column or row of the table, a groupby key.

Duck-typed, as ``keys`` is: this module does not import pandas.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from manymodels.exceptions import DataError
from manymodels.key_forms import is_named_row, is_scalar, named_row
from manymodels.keys import FALLBACK_KEY

if TYPE_CHECKING:
    import datetime as dt

    import numpy as np
    import pandas as pd
    from pandas.api.typing import DataFrameGroupBy

KeyLike: TypeAlias = (
    "str | Mapping[str, Any] | tuple[Any, ...] | pd.Series | int | float | dt.date | np.generic"
)
"""One partition key, as ``Registry.load_model``, ``get_version``, ``promote``… take it: its
text (``"store=2,brand=tropicana"``), a mapping of column to value (``{"store": 2, …}``), a
row of the table (``df.iloc[0]``, other columns ignored), a tuple of the key columns' values
in order (a ``df.groupby`` key), a row of ``df.itertuples()`` (matched by field name), or, on
a registry keyed by one column, a value of it (``2``, ``numpy.int64(2)``, a date, text
without ``=`` such as ``"u0"``). A string type for the checker only: nothing here imports
pandas or numpy."""

KeySelection: TypeAlias = (
    "KeyLike | Iterable[KeyLike] | pd.DataFrame | pd.Series | np.ndarray[Any, Any] "
    "| DataFrameGroupBy"
)
"""Partition keys, as ``mm.forecast(keys=)``, ``forecast_chunks(keys=)`` and ``mm.train(only=)``
take them (``key_list`` reads them): one ``KeyLike`` alone (a selection of one), an iterable
of them (a list, a set, ``df.itertuples()``, a ``{key: …}`` mapping's keys' text), a frame
of key columns or the whole table (its distinct key columns' rows), a Series of the one key
column's values, a numpy array (1-D: the one key column's values; 2-D: a key per row), or a
``df.groupby(key_columns)`` and its ``groups``."""


def key_list(keys: Any, what: str = "keys", columns: Sequence[str] | None = None) -> list[Any]:
    """The keys of a selection (``only=``, ``keys=``): one key given alone — text or a
    mapping, as pandas takes one label where it takes many — is a selection of one (it was
    read character by character: "'s' is not a partition key"). A mapping is one key only
    when it maps columns to values: one whose keys are keys' text (``{"pid=1": 3, …}``, a
    run's ``versions``) is a selection of its keys, as it always was. Anything that is not a
    key or an iterable of them is a ``DataError`` naming ``what``.

    A DataFrame is a selection of its distinct rows, each a mapping of column to value
    (``df[["store", "brand"]]``): iterated, it gave its column names, each refused as "'store'
    is not a partition key". Duck-typed: this module does not import pandas.

    With the registry's key ``columns``, a frame holding other columns too (the table of
    partitions itself, features and all, as ``score`` takes it) selects the distinct values
    of its key columns: each whole row was a key naming every column, no partition. A
    Series is a column of key values (``df["store"]``, named like the one key column) or
    one row (``df.iloc[0]``, holding the key columns); each was read value by value, "not
    int 0". A GroupBy (``df.groupby(["store", "brand"])``) and its ``groups`` are a
    selection of their group keys: each (key, rows) pair was read as a key whose value was
    the rows' text, or a crash ("quote_from_bytes() expected bytes"). A column of one of
    several key columns is refused naming the frame's key columns to pass. On a registry
    keyed by one column, a value of it given alone is a selection of one, as a key's text
    is. A numpy array is its values (1-D, one key column) or rows (2-D, ``_array_keys``), and
    a row of ``df.itertuples()`` is a key by its fields' names (``key_forms.named_row``)."""
    if isinstance(keys, str):
        return [keys]
    if hasattr(keys, "drop_duplicates") and hasattr(keys, "columns"):  # a DataFrame
        if columns and list(keys.columns) != list(columns):
            keys = keys[_key_columns(list(keys.columns), columns, what)]
        return list(keys.drop_duplicates().to_dict("records"))
    if hasattr(keys, "to_frame") and hasattr(keys, "index") and columns:  # a Series
        if len(columns) == 1 and keys.name == columns[0]:
            return list(keys.drop_duplicates().to_frame().to_dict("records"))
        if all(c in keys.index for c in columns):  # a row of the table
            return [{c: keys[c] for c in columns}]
        if keys.name in columns:  # ``df["store"]`` of a registry keyed by store, brand
            raise DataError(
                f"{what}: the column {keys.name!r} holds one key column's values, and selects "
                f"nothing on this registry keyed by {', '.join(columns)}: pass the frame's key "
                f"columns, df[[{', '.join(map(repr, columns))}]]"
            )
    if _is_array(keys):
        return _array_keys(keys, what, columns)
    if is_named_row(keys):  # one row of ``df.itertuples()``
        return [named_row(keys, what, columns)]
    if columns and len(columns) == 1 and is_scalar(keys):
        return [keys]  # one value of the one key column, given alone
    if hasattr(keys, "ngroups") and hasattr(keys, "groups"):  # a GroupBy: its keys
        keys = list(keys.groups)
    if isinstance(keys, Mapping) and all(isinstance(k, str) and "=" not in k for k in keys):
        return [keys]
    if _one_tuple_key(keys, columns):
        return [keys]
    if not isinstance(keys, Iterable) or isinstance(keys, bytes | bytearray):
        raise DataError(
            f"{what} takes a partition key or a list of them, not {type(keys).__name__} "
            f"{reprlib.repr(keys)}"
        )
    return _distinct_rows(keys, what, columns)


def _distinct_rows(keys: Iterable[Any], what: str, columns: Sequence[str] | None) -> list[Any]:
    """The keys of ``df.itertuples()`` (or any iterable of keys), each once: the table's
    rows repeat a partition's key row by row, and each was read and then canonicalised
    again (200,000 rows of 1,000 partitions: 2.1 s, against 0.03 s for the frame itself).
    A row's key is compared by its key columns' values."""
    seen: dict[Any, Any] = {}
    for k in keys:
        key = named_row(k, what, columns) if is_named_row(k) else k
        try:
            seen.setdefault(_identity(key), key)
        except TypeError:  # an unhashable value: kept, as a list keeps it
            seen[object()] = key
    return list(seen.values())


def _is_array(keys: Any) -> bool:
    """Whether ``keys`` is a numpy (or pandas extension) array of one dimension or more:
    ``df["pid"].values``, ``df[["store", "brand"]].to_numpy()``."""
    return (
        hasattr(keys, "dtype")
        and getattr(keys, "ndim", 0) >= 1
        and not hasattr(keys, "index")  # a Series or frame: their own forms above
    )


def _array_keys(keys: Any, what: str, columns: Sequence[str] | None) -> list[Any]:
    """The keys of an array: of a registry keyed by one column, a 1-D array is that column's
    values (``df["pid"].values``; a value that is text was read as a key's text, "'a' is not a
    partition key"), unless every item reads ``col=value`` (an array of keys' text, as a list
    of them is); a 2-D array's rows are the key columns' values in order (``df[["store",
    "brand"]].values``: it was refused as "not ndarray")."""
    if keys.ndim == 1:
        items = _distinct(keys)  # in order: a table's column repeats them
        texts = all(isinstance(k, str) and "=" in k for k in items)
        if columns and len(columns) == 1 and not texts:
            return [{columns[0]: k} for k in items]
        return items
    if keys.ndim == 2 and columns and keys.shape[1] == len(columns):
        return [dict(zip(columns, row, strict=True)) for row in _distinct(map(tuple, keys))]
    of = f"{len(columns)} key column(s) {', '.join(columns)}" if columns else "no key columns yet"
    raise DataError(
        f"{what}: an array of shape {tuple(keys.shape)} is no selection of keys: a 1-D array "
        f"holds the values of a registry keyed by one column, a 2-D one a key per row, its "
        f"columns the key columns in order (this registry has {of})"
    )


def _distinct(items: Iterable[Any]) -> list[Any]:
    """``items`` once each, in order (all of them when one is unhashable: a mapping)."""
    given = list(items)
    try:
        return list(dict.fromkeys(given))
    except TypeError:
        return given


def _one_tuple_key(keys: Any, columns: Sequence[str] | None) -> bool:
    """Whether ``keys`` is one key alone as its columns' values (``only=(2, "tropicana")``),
    not a tuple of keys: it was read value by value, refused as "not int 2"."""
    if not isinstance(keys, tuple) or not columns or len(keys) != len(columns):
        return False
    return not any(
        isinstance(k, Mapping | tuple | list)
        or hasattr(k, "to_dict")  # a row of the table
        or (isinstance(k, str) and ("=" in k or k == FALLBACK_KEY))
        for k in keys
    )


def _key_columns(given: list[Any], columns: Sequence[str], what: str) -> list[str]:
    """``columns``, all of which a frame given as ``what`` must hold (``given``)."""
    missing = [c for c in columns if c not in given]
    if missing:
        raise DataError(
            f"{what}: the frame has no key column(s) {', '.join(map(repr, missing))}: this "
            f"registry's partitions are keyed by {', '.join(columns)} (frame has: "
            f"{', '.join(map(str, given))})"
        )
    return list(columns)


def _identity(key: Any) -> Any:
    """What tells two keys of a selection apart: a mapping's columns and values with their
    types (1, 1.0 and True are equal in Python, and may be three partitions of a mixed
    column), in any order: its values alone made ``{"pid": 0, "g": 1}`` and ``{"g": 0,
    "pid": 1}`` one key, and the second partition was dropped."""
    if isinstance(key, dict):
        return frozenset((k, type(v), v) for k, v in key.items())
    return (type(key), key)
