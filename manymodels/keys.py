"""Partition keys: one canonical text form for URLs, logs, the CLI and the registry.

``col=value`` pairs in ``partition_by`` order, joined by ``,``, each value percent-encoded
(``store=2,brand=minute_maid``; a value ``a/b`` becomes ``a%2Fb``). It is URL-safe, readable,
unambiguous for composite keys, and never used to build a filesystem path.

Pure Python on purpose: every command that names a partition (``models show``, ``promote``,
the router) needs keys, and none of them should pay for importing numpy and pandas.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import reprlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from manymodels.exceptions import AmbiguousKey, DataError, PartitionNotFound
from manymodels.key_forms import is_scalar, row_as_mapping
from manymodels.value_spellings import maybe_boolean, value_forms

T = TypeVar("T")

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
    parts — a key encoded (``encode_key``), a key named respelt (``trained_forms``), a
    table's keys (``encode_texts``, for up to 100,000 keys a run) — so none can drift."""
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
    return f"{text}{_keyed_by(columns)}"


def lookup_key(
    key: object,
    columns: Sequence[str] | None,
    present: Callable[[str], bool] | None,
) -> str:
    """The canonical form of a key named to find a partition by, in the order of a registry's
    key columns ``columns`` and, when ``present`` is given, as training wrote it
    (``as_trained``). ``present=None``: a key named to be made, canonical only.

    One helper for every command that takes a key (``models show``, ``promote``, ``rollback``,
    ``export``…), on either reading path (``Registry.key``, the browser of ``models show``):
    ``'store = 2'`` was read as the column ``'store '`` and refused as "no partition
    'store%20=%202'", ``'shop=2'`` as "no partition 'shop=2'", neither saying what a key of
    this registry is. A key that names other columns than ``columns``, or has spaces around a
    column or value, is still looked up as given (a registry trained before its keys were one
    way may hold another spec's partitions); absent, it is a ``PartitionNotFound`` naming the
    key columns."""
    key = row_as_mapping(key, columns)
    if isinstance(key, str) and key == FALLBACK_KEY:
        return normalize_key(key)
    if not isinstance(key, str | Mapping):
        return normalize_key(key, columns)  # a DataError for what is no key
    try:
        named = list(key) if isinstance(key, Mapping) else list(decode_key(key))
    except DataError as e:
        raise DataError(f"{e}{_keyed_by(columns)}{one_value(key, columns)}") from e
    same = columns is not None and set(named) == set(columns)
    canonical = normalize_key(key, columns if same else None)
    if present is None:
        return canonical
    canonical = as_trained(canonical, present)
    padded = isinstance(key, str) and _padded(key)
    if columns is None or (same and not padded) or present(canonical):
        return canonical
    names = "" if same else f": it names {', '.join(repr(c) for c in named)}"
    space = " without spaces around '=' and ','" if padded else ""
    value = one_value(key, columns) if not same and not padded else ""
    raise PartitionNotFound(
        f"no partition {key if isinstance(key, str) else dict(key)!r} in the registry{names}"
        f"{_keyed_by(columns)}{space}{value}"
    )


def check_new_key(key: str | Mapping[str, Any], columns: Sequence[str] | None) -> None:
    """A ``DataError`` for a key named to make a partition (an import's ``--key``) that
    ``lookup_key`` would not find one by: spaces around a column or value (``'store = 2'``
    made the column ``'store '``, in a new registry its key column), or other columns than
    the registry's ``columns`` — each named with how a key of this registry reads."""
    if not isinstance(key, str | Mapping) or key == FALLBACK_KEY:
        return
    pairs = decode_key(key) if isinstance(key, str) else {str(c): v for c, v in key.items()}
    written = re.split("[=,]", key) if isinstance(key, str) else list(pairs)  # not '%20'
    if any(part != part.strip() for part in written):
        raise DataError(
            f"key {key!r} has spaces around a column or value: write it without spaces around "
            f"'=' and ','{_keyed_by(columns)}"
        )
    if columns is not None and set(pairs) != set(columns):
        raise DataError(
            f"{key!r} is not a key of this registry: it names "
            f"{', '.join(repr(c) for c in pairs)}{_keyed_by(columns)}"
        )


def absent(text: str, columns: Sequence[str] | None) -> str:
    """Why the key ``text`` names no served partition of a registry keyed by ``columns``, as
    a parenthesis for a 404 (`` (it names 'shop'; this registry's key columns are store,
    brand: a key reads 'store=…,brand=…')``), or nothing when the columns are not known.

    The router's 404 named only the key, where ``lookup_key`` tells the CLI's user which of
    a misspelt column, spaces around ``=`` or a key of the right columns without a model it
    is. Reads only ``text``: a 404 costs nothing per partition."""
    if not columns:
        return ""
    try:
        named = list(decode_key(text))
    except DataError:
        return f" (not a key{_keyed_by(columns)}{one_value(text, columns)})"
    if _padded(text):
        return f" (write it without spaces around '=' and ','{_keyed_by(columns)})"
    if set(named) != set(columns):
        names = ", ".join(repr(c) for c in named)
        return f" (it names {names}{_keyed_by(columns)}{one_value(text, columns)})"
    return f" (a key of this registry's columns, {', '.join(columns)}, with no version served)"


def _keyed_by(columns: Sequence[str] | None) -> str:
    """``; this registry's key columns are store, brand: a key reads 'store=…,brand=…'``, or
    nothing when they are not known."""
    if not columns:
        return ""
    form = ",".join(f"{c}=…" for c in columns)
    return f"; this registry's key columns are {', '.join(columns)}: a key reads '{form}'"


def one_value(key: object, columns: Sequence[str] | None) -> str:
    """For text refused as a key of a registry keyed by one column that holds ``=`` or
    ``,``: ``; if 'x=y' is a value of pid, write 'pid=x%3Dy' (from Python or in a JSON body,
    {"pid": "x=y"})``, else nothing. ``x=y`` reads as the column ``x``, and ``pid=a,b`` as
    two pairs: the refusal named the key columns, not how to write such a value."""
    if not isinstance(key, str) or not columns or len(columns) != 1:
        return ""
    (column,) = columns
    value = key.removeprefix(f"{column}=")
    if "=" not in value and "," not in value:
        return ""
    mapping = json.dumps({column: value}, ensure_ascii=False)
    return (
        f"; if {value!r} is a value of {column}, write '{encode_key([value], columns)}' (from "
        f"Python or in a JSON body, {mapping})"
    )


def _padded(text: str) -> bool:
    """Whether a column or value of key ``text`` has spaces around it (``store = 2``)."""
    return any(part != part.strip() for pair in decode_key(text).items() for part in pair)


def as_trained(key: str, present: Callable[[str], bool]) -> str:
    """``key``, or the form training wrote it in when ``key`` is not ``present`` and that
    form is (``trained_forms``): ``store=2`` for ``store=2.0`` (a client's float, a JSON
    number), ``day=2024-01-01T00:00:00`` for ``day=2024-01-01`` or the other way (a
    DataFrame's date against a CSV's text), a timestamp's ``T`` or space spelling, a
    boolean's ``true`` for ``True`` or ``1``, or several at once. ``present`` is asked only
    for a key with another form: the router's alias table, the registry, the data.

    A key found as written is itself. Absent, and two or more of its forms present (two
    specs on one column: ``pid=1.0`` is one's ``pid=1`` and the other's ``pid=true``), it is
    an ``AmbiguousKey`` naming them: the first form tried was taken without a word. Every
    form is asked then, a bounded few, only for a key absent as written."""
    found = trained_forms(key)
    if not found or present(key):
        return key
    there = [v for v in found if present(v)]
    if len(there) > 1:
        raise AmbiguousKey(key, there)
    return there[0] if there else key


def trained_spellings(
    keys: Iterable[str], read: Callable[[list[str]], Mapping[str, T]], *, plain: bool = True
) -> tuple[dict[str, str | None], dict[str, T]]:
    """``{key: the spelling training wrote it in}`` for each distinct one of ``keys`` (itself
    when found, else the first of its other forms found, in ``as_trained``'s order, else
    ``None``), and the rows ``read`` gave. ``read``: the rows of those of some keys that are
    there (partitions, versions at an alias), asked at most twice: the keys as written, then
    the other forms of those absent, if any. One helper for actuals, scoring and forecasts.
    ``plain=False``: a key with no other form is taken as written, unread."""
    distinct = list(dict.fromkeys(keys))
    forms: dict[str, list[str]] = {}
    if not plain:  # only the keys with another form are read
        forms = {k: f for k in distinct if (f := trained_forms(k))}
    first = distinct if plain else list(forms)
    rows = dict(read(first)) if first else {}
    absent = {k: forms[k] if k in forms else trained_forms(k) for k in first if k not in rows}
    asked = set(first)
    others = [f for fs in absent.values() for f in fs if f not in asked]
    if others:
        rows.update(read(list(dict.fromkeys(others))))
    spelt = {
        k: next((f for f in absent[k] if f in rows), None) if k in absent else k for k in distinct
    }
    return spelt, rows


def trained_forms(key: str) -> list[str]:
    """The other forms ``as_trained`` tries for ``key``, in its order: a caller that reads
    the registry for a few named keys reads these with them, in one batched query.

    A bounded few whatever the key (each rewrite applies to every value at once: one table
    writes its timestamps one way), found from the key's text alone: ``ts=2024-01-05 10:30``
    was "no partition" for the ``ts=2024-01-05T10:30:00`` a DataFrame trained (a CSV's
    ``2024-01-05 10:30:00`` for it the other way), ``flag=True`` or ``flag=1`` for
    ``flag=true``. The spellings are ``value_spellings.value_forms``', as a table's keys
    are respelt (``key_spellings``)."""
    unicode = "%" in key  # a value beyond ASCII: its other normal form (``_normal_forms``)
    if not ("." in key or "-" in key or maybe_boolean(key) or unicode):  # no parse without a sign
        return []
    try:
        parsed = decode_key(key)
    except DataError:
        return []
    given = list(parsed.values())
    written = [quote_text(c) + "=" for c in parsed]  # each value's text: quoted once, if changed
    quoted = [w + quote_text(v) for w, v in zip(written, given, strict=True)]
    keys = (
        ",".join(
            q if v == g else w + quote_text(v)
            for w, q, v, g in zip(written, quoted, f, given, strict=True)
        )
        for f in (*value_forms(given), *(_normal_forms(given) if unicode else ()))
    )
    return [k for k in dict.fromkeys(keys) if k != key]


def _normal_forms(values: list[str]) -> list[list[str]]:
    """``values`` in Unicode's composed (NFC) and decomposed (NFD) forms, one text to the eye:
    a key typed as NFD (macOS file names) was "no partition 'store=cafe%CC%81'" beside the
    NFC 'store=caf%C3%A9' a CSV trained."""
    import unicodedata

    return [[unicodedata.normalize(form, v) for v in values] for form in ("NFC", "NFD")]
