"""Numeric columns with stray words in them (``"n/a"``, ``"abc"`` among numbers): refused
by name, or with ``bad_rows = "drop"`` left out — and, where lags read the rows before, kept
in place without a target so that the rows after them keep their periods.

Kept apart from ``data`` (reading and checking a table), which calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from manymodels.exceptions import DataError
from manymodels.features import python_numbers
from manymodels.huge_numbers import is_too_large, shown, too_large
from manymodels.label_matching import is_bool
from manymodels.partition import PartitionedTable, group_rows
from manymodels.row_numbers import data_row
from manymodels.spec import Spec

MOSTLY_NUMERIC = 0.9
"""A text column whose values parse as numbers at least this often is numbers with a typo."""
MOSTLY_TEXT_WARNING = 0.5
"""A text feature whose values parse as numbers at least this often (but less than
``MOSTLY_NUMERIC``) is one-hot encoded as asked, with a warning naming it."""


_NUMBER_KINDS = frozenset(
    {"integer", "floating", "mixed-integer-float", "boolean", "mixed", "mixed-integer"}
)
"""pandas' ``infer_dtype`` kinds of a column that may hold numbers alone: booleans (``True``
beside ``None``, a JSON null), and booleans beside numbers, are "boolean", "mixed" and
"mixed-integer" (``python_numbers`` stops at a column's first text cell)."""


def numbers_as_floats(
    df: pd.DataFrame,
    spec: Spec,
    *,
    source: str,
    categories: Sequence[Any] = (),
    kinds: Mapping[Any, str] | None = None,
) -> pd.DataFrame:
    """``df`` with its object columns that hold nothing but numbers (and missing values) as
    float64, but for the key and time columns, a classifier's target (its labels are
    ``classes.as_labels``' to read) and the spec's ``categorical`` ones.

    A DataFrame built by hand or from JSON rows (``[1, 2.5, 3]``) holds ints and floats in one
    object column: training took it for text and one-hot encoded each number as a category
    (every new value unknown, answered as all-zero columns), and every later ``score`` or
    ``predict`` of such a column was refused ("must be text, as the model was trained on").
    The router and scoring read such cells as numbers already (``python_numbers``). A
    regression's target of such cells was refused ("must be numeric for a regression (found
    dtype object)") where the same cells as a feature trained. Booleans in an object column
    (``True``, ``False`` and ``None``; or beside numbers) were one-hot encoded too, with a
    warning that the column "holds numbers in 100% of its rows and text in the rest", and
    scoring the very frame trained on was refused ("must be text …"): they are 1 and 0, as
    a ``bool`` column and the router read them; a regression target's are not
    (``python_numbers``), refused as ``/actuals`` refuses ``true``.

    ``categories`` are left as they are: an append's columns its kept version learnt as
    categories (a version trained before these columns were read as numbers: its schema
    would say categorical beside a float64 dtype, and scoring it was refused).

    ``kinds``: ``infer_dtype``'s kind of the object columns of these very rows, where known
    (``cell_kinds.checked_cells`` found them): a column is looked at once, not twice."""
    kinds = kinds or {}
    label = [spec.target] if spec.task == "classification" else []
    skip = {*spec.partition_by, *label, spec.time_column, *(spec.categorical or ()), *categories}
    found: dict[str, np.ndarray] = {}
    for column in df.columns:
        s = df[column]
        if column in skip or s.dtype != object:
            continue
        kind = kinds.get(column) or ptypes.infer_dtype(s, skipna=True)
        if kind not in _NUMBER_KINDS:
            continue
        role = "target" if column == spec.target else "feature"
        numbers = python_numbers(s, str(column), source, role=role)
        if numbers is not None:
            found[column] = numbers
    if not found:
        return df
    out = df.copy(deep=False)
    for column, numbers in found.items():
        out[column] = numbers
    return out


def numeric_share(s: pd.Series) -> float:
    """The share of present values that parse as numbers (0 for datetimes and categoricals)."""
    if ptypes.is_datetime64_any_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype):
        return 0.0
    present = s.dropna()
    if present.empty:
        return 0.0
    try:
        return float(pd.to_numeric(present, errors="coerce").notna().mean())
    except OverflowError:  # an integer no float holds: a number, which the caller names
        return 1.0


def _to_numeric(s: pd.Series, column: str, *, role: str, source: str) -> pd.Series:
    """``pd.to_numeric(s, errors="coerce")``, which raises ``OverflowError`` (not coerced) for
    an integer past float64 in an object column (a CSV's 400-digit number): ``train`` ended
    in that traceback. A ``DataError`` naming it and its row instead, in the words every
    other door uses (``huge_numbers``)."""
    try:
        return pd.to_numeric(s, errors="coerce")
    except OverflowError:
        at = next(i for i, v in enumerate(s.tolist()) if is_too_large(v))
        what = f"{role} '{column}'"
        raise DataError(f"{source}: {too_large(what, s.iloc[at], data_row(at))}") from None


_INFINITIES = frozenset({"inf", "infinity", "+inf", "+infinity", "-inf", "-infinity"})


def _refuse_overflowed(
    s: pd.Series, parsed: pd.Series, column: str, *, role: str, source: str
) -> None:
    """A ``DataError`` for a cell of text that ``pd.to_numeric`` read as an infinity: a
    400-digit number beside a stray word (``bad_rows = "drop"``) became ``inf``, and its
    partition failed with scikit-learn's "Input X contains infinity", where beside numbers
    alone (``bad_rows = "error"``) the file is refused naming it (``csv_rows``). A cell that
    says ``inf`` is an infinity, as pandas reads it beside numbers alone."""
    values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        infinite = np.flatnonzero(np.isinf(values))
    for at in infinite:
        cell = s.iloc[int(at)]
        text = str(cell).strip()
        if isinstance(cell, str) and text.lower() not in _INFINITIES:
            value = int(text) if text.lstrip("+-").isdigit() else text
            what = f"{role} '{column}'"
            raise DataError(f"{source}: {too_large(what, value, data_row(int(at)))}")


def drop_bad_rows(
    df: pd.DataFrame, spec: Spec, *, source: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``bad_rows = "drop"``: rows whose value in a numeric column (a regression target, a
    feature not declared categorical) is a stray word are left out; the column becomes
    numeric. With lags, rolling statistics or changes, which read the rows before, such a row
    stays in its place without a target (and the stray word missing), so training leaves it
    out while the rows after it keep their periods. Returns the rows kept and, per column,
    how many were dropped."""
    declared = set(spec.categorical or [])
    roles = {*spec.partition_by, spec.target, spec.time_column}
    features = spec.features or [c for c in df.columns if c not in roles]
    columns = [c for c in features if c not in declared and c in df.columns]
    if spec.task == "regression" and spec.target in df.columns:
        columns.append(spec.target)
    bad = np.zeros(len(df), dtype=bool)
    counts: dict[str, int] = {}
    converted: dict[str, pd.Series] = {}
    for col in columns:
        s = df[col]
        if is_numeric(s) or numeric_share(s) < MOSTLY_NUMERIC:
            continue  # numbers already, or text meant as text
        role = "target" if col == spec.target else "feature"
        parsed = _to_numeric(s, col, role=role, source=source)
        _refuse_overflowed(s, parsed, col, role=role, source=source)
        stray = (parsed.isna() & s.notna()).to_numpy()
        counts[col] = int((stray & ~bad).sum())
        bad |= stray
        converted[col] = parsed
    if not counts:
        return df, {}
    if bad.all():
        raise DataError(f"{source}: every row holds a stray word in a numeric column")
    counted = {c: n for c, n in counts.items() if n}
    if spec.time_column and (spec.lags or spec.rolling or spec.changes):
        # a row's target is the lag of the rows after it, and its features their changes'
        # previous values: removing it shifted every lag after it by a period (the row after
        # it took the target two periods back as its lag 1). It stays, as a row without a
        # target (left out of training, as an empty cell is; the lags reading it missing)
        kept = df.assign(**converted)
        if spec.target in kept.columns:
            kept[spec.target] = kept[spec.target].where(~bad)
        kept[BAD_ROW] = np.asarray(bad, dtype=bool)  # ``checked`` moves it to the attrs
        return kept, counted
    return df.assign(**converted)[~bad], counted


def check_not_stray_text(s: pd.Series, column: str, *, role: str, source: str) -> None:
    """A column of numbers with a few stray words (``"abc"``, ``"n/a"``) reads as text: as a
    feature it would silently turn one-hot, and every later number sent to ``/predict`` be
    refused. Name the first stray value instead."""
    if ptypes.is_datetime64_any_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype):
        return
    present = s.dropna()
    if present.empty:
        return
    parsed = _to_numeric(s, column, role=role, source=source)[s.notna()]
    bad = parsed.isna().to_numpy()
    n_bad = int(bad.sum())
    if n_bad == 0 or n_bad > (1 - MOSTLY_NUMERIC) * len(present):
        return
    first = int(np.flatnonzero(bad)[0])
    row = int(s.index.get_loc(present.index[first])) if s.index.is_unique else None
    # no row known (a frame whose index repeats): "(counting data rows from 1)" was said of none
    where = f" in {data_row(row)}" if isinstance(row, int) else ""
    value = shown(present.iloc[first])
    listed = " or list it in 'categorical' if it really is text" if role == "feature" else ""
    raise DataError(
        f"{source}: {role} '{column}' holds numbers except {n_bad} value(s), the first "
        f"{value}{where}: fix or remove those rows "
        f'(bad_rows = "drop" in the spec leaves them out){listed}'
    )


def refuse_boolean_target(s: pd.Series, column: str, *, source: str) -> None:
    """A ``DataError`` naming the first ``True``/``False`` among a regression target's cells
    (an object column: a JSON ``true``, two frames merged): ``python_numbers`` reads no
    target's boolean as 1 or 0, as ``/actuals`` refuses ``true``, and the refusal said only
    "must be numeric for a regression (found dtype object)", naming no cell."""
    if s.dtype != object and not ptypes.is_bool_dtype(s):
        return  # a column all of booleans (a CSV's True/False) too: numeric to pandas
    at = next((i for i, v in enumerate(s.tolist()) if is_bool(v)), None)
    if at is not None:
        raise DataError(
            f"{source}: target '{column}' holds a boolean ({bool(s.iloc[at])}) in "
            f"{data_row(at)}: a regression's target is a number; give 1 or 0, or train a "
            'classifier (task = "classification")'
        )


def refuse_text_target(s: pd.Series, column: str, *, source: str) -> None:
    """A ``DataError`` naming the first cell of a regression target that is no number, its row
    and how many there are, for a column more text than numbers (``check_not_stray_text``
    names the few stray words among numbers): it said only "must be numeric for a regression
    (found dtype str)", so ``train --append`` of one row whose target was ``'ten'`` left the
    word and its row to be found."""
    parsed = _to_numeric(s, column, role="target", source=source)
    bad = np.flatnonzero((s.notna() & parsed.isna()).to_numpy())
    if len(bad):
        at = int(bad[0])
        raise DataError(
            f"{source}: target '{column}' must be numeric for a regression, and {len(bad)} "
            f"value(s) are not numbers, the first {shown(s.iloc[at])} in {data_row(at)}"
        )


def is_numeric(s: pd.Series) -> bool:
    return bool(ptypes.is_numeric_dtype(s) or ptypes.is_bool_dtype(s))


BAD_ROW = "\0bad_row"
"""The column (then ``attrs`` entry) marking the rows ``bad_rows = "drop"`` kept in place."""


def leave_out_bad_rows(table: PartitionedTable, spec: Spec, df: pd.DataFrame) -> PartitionedTable:
    """The rows ``bad_rows = "drop"`` kept in place for the lags (``drop_bad_rows``) with
    their lags, rolling statistics and changes missing, so training leaves them out as
    ``undefined_lags`` whatever ``missing_target`` says: their target is missing only because
    it was dropped, and ``missing_target = "error"`` failed their partition on it ("target
    'y' has 1 missing value(s)"), where the spec asked for the row to be dropped."""
    mask = df.attrs.get(BAD_ROW)
    derived = [*spec.lag_columns, *spec.rolling_columns, *spec.change_columns]
    if mask is None or not mask.any() or not derived:
        return table
    order = group_rows(df, spec.partition_by, time_column=spec.time_column).order
    bad = np.asarray(mask)[order]  # the table's rows are ``df``'s in this order (``split``)
    at = [table.features.index(c) for c in derived]
    X = table.X.copy()
    if isinstance(X, pd.DataFrame):
        X.iloc[np.flatnonzero(bad), at] = np.nan
    else:
        X[np.ix_(bad, at)] = np.nan
    # marked too, so that they are not counted again as a missing target or an undefined lag
    return replace(table, X=X, stray=bad)
