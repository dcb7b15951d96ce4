"""Rows of a batch grouped by partition: ``{canonical key: [row indexes]}``.

Encoding a key (percent-escaping each value) costs more than scoring its row, so each distinct
tuple of key values is encoded once, remembered across requests; when every key column holds
values of one type, rows are read and grouped by value in C first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from manymodels.exceptions import DataError
from manymodels.partition import encode_key
from serving.rows import InvalidRows, problem

Row = Mapping[str, Any]

# Canonical keys of recently seen key values, per key columns and the values' types: encoding
# (percent-escaping each value) cost more than the rest of a batch row. Kept by type, as 1,
# 1.0 and True are one dict key but need not be one partition; a value is the column's value
# (one key column) or the tuple of them. Cleared when one grows past ENCODED_LIMIT; a race
# between two threads can only encode a key twice.
ENCODED_LIMIT = 100_000
_encoded: dict[tuple[tuple[str, ...], tuple[type, ...]], dict[Any, str]] = {}


def _memo(columns: Sequence[str], types: tuple[type, ...]) -> dict[Any, str]:
    memo = _encoded.get((tuple(columns), types))
    if memo is None or len(memo) > ENCODED_LIMIT:
        memo = _encoded[(tuple(columns), types)] = {}
    return memo


def group(rows: Sequence[Row], columns: Sequence[str]) -> dict[str, list[int]]:
    """``{canonical key: [row indexes]}`` in one pass; a missing or unusable key value is a 422.

    Each distinct tuple of key values is encoded once (encoding costs more than the lookup).
    """
    fast = _group_by_values(rows, columns)
    if fast is not None:
        return fast
    groups: dict[str, list[int]] = {}
    errors: list[dict[str, Any]] = []
    n_errors = 0
    for i, row in enumerate(rows):
        memo: dict[Any, str] | None = None
        try:
            values = [row[c] for c in columns]
            value = values[0] if len(values) == 1 else tuple(values)
            table = _memo(columns, tuple(map(type, values)))
            key = table.get(value)
            memo = table  # only once ``value`` has proved hashable
        except (KeyError, TypeError):  # a missing column, or an unhashable value
            key = None
        if key is None:
            found = _key_of(i, row, columns, hint=len(errors) < 20)
            if isinstance(found, dict):
                n_errors += 1
                if len(errors) < 20:
                    errors.append(found)
                continue
            key = found
            if memo is not None:
                memo[value] = key
        groups.setdefault(key, []).append(i)
    if n_errors:
        raise InvalidRows(errors, n_errors)
    return groups


KEY_TYPES = (str, int, float)


def _group_by_values(rows: Sequence[Row], columns: Sequence[str]) -> dict[str, list[int]] | None:
    """``group`` when every key column holds values of one type (str, int or float) in every
    row: the values are read and their types checked in C (``itemgetter``, ``map``), rows
    grouped by value, and the distinct values' keys looked up together. ``None`` for anything
    else — a missing column, mixed types (1 and 1.0 and True compare equal, yet are not one
    key), a value that cannot be a key — which the row-by-row path groups or reports."""
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
    memo = _memo(columns, tuple(types))
    try:
        if len(distinct := set(values)) == 1:  # one partition's rows: no loop over them
            by_value[distinct.pop()] = list(range(len(values)))
        elif len(distinct) == len(values):  # a row per partition: no look-up per row
            if len(values) <= len(_ONE_ROW) and (fast := _one_row_each(values, memo)):
                return fast
            by_value = dict(zip(values, [[i] for i in range(len(values))], strict=True))
        else:
            for i, v in enumerate(values):
                found = by_value.get(v)
                if found is None:
                    by_value[v] = [i]
                else:
                    found.append(i)
    except TypeError:
        return None
    keys = list(map(memo.get, by_value))
    if None in keys:
        for n, (v, idx) in enumerate(by_value.items()):
            if keys[n] is None:
                found_key = _key_of(idx[0], rows[idx[0]], columns)
                if isinstance(found_key, dict):
                    return None
                keys[n] = memo[v] = found_key
    if len(set(keys)) == len(keys):
        return dict(zip(keys, by_value.values(), strict=True))  # type: ignore[arg-type]
    groups: dict[str, list[int]] = {}
    for key, idx in zip(keys, by_value.values(), strict=True):
        if key in groups:  # two values of one key (0.0 and -0.0): rows stay in order
            groups[key] = sorted(groups[key] + idx)
        else:
            groups[key] = idx  # type: ignore[index]
    return groups


def _one_row_each(values: list[Any], memo: dict[Any, str]) -> dict[str, list[int]] | None:
    """The groups of rows whose values are all distinct and all remembered, each row its own
    key's (``None`` if one is new, or two values are one key: 0.0 and -0.0). The row lists
    are ``_ONE_ROW``'s, shared by every request: half the cost of a batch's grouping was
    building a hundred one-item lists, and no reader of groups changes them."""
    keys = list(map(memo.get, values))
    if None in keys:
        return None
    groups = dict(zip(keys, _ONE_ROW, strict=False))  # stops at the last key
    return groups if len(groups) == len(keys) else None  # type: ignore[return-value]


# Row i's one-item list ``[i]``, for batches of a row per partition. Read-only, like every
# group's list of rows: ``group``'s callers index with them and never change them.
_ONE_ROW: list[list[int]] = [[i] for i in range(4096)]


def _key_of(
    i: int, row: Row, columns: Sequence[str], *, hint: bool = False
) -> str | dict[str, Any]:
    """The canonical key of one row, or the problem that prevents it; ``hint``: a missing key
    column's did-you-mean too (only for the problems a 422 lists: it compares the row's
    column names, so not for each of a batch of thousands of bad rows)."""
    values = []
    for c in columns:
        v = row.get(c)
        if v is None:
            what = "missing" if c not in row else "null"
            msg = f"key column '{c}' is {what} (rows carry {', '.join(columns)})"
            if hint and what == "missing":
                msg += _misspelt(c, [k for k in row if k not in columns])
            return problem(i, c, msg, "missing")
        if not isinstance(v, str | int | float):
            return problem(i, c, f"key column '{c}' must be text or a number", "value_error")
        values.append(v)
    try:
        return encode_key(values, columns)
    except DataError as e:
        return problem(i, None, str(e), "value_error")


def refused_row(
    indexes: Sequence[int], rows: Sequence[Row], columns: Sequence[str]
) -> dict[str, Any] | None:
    """``not_a_key_value`` of the first of a group's rows that has one. Every row is asked,
    not the group's first alone: text "true" and a boolean true (or "inf" and 1e400) are one
    key, so a boolean behind the text was served by the fallback and refused only when it
    came first. A check per row of the fallback's groups, as the rows are read anyway."""
    for i in indexes:
        if (found := not_a_key_value(i, rows[i], columns)) is not None:
            return found
    return None


def not_a_key_value(i: int, row: Row, columns: Sequence[str]) -> dict[str, Any] | None:
    """The problem of row ``i`` whose key names no partition because a key value is a JSON
    boolean or a non-finite number (``1e400`` parses as inf), else ``None``. Encoded as any
    value (``true`` → ``store=true``, inf → ``store=inf``), such a row was answered by the
    fallback as if it named a partition merely unknown: a client's mistake served as a
    prediction. Asked only of keys that resolved to no partition: a registry trained on a
    boolean column has ``flag=true``, and that row is served by its model."""
    for c in columns:
        v = row.get(c)
        if isinstance(v, bool):
            what = "a JSON boolean"
        elif isinstance(v, float) and not math.isfinite(v):
            what = "not a finite number"
        else:
            continue
        shown = json.dumps(v)  # true, Infinity: what the client sent, as JSON spells it
        return problem(
            i, c, f"key column '{c}' is {shown}, {what}: a partition key value is text or a "
            "finite number, and no partition has this one", "value_error",
        )  # fmt: skip
    return None


def _misspelt(column: str, others: Sequence[str]) -> str:
    """``; did you mean 'store' for 'stor'?`` of a row that lacks the key column ``column``
    and names one a letter or two off it among ``others`` (its columns that are no key's),
    else nothing: a path key's 422 said so (``serving.resolution.other_columns``), a batch
    row's only that the column was missing. An error's path only (it imports pandas)."""
    from manymodels.tables import close_names, did_you_mean

    hint = did_you_mean(close_names([str(o) for o in others], [column]))
    return f"; {hint}" if hint else ""
