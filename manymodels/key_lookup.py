"""A partition key a user names (``models show``, ``promote``, an import's ``--key``, the
router's path), found as the registry holds it or refused saying what a key of this
registry reads like: a misspelt column, spaces around ``=``, a value holding ``=`` or ``,``.

Apart from ``keys`` (the canonical form, which every reader and writer of keys needs) because
these are the answers to a person's typing: the lookups and their refusals' wording, one
module so that the CLI and the router's 404 say the same.

Pure Python on purpose, as ``keys`` is: no numpy, no pandas.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from manymodels.exceptions import DataError, PartitionNotFound
from manymodels.key_forms import row_as_mapping
from manymodels.keys import FALLBACK_KEY, decode_key, encode_key, keyed_by, normalize_key
from manymodels.trained_keys import as_trained


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
        raise DataError(f"{e}{keyed_by(columns)}{one_value(key, columns)}") from e
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
        f"{keyed_by(columns)}{space}{value}"
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
            f"'=' and ','{keyed_by(columns)}"
        )
    if columns is not None and set(pairs) != set(columns):
        raise DataError(
            f"{key!r} is not a key of this registry: it names "
            f"{', '.join(repr(c) for c in pairs)}{keyed_by(columns)}"
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
        return f" (not a key{keyed_by(columns)}{one_value(text, columns)})"
    if _padded(text):
        return f" (write it without spaces around '=' and ','{keyed_by(columns)})"
    if set(named) != set(columns):
        names = ", ".join(repr(c) for c in named)
        return f" (it names {names}{keyed_by(columns)}{one_value(text, columns)})"
    return f" (a key of this registry's columns, {', '.join(columns)}, with no version served)"


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
