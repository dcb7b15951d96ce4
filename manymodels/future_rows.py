"""A forecast's ``future`` table (``forecast --future``, ``mm.forecast(future=)``, the
router's posted rows) read and checked once for the whole table: one canonical key per row,
its time parsed as the forecast's steps compare, and each exogenous feature converted by
column; ``forecast_steps.build_steps`` then matches it with the steps by key and time.

Apart from ``forecast_steps`` because reading a user's table (its keys, times and refusals)
is one job and building the steps of many partitions another.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Container, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from manymodels.argument_order import index_hint
from manymodels.csvkeys import keys_as_recorded
from manymodels.date_column import parse_dates
from manymodels.exceptions import DataError, pandas_first_line
from manymodels.feature_schema import FeatureSchema
from manymodels.features import column_values
from manymodels.forecast_formats import on_midnights
from manymodels.forecast_steps import _KEY, _TIME, _exogenous, _history, _plan, shown_time
from manymodels.huge_numbers import refuse_infinite
from manymodels.partition import encode_key
from manymodels.registry.entities import ModelVersion
from manymodels.row_numbers import data_row
from manymodels.tables import DataSource, describe_source, read_table, refuse_repeated_columns
from manymodels.time_refusals import (
    coerced_times,
    first_unparsed,
    in_row,
    missing_times,
    without_position,
)


def future_table(
    data: DataSource,
    schemas: Sequence[ModelVersion | FeatureSchema],
    *,
    key_columns: Sequence[str] | None,
    time_column: str,
    key: str | None = None,
    source: str | None = None,
    recorded: Callable[[pd.DataFrame], Mapping[str, Any]] | None = None,
    spelt: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """``data`` checked and keyed for ``build_steps``: a canonical key per row (from
    ``key_columns``, or ``key`` for rows of one partition), its time, and the exogenous
    features the models need, each converted and checked once for the whole column.
    ``recorded``: the key values, as recorded, of the partitions the table read names
    (``csvkeys.data_keys_recorded``); else the first schema's (one partition's rows).
    ``spelt``: the table with its keys as the registry spells them
    (``key_spellings.registry_spelling``: a CSV's ``2024-01-05 10:30:00`` for a DataFrame's
    ``2024-01-05T10:30:00``)."""
    source = source or f"future ({describe_source(data)})"
    fs, kinds, exogenous = _exogenous(schemas)
    df = read_table(data)
    if key_columns:  # codes such as 007 kept text
        df = keys_as_recorded(data, df, recorded(df) if recorded else _history(fs[0]).key)
        df = spelt(df) if spelt is not None else df
    required = [*(key_columns or []), time_column, *exogenous]
    refuse_repeated_columns(df, source, required)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))} (future rows carry "
            f"the key and time columns and the exogenous features {', '.join(exogenous)})"
            + index_hint(missing, df)
        )
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    out[_KEY] = _row_keys(df, key_columns, source=source) if key is None else key
    out[_TIME] = _parse_times(df[time_column], fs[0], source=source)
    for name in exogenous:
        numeric = kinds.get(name, True)
        out[name] = column_values(df[name], numeric=numeric, name=name, source=source)
        if numeric:  # scikit-learn's "Input X contains infinity" named neither column nor row
            refuse_infinite(
                out[name].to_numpy(), f"feature '{name}'", source=source, where=data_row
            )
    duplicated = out.duplicated([_KEY, _TIME])
    if duplicated.any():
        first = out.loc[duplicated.to_numpy()].iloc[0]
        raise DataError(
            f"{source}: more than one row for partition '{first[_KEY]}' at "
            f"{shown_time(first[_TIME], on_midnights(fs[0]))}"
        )
    out.attrs["source"] = source  # for the errors of matching it with the steps
    return out


def refuse_unmatched(
    future: pd.DataFrame, known_of: Callable[[list[str]], Container[str]], forecast: str
) -> Container[str]:
    """A future table none of whose partitions the registry has (``known_of``: those of the
    table's keys at the forecast's alias): keys of another type or spelling, another spec's.
    Every partition would carry its last values forward as if it had been given none, the
    table unused without a word. A table of other known partitions only (a file of this
    week's promotions, none for the partitions forecast) is fine: those carry forward, as
    documented. Returns those known, for ``unused_rows`` (read once, here)."""
    given = pd.unique(future[_KEY])
    if not len(given):
        return set()
    known = known_of([str(k) for k in given])
    if any(k in known for k in given):
        return known
    source = future.attrs.get("source", "future")
    raise DataError(
        f"{source}: none of its {len(given)} partition(s) is in the registry (it has "
        f"'{given[0]}'; the forecast has '{forecast}'): check the key columns' values and types"
    )


SHOWN_UNUSED = 3  # keys a forecast's summary names of the partitions it did not use


def unused_rows(
    future: pd.DataFrame, forecast: Container[str], known: Container[str]
) -> dict[str, Any]:
    """The rows of a future table no partition forecast reads: of keys with no version at the
    alias (``known``: ``refuse_unmatched``'s answer), or not among the partitions forecast
    (``forecast``). They were left unused without a word, where a user who sent them expects
    them read (a key spelt as another spec's, a partition retired or left out by
    ``--partitions``). The count of such partitions and of their rows, the first few by key
    (as ``without_keys``), and how many of them have no version at all. One pass over the
    table's keys; no registry read."""
    counts = future[_KEY].value_counts(sort=False)
    left = counts[[key not in forecast for key in counts.index]]
    keys = [str(key) for key in left.index]
    return {
        "partitions": len(keys),
        "rows": int(left.sum()),
        "keys": heapq.nsmallest(SHOWN_UNUSED, keys),
        "without_model": sum(key not in known for key in keys),
    }


def _row_keys(df: pd.DataFrame, key_columns: Sequence[str] | None, *, source: str) -> np.ndarray:
    """The canonical key of every row: one ``encode_key`` per distinct key, not per row."""
    columns = list(key_columns or [])
    keys_df = df[columns]
    for name in columns:  # which column, and where: a table of thousands of rows
        missing = keys_df[name].isna().to_numpy()
        if missing.any():
            raise DataError(
                f"{source}: key column '{name}' has missing values, the first "
                f"{in_row(int(np.argmax(missing)))}"
            )
    if df.empty:
        return np.zeros(0, dtype=object)
    group = keys_df.groupby(columns, sort=False, observed=True).ngroup().to_numpy()
    _, firsts = np.unique(group, return_index=True)
    values = zip(*[keys_df[c].to_numpy()[firsts] for c in columns], strict=True)
    names = np.array([encode_key(v, columns) for v in values], dtype=object)
    return names[group]


def _parse_times(values: pd.Series, schema: FeatureSchema, *, source: str) -> Any:
    """The time column as the forecast's times compare: datetime64[ns] or float64."""
    if isinstance(_plan(schema).frequency, str):
        parsed: Any = parse_dates(values, source=source)
    else:
        try:
            parsed = pd.to_numeric(values).to_numpy(dtype=np.float64)
        except (ValueError, TypeError, OverflowError) as e:  # overflow: a 400-digit integer
            where = first_unparsed(values, partial(coerced_times, dated=False))
            raise DataError(
                f"{source}: time column '{values.name}' must hold numbers{where} "
                f"({without_position(pandas_first_line(e))})"
            ) from None
    missing = np.asarray(pd.isna(parsed), dtype=bool)
    if missing.any():
        raise DataError(missing_times(missing, str(values.name), source=source))
    return parsed
