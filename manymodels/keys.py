"""Partition keys: one canonical text form for URLs, logs, the CLI and the registry.

``col=value`` pairs in ``partition_by`` order, joined by ``,``, each value percent-encoded
(``store=2,brand=minute_maid``; a value ``a/b`` becomes ``a%2Fb``). It is URL-safe, readable,
unambiguous for composite keys, and never used to build a filesystem path.

Here: the canonical form itself (encode, decode, normalise, the registry's length limit).
A key a user names, found or refused (``key_lookup``), and the other spellings training may
have written a key in (``trained_keys``) are modules of their own.

Pure Python on purpose: every command that names a partition (``models show``, ``promote``,
the router) needs keys, and none of them should pay for importing numpy and pandas.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

from manymodels.exceptions import DataError
from manymodels.key_forms import is_scalar, row_as_mapping

FALLBACK_KEY = "__fallback__"
"""Registry key of the global fallback model; it has no ``=`` so no real key can collide."""

MAX_KEY_CHARS = 512
"""The longest key a registry holds (its ``key`` columns: PostgreSQL enforces the length,
SQLite does not, so it is checked before anything is written, on either)."""


def refuse_long_keys(keys: Sequence[str], source: str = "the data") -> None:
    """A ``DataError`` naming the first key longer than ``MAX_KEY_CHARS``. Percent-encoding
    makes a non-ASCII character up to 12 (a CJK one 9) characters: 57 such characters are
    enough. On PostgreSQL such a key failed the whole run with a traceback after training;
    on SQLite it was stored."""
    for key in keys:
        if len(key) > MAX_KEY_CHARS:
            raise DataError(
                f"{source}: the partition key {key[:60]!r}… is {len(key)} characters long in "
                f"its canonical form (values percent-encoded), past the registry's limit of "
                f"{MAX_KEY_CHARS}: shorten the key values, or key by a shorter code"
            )


# --------------------------------------------------------------------------------------------
# canonical keys
# --------------------------------------------------------------------------------------------
def format_value(value: Any) -> str:
    """The string form of one key value; integral floats read as ints (``2.0`` → ``2``).

    numpy and pandas scalars are recognised without importing either: a value of theirs
    means they are loaded already, and a command that only reads keys stays light."""
    if type(value).__module__.split(".")[0] in ("numpy", "pandas"):
        value = _plain_scalar(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            raise DataError("a partition key value is missing (NaN)")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if value is None:
        raise DataError("a partition key value is missing")
    return str(value)


def _plain_scalar(value: Any) -> Any:
    """A numpy or pandas scalar as the Python value it stands for (``None`` for NA)."""
    import numpy as np
    import pandas as pd

    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        return value  # a datetime: isoformat as pandas writes it
    if isinstance(value, np.generic):
        return value.item()
    return value


def encode_key(values: Sequence[Any], columns: Sequence[str]) -> str:
    """``encode_key([2, "a/b"], ["store", "brand"])`` → ``"store=2,brand=a%2Fb"``. A missing
    value names its column: "a partition key value is missing (NaN)" alone did not say which
    of a composite key's columns held it."""
    parts = []
    for col, v in zip(columns, values, strict=True):
        try:
            text = format_value(v)
        except DataError as e:
            raise DataError(f"{e} in key column {col!r}") from None
        parts.append(f"{quote_text(col)}={quote_text(text)}")
    return ",".join(parts)


_PLAIN = re.compile(r"[A-Za-z0-9_.~: -]*", re.ASCII)
"""A text ``quote(text, safe=":")`` leaves as it is but for its spaces (``%20``): most keys'
columns and values, a CSV's timestamps among them."""


def quote_text(text: str) -> str:
    """A column's name or a value's text as a key writes it: ``quote(text, safe=":")``, with
    no call per character for a plain one (``_PLAIN``: the most). The one encoder of a key's
    parts — a key encoded (``encode_key``), a key named respelt
    (``trained_keys.trained_forms``), a table's keys (``encode_texts``, for up to 100,000 keys
    a run) — so none can drift."""
    return text.replace(" ", "%20") if _PLAIN.fullmatch(text) else quote(text, safe=":")


def encode_texts(columns: Sequence[str], values: Sequence[Iterable[str]]) -> list[str]:
    """The canonical keys (``encode_key``) of rows of key values already written as text
    (``format_value``), given column by column: each column's name encoded once."""
    names = [quote_text(c) + "=" for c in columns]
    parts = [[name + quote_text(v) for v in vs] for name, vs in zip(names, values, strict=True)]
    return [",".join(row) for row in zip(*parts, strict=True)]


def key_from_mapping(key: Mapping[str, Any], columns: Sequence[str]) -> str:
    """The canonical key of ``{"store": 2, "brand": "x"}``; every key column must be present."""
    missing = [c for c in columns if c not in key]
    if missing:
        raise DataError(f"partition key is missing column(s) {', '.join(missing)}")
    return encode_key([key[c] for c in columns], columns)


def decode_key(key: str) -> dict[str, str]:
    """Parse a canonical key back to ``{column: value-as-string}``.

    Raises ``DataError`` for text that is not of the ``col=value,…`` form.
    """
    out: dict[str, str] = {}
    for part in key.split(","):
        col, sep, value = part.partition("=")
        if not sep or not col or col in out:
            raise DataError(f"'{key}' is not a partition key of the form col=value[,col=value]")
        out[unquote(col)] = unquote(value)
    return out


def normalize_key(key: object, columns: Sequence[str] | None = None) -> str:
    """Canonicalise user input: a mapping, or a key string that may be unencoded or reordered.
    Anything else (``123``, ``None``) is a ``DataError``."""
    key = row_as_mapping(key, columns)
    if not isinstance(key, str | Mapping):
        raise DataError(_not_a_key(key, columns))
    if isinstance(key, Mapping):
        if not all(isinstance(c, str) for c in key):  # it crashed in quote(): a TypeError
            raise DataError(f"{KEY_FORMS}; a mapping's keys are column names, not {key!r:.80}")
        if columns is None:
            columns = list(key)
        return key_from_mapping(key, columns)
    if key == FALLBACK_KEY:
        return key
    parsed = decode_key(key)
    cols = list(columns) if columns is not None else list(parsed)
    if columns is not None and set(parsed) != set(columns):
        padded = any(c != c.strip() for c in parsed)  # 'store = 1' named the column 'store '
        raise DataError(
            f"partition key '{key}' names {', '.join(repr(c) for c in parsed)}; expected "
            f"{', '.join(columns)}{' (without spaces around = and ,)' if padded else ''}"
        )
    return ",".join(f"{quote_text(c)}={quote_text(parsed[c])}" for c in cols)


KEY_FORMS = (
    "a partition key is text (col=value[,col=value]), a mapping of column to value, a row of "
    "the table (df.iloc[i]) or a tuple of the key columns' values in order (a df.groupby key)"
)
"""The forms a partition key takes from Python, as the README lists them."""


def _not_a_key(key: Any, columns: Sequence[str] | None) -> str:
    """Why ``key`` is no partition key: the forms one takes, what was given, and what a value
    or tuple of this registry's ``columns`` would be. It said only "text or a mapping", where
    a row and a groupby tuple are keys too, and "not int 0" for a column of one key column
    given on a registry keyed by two, with no hint what to write."""
    table = hasattr(key, "shape") and getattr(key, "ndim", 1) != 0  # a frame's repr: not shown
    text = f"{KEY_FORMS}, not {type(key).__name__}" + ("" if table else f" {reprlib.repr(key)}")
    if not columns:
        return text
    cols = ", ".join(columns)
    if isinstance(key, tuple):
        return f"{text} (a tuple holds the values of the key columns {cols}, in order)"
    if is_scalar(key) and len(columns) > 1:
        return (
            f"{text}: a value alone names no partition of this registry, keyed by {cols}: "
            f"give a value of each ({', '.join(f'{c}=…' for c in columns)}); for a frame's "
            f"keys pass its key columns, df[[{', '.join(map(repr, columns))}]]"
        )
    return f"{text}{keyed_by(columns)}"


def keyed_by(columns: Sequence[str] | None) -> str:
    """``; this registry's key columns are store, brand: a key reads 'store=…,brand=…'``, or
    nothing when they are not known: the one wording of a refused key's columns, here
    (``normalize_key``) and in ``key_lookup``."""
    if not columns:
        return ""
    form = ",".join(f"{c}=…" for c in columns)
    return f"; this registry's key columns are {', '.join(columns)}: a key reads '{form}'"
