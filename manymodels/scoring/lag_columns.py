"""A score table's target lags, rolling statistics and feature changes, computed from each
partition's recorded history when the table leaves them out (``with_lags``), as the router
computes a row's.

A table of new rows for a lag model was refused for lacking ``units_lag1``, while the router
and ``LoadedModel.predict`` take the same rows with their times and compute the lags from the
version's history (mlforecast's ``predict`` builds them from the series it was fitted on). A
user had to compute them by hand. Each partition's rows now go through
``rowlags.fill_rows``, the router's own code: a row ``s`` periods after the version's last time
gets the features its forecast step ``s`` would, rows that carry the target (actuals) extend
the history for the later rows of their partition, and a row that is not one of the next
periods, or whose lag needs a target neither the history nor the table holds, is refused in
the router's words, naming its data row. Columns the table does give are read as given, but
for their empty cells: a CSV cannot leave one cell out, so a blank is what a request row that
leaves the feature out is to the router, and is computed (or refused) the same way.

Feature changes (``changes = ["price"]``: ``price_change``) are filled first, as the router
fills them (``manymodels.changes``): a row's price minus the price of the period before it,
another row of the table or, for the period right after the version's last time, the price its
history records. A user's raw new rows thus score as the router would answer them; a table
that gives ``price_change`` is read as given, as before.

Cheap at many partitions: the history is the one each version's feature schema records, read
with the plan's batched version reads; nothing more is read, and the work is one pass over
the rows of the partitions scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from manymodels.exceptions import DataError, InvalidRows
from manymodels.feature_schema import FeatureSchema
from manymodels.partition import FALLBACK_KEY
from manymodels.row_numbers import data_row
from manymodels.rowlags import UNSEEN_TARGET, fill_rows

if TYPE_CHECKING:
    from manymodels.scoring.plan import ModelRef


def lag_names(schema: FeatureSchema) -> list[str]:
    """The target lags, rolling statistics and feature changes a version reads (its history
    computes them)."""
    forecast = schema.forecast
    return [] if forecast is None else [*forecast.lags, *forecast.rolling, *forecast.changes]


def with_lags(
    df: pd.DataFrame,
    positions: np.ndarray,
    offsets: np.ndarray,
    units: Sequence[ModelRef],
    own: Mapping[tuple[str, int], FeatureSchema],
    *,
    source: str,
    alias: str,
) -> pd.DataFrame:
    """``df`` with the lag and rolling columns its versions read and it lacks (or gives with
    empty cells: only those are filled), computed per
    partition from ``own[(key, version)]``'s history (unit ``u`` scores input rows
    ``positions[offsets[u]:offsets[u+1]]``). Returned as given when it lacks none, or lacks
    the time column they would be computed from (the missing columns are then refused as
    before). Raises ``DataError``, one line naming the first bad data row, for rows the
    history cannot fill, and for the fallback's rows when the fallback reads such a column:
    it has no series of its own."""
    blank = _blank_cells(df, units, own)
    wanted: dict[str, None] = {}
    for u, ref in enumerate(units):
        schema = own.get((ref.key, ref.version))
        if schema is None:
            continue
        if ref.key == FALLBACK_KEY:  # lacking columns only: _refuse_fallback names them
            if schema.time_column in df.columns:
                wanted |= dict.fromkeys(n for n in lag_names(schema) if n not in df.columns)
            continue
        rows = positions[int(offsets[u]) : int(offsets[u + 1])]
        names = _unfilled(schema, df, blank, rows)
        if schema.time_column in df.columns:
            wanted |= dict.fromkeys(names)
        elif any(name in blank for name in names):
            _refuse_timeless_table(df, rows, names, blank, schema, ref, source)
    if not wanted:
        return df
    _refuse_fallback(df, positions, offsets, units, own, list(wanted), source, alias)
    out = {
        name: df[name].to_numpy(copy=True) if name in blank else np.full(len(df), np.nan)
        for name in wanted
    }
    columns = {name: df[name].to_numpy(dtype=object) for name in _read(df, units, own)}
    for u, ref in enumerate(units):
        schema = own.get((ref.key, ref.version))
        if schema is None or ref.key == FALLBACK_KEY or schema.time_column not in df.columns:
            continue
        rows = positions[int(offsets[u]) : int(offsets[u + 1])]
        names = [n for n in _unfilled(schema, df, blank, rows) if n in wanted]
        if not names:
            continue
        filled = _partition(rows, schema, columns, names, ref, source)
        for name in names:
            values = [_number(row.get(name)) for row in filled]
            if name in blank:  # given cells stay as given: only the empty ones are filled
                empty = blank[name][rows]
                out[name][rows[empty]] = np.asarray(values)[empty]
            else:
                out[name][rows] = values
    return df.assign(**out)


def _blank_cells(
    df: pd.DataFrame, units: Sequence[ModelRef], own: Mapping[tuple[str, int], FeatureSchema]
) -> dict[str, np.ndarray]:
    """For each derived column the table gives, which of its cells are empty (a blank CSV
    cell, a NaN): such a cell is what a request row that leaves the feature out would be,
    the table having no other way to leave one cell out, and is filled as the router fills
    a left-out feature. A table scored its empty lag cells as NaN: a model that takes
    missing values answered without a word, a Ridge refused naming the column, not the
    empty cell. One ``isna`` per column, not per partition."""
    names: dict[str, None] = {}
    for ref in units:
        schema = own.get((ref.key, ref.version))
        if schema is not None:
            names |= dict.fromkeys(n for n in lag_names(schema) if n in df.columns)
    return {name: df[name].isna().to_numpy() for name in names}


def _unfilled(
    schema: FeatureSchema, df: pd.DataFrame, blank: Mapping[str, np.ndarray], rows: np.ndarray
) -> list[str]:
    """The derived columns a partition's ``rows`` need computed: those the table lacks, and
    those it gives with an empty cell among these rows."""
    return [
        name
        for name in lag_names(schema)
        if name not in df.columns or (name in blank and bool(blank[name][rows].any()))
    ]


def _refuse_timeless_table(
    df: pd.DataFrame,
    rows: np.ndarray,
    names: Sequence[str],
    blank: Mapping[str, np.ndarray],
    schema: FeatureSchema,
    ref: ModelRef,
    source: str,
) -> None:
    """An empty cell of a derived column, in a table without the time column it would be
    computed from: refused naming its partition, data row and column (the router refuses a
    row that leaves a lag out and gives no time)."""
    name = next(n for n in names if n in blank and blank[n][rows].any())
    first = int(rows[np.flatnonzero(blank[name][rows])[0]])
    raise DataError(
        f"{source}: partition '{ref.key}' v{ref.version}: {data_row(first)}: '{name}' has no "
        f"value, and the table has no '{schema.time_column}' column to compute it from: give "
        "the value, or the table its time column"
    )


def _read(
    df: pd.DataFrame, units: Sequence[ModelRef], own: Mapping[tuple[str, int], FeatureSchema]
) -> list[str]:
    """The columns ``fill_rows`` reads of a row: its time, its target (actuals that extend the
    history), the sources of its changes, and the derived features it gives (read as given,
    not computed again)."""
    names: dict[str, None] = {}
    for ref in units:
        schema = own.get((ref.key, ref.version))
        if schema is not None and schema.forecast is not None:
            names |= dict.fromkeys([str(schema.time_column), str(schema.target)])
            names |= dict.fromkeys(schema.forecast.derived)
            names |= dict.fromkeys(schema.forecast.changes.values())
    return [name for name in names if name in df.columns]


def _partition(
    rows: np.ndarray,
    schema: FeatureSchema,
    columns: Mapping[str, np.ndarray],
    names: Sequence[str],
    ref: ModelRef,
    source: str,
) -> list[Mapping[str, Any]]:
    """One partition's rows as ``fill_rows`` takes them: a missing cell left out of its row,
    as a request leaves out a value it does not know; a row without a time is refused (its
    lags have nothing to be computed from). Calendar parts stand in as given
    (``None`` for those the table lacks): ``with_calendar`` computes them for the whole
    table, from the same time, after this. A change's source keeps a missing cell as
    ``null``, as a request sends it: its change is then missing too (``changes``)."""
    calendar = schema.forecast.calendar if schema.forecast is not None else {}
    sources = set(schema.forecast.changes.values()) if schema.forecast is not None else set()
    records: list[dict[str, Any]] = []
    for at in rows.tolist():
        row: dict[str, Any] = dict.fromkeys(calendar)
        for name, values in columns.items():
            value = values[at]
            if not (
                value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value))
            ):
                row[name] = value
            elif name in sources:
                row[name] = None
        records.append(row)
    time_column = str(schema.time_column)
    timeless = [  # of the rows that need one of ``names`` computed: others are given whole
        at
        for at, row in zip(rows.tolist(), records, strict=True)
        if time_column not in row and any(name not in row for name in names)
    ]
    if timeless:  # fill_rows passes such a row on as given: its lags NaN, which a model that
        # takes missing values scores without a word (a table lacking them was refused)
        raise DataError(
            f"{source}: partition '{ref.key}' v{ref.version}: {data_row(timeless[0])}: "
            f"'{time_column}' has no value, and its {', '.join(map(repr, lag_names(schema)))} "
            "are computed from it: give its time, or the table these columns"
        )
    if schema.history is None:  # a version from before histories were recorded
        raise DataError(
            f"{source}: partition '{ref.key}' v{ref.version} records no history to compute "
            f"its lags or changes from: give the table its "
            f"{', '.join(map(repr, lag_names(schema)))} columns"
        )
    try:
        return fill_rows(records, schema, rows.tolist())
    except InvalidRows as e:
        # rows of future periods without their targets: what forecast's --future scores
        unseen = any(UNSEEN_TARGET in str(err.get("msg", "")) for err in e.errors)
        hint = (
            " (rows of periods whose earlier targets are not known yet are a forecast: "
            "`manymodels forecast --horizon N --future FILE`)"
            if unseen
            else ""
        )
        raise DataError(
            f"{source}: partition '{ref.key}' v{ref.version}: {e.as_data_rows()}{hint}"
        ) from None


def _refuse_fallback(
    df: pd.DataFrame,
    positions: np.ndarray,
    offsets: np.ndarray,
    units: Sequence[ModelRef],
    own: Mapping[tuple[str, int], FeatureSchema],
    wanted: list[str],
    source: str,
    alias: str,
) -> None:
    """The fallback's rows cannot have lags computed: it was fitted on every partition's
    rows and records no series (the router computes only calendar parts for it). Refused
    before any row is filled, naming the first such row, when the fallback reads one."""
    if not units or units[-1].key != FALLBACK_KEY:
        return
    ref = units[-1]
    schema = own.get((ref.key, ref.version))
    reads = [] if schema is None else [n for n in lag_names(schema) if n in wanted]
    if not reads:
        return
    first = int(positions[int(offsets[-2])])
    shown = ", ".join(map(repr, reads))
    raise DataError(
        f"{source}: {data_row(first)}: its partition has no '{alias}' model, and the fallback "
        f"(v{ref.version}) that scores such rows has no series of its own to compute {shown} "
        "from: give the table these columns, or leave out the rows of partitions without a "
        "model"
    )


def _number(value: Any) -> float:
    return np.nan if value is None else float(value)
