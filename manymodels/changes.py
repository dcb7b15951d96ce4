"""Changes of exogenous features as features: ``changes = ["price"]`` derives ``price_change``,
each row's price minus the price one row earlier in its time-sorted partition (pandas'
``diff()``). One module for training, forecasting, ``LoadedModel.predict`` and the router, as
``lagfeatures`` is for target lags; a ``score`` table may leave the column out, as it may its
lags: ``scoring.lag_columns`` computes both from the history, through ``rowlags.fill_rows``.

Why a feature of its own: a model of a differenced target (``target_transform =
"difference"``) predicts each period's change, and what moves a change is a change — a price
rise lowers the sales from where they were, whatever the price's level. A regression with
ARIMA errors (statsforecast's ``AutoARIMA`` with exogenous columns) differences its regressors
with the series for this reason; mlforecast leaves it to the user (``transform_exog`` gives
lags, not changes). Given the price and its lag as two features instead, a linear model must
learn two coefficients that cancel, and on short series it learns them badly
(benchmarks/HISTORY.md, #12's fifteenth pass).

Where the previous value comes from:

* training — the row before in the partition (rows, as lags count them: periods of a regular
  series); a partition's first row has no change and is not trained on (``undefined_lags``);
* forecasting — step 1 follows the version's last row with a target (trained on, or left out
  for a missing value), whose features its history records (``History.features``); step
  ``s`` follows step ``s - 1`` of the same forecast;
* a row scored by time (``/predict``, ``LoadedModel.predict``, a ``score`` table's) that leaves
  the change out — the row of the period before it in the same request, or the history for
  the period right after the version's last time; anything else is refused, naming the row.
  Training takes the previous *row*, as lags do (periods of a regular series); a row scored by
  time takes the previous *period*, which is the same on a regular series and the only one a
  lone row has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from manymodels import next_periods, timefeatures, timekeys
from manymodels.exceptions import DataError, problem
from manymodels.feature_schema import FeatureSchema
from manymodels.lagfeatures import partition_positions
from manymodels.partition import PartitionedTable


def recorded(schema: FeatureSchema) -> dict[str, str]:
    """``{derived feature: its source feature}`` a version recorded (empty for most)."""
    return schema.forecast.changes if schema.forecast is not None else {}


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
def add_to_table(
    table: PartitionedTable, columns: Mapping[str, str], *, source: str
) -> PartitionedTable:
    """``table`` (sorted by key then time) with each ``{derived: source}`` change appended as
    a float64 feature, NaN on each partition's first row."""
    if not columns:
        return table
    for name in columns.values():  # resolve_columns refused a missing one
        assert name in table.features, name
        if name in table.categorical:
            raise DataError(
                f"{source}: changes names '{name}', a column of text; a change needs numbers"
            )
    first = partition_positions(table.offsets) == 0
    derived: dict[str, np.ndarray] = {}
    for name, col in columns.items():
        if isinstance(table.X, pd.DataFrame):
            values = table.X[col].to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = np.asarray(table.X[:, table.features.index(col)], dtype=np.float64)
        change = np.empty_like(values)
        change[1:] = values[1:] - values[:-1]
        change[first] = np.nan
        derived[name] = change
    X: np.ndarray | pd.DataFrame
    if isinstance(table.X, pd.DataFrame):
        X = table.X.assign(**derived)
    else:
        X = np.hstack([table.X, np.column_stack(list(derived.values()))])
    return replace(
        table,
        X=X,
        features=[*table.features, *derived],
        feature_dtypes={**table.feature_dtypes, **dict.fromkeys(derived, "float64")},
    )


# --------------------------------------------------------------------------------------------
# forecasting
# --------------------------------------------------------------------------------------------
def add_to_steps(
    columns: dict[str, np.ndarray],
    schemas: Sequence[FeatureSchema],
    horizon: int,
) -> None:
    """Adds to ``columns`` (in place) the change columns of each partition whose version
    records them, for its ``horizon`` steps (partition-major), from the steps' own source
    columns and its last recorded value before step 1. A partition whose version does not
    record a change keeps what ``columns`` holds under that name (a feature of its own)."""
    wanted: dict[str, str] = {}
    for schema in schemas:
        wanted.update(recorded(schema))
    for name, col in wanted.items():
        assert col in columns, col  # a change's source is an exogenous feature of its version
        last = [_number(s.history.features.get(col) if s.history else None) for s in schemas]
        # text where another spec's partition has a text column of that name: NaN, unused
        values = pd.to_numeric(pd.Series(columns[col]), errors="coerce")
        steps = values.to_numpy(dtype=np.float64, na_value=np.nan).reshape(len(schemas), horizon)
        before = np.column_stack([np.array(last, dtype=np.float64), steps[:, :-1]])
        change = (steps - before).ravel()
        mine = np.repeat([name in recorded(s) for s in schemas], horizon)
        columns[name] = change if mine.all() else np.where(mine, change, columns.get(name, np.nan))


def _number(value: Any) -> float:
    """``value`` as a float when it is a finite number (booleans count, as ``inputs`` counts
    them and training reads them), else NaN."""
    if not isinstance(value, int | float | np.integer | np.floating | np.bool_):
        return np.nan
    try:
        out = float(value)
    except OverflowError:  # a JSON integer beyond float64
        return np.nan
    return out if np.isfinite(out) else np.nan


# --------------------------------------------------------------------------------------------
# rows scored by time
# --------------------------------------------------------------------------------------------
def missing(rows: Sequence[Mapping[str, Any]], schema: FeatureSchema) -> bool:
    """Whether some row leaves out a change its version could derive."""
    names = recorded(schema)
    has_history = schema.history is not None
    return bool(names) and has_history and any(n not in r for r in rows for n in names)


def fill_rows(
    rows: Sequence[Mapping[str, Any]],
    schema: FeatureSchema,
    where: Sequence[int],
) -> tuple[list[Mapping[str, Any]], list[dict[str, Any]]]:
    """``rows`` with the changes they leave out, and a problem (FastAPI's shape) for each row
    whose change cannot be known: no time, no value of the source, or no value of the period
    before it (see the module)."""
    names = recorded(schema)
    history, plan = schema.history, schema.forecast
    time_column = str(schema.time_column)
    todo = [i for i, row in enumerate(rows) if any(n not in row for n in names)]
    if not todo or plan is None or plan.frequency is None or history is None:
        return list(rows), []
    if history.time is None:
        return list(rows), []
    periods = _Periods(plan.frequency, plan.timezone, history.time, plan.holidays)
    # period → the source values known for it: the history's last row, and each row's own
    known: dict[Any, list[Mapping[str, Any]]] = {periods.key(history.time): [history.features]}
    for row in rows:
        at = periods.key(row.get(time_column))
        if at is not None:
            known.setdefault(at, []).append(row)
    before = periods.previous([rows[i].get(time_column) for i in todo])
    out = list(rows)
    errors: list[dict[str, Any]] = []
    for i in todo:
        row, filled = rows[i], dict(rows[i])
        at = periods.key(row.get(time_column))
        candidates = known.get(before.get(at), [])
        for name, col in names.items():
            if name in row:
                continue
            values = {_number(c[col]) for c in candidates if col in c}
            prev = next((c for c in candidates if col in c), None) if len(values) < 2 else None
            off = at is None or at not in before  # no time of the series, or none before it
            why = _why_unknown(row, col, name, time_column, prev, history.time, off)
            if off and why and periods.dated:  # a date of the other kind: say which
                why += timekeys.zone_hint(row.get(time_column), periods.aware, plan.timezone)
            if len(values) > 1:  # two rows of that period: which one is the row before?
                why = (
                    f"'{name}' needs '{col}' of the period before {row[time_column]!r}, which "
                    f"has {len(values)} values (rows of the request, or the model's last row): "
                    f"send '{name}'"
                )
            if why:
                errors.append(problem(where[i], name if col in row else col, why))
                continue
            assert prev is not None
            filled[name] = _number(row[col]) - _number(prev[col])
        out[i] = filled
    return out, errors


def _why_unknown(
    row: Mapping[str, Any],
    col: str,
    name: str,
    time_column: str,
    prev: Mapping[str, Any] | None,
    last_time: Any,
    off_steps: bool = False,
) -> str:
    """Why ``name`` of ``row`` cannot be derived, or ``""`` when it can. A missing value
    (``null``) of the source is a value: the change is then missing too, as a forecast's is
    when its ``future`` leaves the price out, and the model takes it as it takes any missing
    feature (the source's own cell is checked as any feature's is)."""
    if col not in row:
        return f"'{name}' is derived from feature '{col}': send '{col}' in the row, or '{name}'"
    if row.get(time_column) is None:
        return f"'{name}' needs the row's time ('{time_column}') to find the period before it"
    if off_steps:
        return (
            f"'{name}' needs the period before the row's time, and {row[time_column]!r} is not "
            f"a time of this series or has no period before it (its last time is "
            f"{last_time}): send '{name}'"
        )
    if prev is None or col not in prev:
        return (
            f"'{name}' needs '{col}' of the period before {row[time_column]!r}: send that "
            f"period's row in the same request (the model's last time is {last_time}), "
            f"or send '{name}'"
        )
    return ""


class _Periods:
    """Times as period keys, and the period before each: ns since the epoch for dates (the
    period before found by ``timefeatures.retreat``, the forecast's own walk taken back), the
    count of steps from the history's last time for numbers (so 0.1-steps match whatever
    float rounding the times carry). A time that reads as no time — NaT, infinite, a number
    between steps — has no key; one from which no period steps back (the 16th of a series of
    15ths, a Saturday of business days) has no period before it. Either way its change stays
    unknown. Days, hours and minutes are fixed steps: a time of day other than the series'
    still has the period before it, a step earlier."""

    def __init__(
        self, frequency: Any, zone: str | None, origin: Any, holidays: Sequence[str] = ()
    ) -> None:
        self.frequency, self.zone, self.holidays = frequency, zone, holidays
        self.dated = isinstance(frequency, str)
        # the clock the series steps on (its zone, else the offset its last time was written
        # with): its times carry an offset exactly when it has one
        self.clock = timekeys.series_clock(zone, origin)
        self.aware = self.clock is not None
        self.origin = None if self.dated else timekeys.time_key(origin, frequency)

    def key(self, value: Any) -> Any:
        t = next_periods.time_key(value, self.frequency, self.aware)
        if t is None or self.dated:
            return t
        if self.origin is None or not np.isfinite(t):
            return None
        steps = (t - self.origin) / float(self.frequency)
        n = round(steps) if abs(steps) < 2**52 else None
        return n if n is not None and abs(steps - n) < 1e-6 else None

    def previous(self, times: Sequence[Any]) -> dict[Any, Any]:
        """``{key of a time: key of the period before it}`` for those of ``times`` that have
        one: one vectorised step back over their keys, or one per time when that fails."""
        keys = tuple(dict.fromkeys(k for t in times if (k := self.key(t)) is not None))
        if not self.dated:
            return {k: k - 1 for k in keys}
        off = tuple(self.holidays)
        return dict(_previous(keys, self.frequency, self.zone, off, self.aware, self.clock))


@lru_cache(maxsize=4096)
def _previous(
    keys: tuple[Any, ...], frequency: Any, zone: str | None, off: tuple[str, ...],
    aware: bool, clock: Any,
) -> tuple[tuple[Any, Any], ...]:  # fmt: skip
    """``_Periods.previous`` of dates, once per distinct (keys, series' calendar): a score
    table's partitions repeat the same few dates, and stepping back (pandas' offsets) cost
    ~1.1 ms of the ~1.4 ms a partition its changes took."""
    stamps = [pd.Timestamp(k, unit="ns", tz="UTC" if aware else None) for k in keys]
    if clock is not None:
        stamps = [stamp.tz_convert(clock) for stamp in stamps]
    try:
        back = list(timefeatures.retreat(stamps, frequency, zone, off))
    except _UNSTEPPABLE:
        back = [_back(stamp, frequency, zone, off) for stamp in stamps]
    return tuple(
        (k, timekeys.time_key(b, frequency))  # our own times: of the series' kind
        for k, b in zip(keys, back, strict=True)
        if b is not None and not pd.isna(b)
    )


def _back(stamp: pd.Timestamp, frequency: Any, zone: str | None, off: tuple[str, ...]) -> Any:
    try:
        return timefeatures.retreat([stamp], frequency, zone, off)[0]
    except _UNSTEPPABLE:
        return None


_UNSTEPPABLE = (TypeError, ValueError, OverflowError, NotImplementedError)
"""What pandas raises for a time it cannot step (out of its range, a year before 1)."""
