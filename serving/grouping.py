"""Rows of a batch grouped by partition: ``{canonical key: [row indexes]}``.

Encoding a key (percent-escaping each value) costs more than scoring its row, so each distinct
tuple of key values is encoded once, remembered across requests; when every key column holds
values of one type, rows are read and grouped by value in C first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from manymodels.exceptions import DataError
from manymodels.partition import encode_key
from serving.rows import InvalidRows, problem

Row = Mapping[str, Any]

# Canonical keys of recently seen key values, per key columns: encoding (percent-escaping each
# value) cost more than the rest of a batch row. Tagged with the values' types, as 1, 1.0
# and True are one dict key but need not be one partition. Cleared when it grows past
# ENCODED_LIMIT; a race between two threads can only encode a key twice.
ENCODED_LIMIT = 100_000
_encoded: dict[tuple[str, ...], dict[tuple[Any, ...], str]] = {}


def group(rows: Sequence[Row], columns: Sequence[str]) -> dict[str, list[int]]:
    """``{canonical key: [row indexes]}`` in one pass; a missing or unusable key value is a 422.

    Each distinct tuple of key values is encoded once (encoding costs more than the lookup).
    """
    memo = _encoded.setdefault(tuple(columns), {})
    if len(memo) > ENCODED_LIMIT:
        memo.clear()
    fast = _group_by_values(rows, columns, memo)
    if fast is not None:
        return fast
    groups: dict[str, list[int]] = {}
    errors: list[dict[str, Any]] = []
    n_errors = 0
    for i, row in enumerate(rows):
        tag: tuple[Any, ...] = ()
        try:
            values = [row[c] for c in columns]
            tag = (*values, *[type(v) for v in values])
            key = memo.get(tag)
        except (KeyError, TypeError):  # a missing column, or an unhashable value
            key = None
        if key is None:
            found = _key_of(i, row, columns)
            if isinstance(found, dict):
                n_errors += 1
                if len(errors) < 20:
                    errors.append(found)
                continue
            key = found
            if tag:
                memo[tag] = key
        groups.setdefault(key, []).append(i)
    if n_errors:
        raise InvalidRows(errors, n_errors)
    return groups


KEY_TYPES = (str, int, float)


def _group_by_values(
    rows: Sequence[Row], columns: Sequence[str], memo: dict[tuple[Any, ...], str]
) -> dict[str, list[int]] | None:
    """``group`` when every key column holds values of one type (str, int or float) in every
    row: the values are read and their types checked in C (``itemgetter``, ``map``), rows
    grouped by value, and each distinct value looked up once. ``None`` for anything else — a
    missing column, mixed types (1 and 1.0 and True compare equal, yet are not one key), a
    value that cannot be a key — which the row-by-row path groups or reports."""
    try:
        values = list(map(itemgetter(*columns), rows))
    except (KeyError, TypeError):
        return None
    types: list[type] = []
    for column in [values] if len(columns) == 1 else list(zip(*values, strict=True)):
        kinds = set(map(type, column))
        if len(kinds) != 1 or (kind := kinds.pop()) not in KEY_TYPES:
            return None
        types.append(kind)
    by_value: dict[Any, list[int]] = {}
    try:
        for i, v in enumerate(values):
            found = by_value.get(v)
            if found is None:
                by_value[v] = [i]
            else:
                found.append(i)
    except TypeError:
        return None
    groups: dict[str, list[int]] = {}
    for v, idx in by_value.items():
        tag = (v, *types) if len(columns) == 1 else (*v, *types)
        key = memo.get(tag)
        if key is None:
            found_key = _key_of(idx[0], rows[idx[0]], columns)
            if isinstance(found_key, dict):
                return None
            key = memo[tag] = found_key
        if key in groups:  # two values of one key (0.0 and -0.0): rows stay in order
            groups[key] = sorted(groups[key] + idx)
        else:
            groups[key] = idx
    return groups


def _key_of(i: int, row: Row, columns: Sequence[str]) -> str | dict[str, Any]:
    """The canonical key of one row, or the problem that prevents it."""
    values = []
    for c in columns:
        v = row.get(c)
        if v is None:
            what = "missing" if c not in row else "null"
            msg = f"key column '{c}' is {what} (rows carry {', '.join(columns)})"
            return problem(i, c, msg, "missing")
        if not isinstance(v, str | int | float):
            return problem(i, c, f"key column '{c}' must be text or a number", "value_error")
        values.append(v)
    try:
        return encode_key(values, columns)
    except DataError as e:
        return problem(i, None, str(e), "value_error")
