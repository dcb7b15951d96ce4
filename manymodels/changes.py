"""Changes of exogenous features as features: ``changes = ["price"]`` derives ``price_change``,
each row's price minus the price one row earlier in its time-sorted partition. One module for
training, forecasting, batch scoring and the router, as ``lagfeatures`` is for target lags.

Why a feature of its own: a model of a differenced target (``target_transform =
"difference"``) predicts each period's change, and what moves a change is a change — a price
rise lowers the sales from where they were, whatever the price's level. A regression with
ARIMA errors (statsforecast's ``AutoARIMA`` with exogenous columns) differences its regressors
with the series for this reason; mlforecast leaves it to the user (``transform_exog`` gives
lags, not changes). Given the price and its lag as two features instead, a linear model must
learn two coefficients that cancel, and on short series it learns them badly
(benchmarks/README.md, #12).

Where the previous value comes from:

* training — the row before in the partition (rows, as lags count them: periods of a regular
  series); a partition's first row has no change and is not trained on (``undefined_lags``);
* forecasting — step 1 follows the version's last training row, whose features its history
  records (``history["features"]``); step ``s`` follows step ``s - 1`` of the same forecast;
* a row scored by time (``/predict``, ``score``, ``LoadedModel.predict``) that leaves the change
  out — the row of the period before it in the same request, or the history for the period
  right after the version's last time; anything else is refused, naming the row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from manymodels import timefeatures
from manymodels.exceptions import DataError
from manymodels.partition import PartitionedTable


def recorded(schema: Mapping[str, Any]) -> dict[str, str]:
    """``{derived feature: its source feature}`` a version recorded (empty for most)."""
    plan = schema.get("forecast")
    return dict(plan.get("changes") or {}) if isinstance(plan, Mapping) else {}


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
    for name in columns.values():
        if name not in table.features:
            raise DataError(f"{source}: changes names '{name}', which is not a feature column")
        if name in table.categorical:
            raise DataError(
                f"{source}: changes names '{name}', a column of text; a change needs numbers"
            )
    first = np.zeros(table.n_rows, dtype=bool)
    first[(table.offsets[:-1] - table.offsets[0])[np.diff(table.offsets) > 0]] = True
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
    schemas: Sequence[Mapping[str, Any]],
    horizon: int,
) -> None:
    """Each partition's change columns of its ``horizon`` steps (partition-major), from the
    steps' own source columns and each partition's last recorded value before step 1."""
    wanted: dict[str, str] = {}
    for schema in schemas:
        wanted.update(recorded(schema))
    for name, col in wanted.items():
        if col not in columns:
            continue
        last = [_number(s["history"]["features"].get(col)) for s in schemas]
        steps = np.asarray(columns[col], dtype=np.float64).reshape(len(schemas), horizon)
        before = np.column_stack([np.array(last, dtype=np.float64), steps[:, :-1]])
        columns[name] = (steps - before).ravel()


def _number(value: Any) -> float:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return np.nan
    return float(value)


# --------------------------------------------------------------------------------------------
# rows scored by time
# --------------------------------------------------------------------------------------------
def missing(rows: Sequence[Mapping[str, Any]], schema: Mapping[str, Any]) -> bool:
    """Whether some row leaves out a change its version could derive."""
    names = recorded(schema)
    return bool(names) and "history" in schema and any(n not in r for r in rows for n in names)


def fill_rows(
    rows: Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any],
    where: Sequence[int],
) -> tuple[list[Mapping[str, Any]], list[dict[str, Any]]]:
    """``rows`` with the changes they leave out, and a problem (FastAPI's shape) for each row
    whose change cannot be known: no time, no value of the source, or no value of the period
    before it (see the module)."""
    names = recorded(schema)
    history = schema.get("history") or {}
    time_column = str(schema.get("time_column"))
    plan = schema.get("forecast") or {}
    frequency, zone = plan.get("frequency"), plan.get("timezone")
    todo = [i for i, row in enumerate(rows) if any(n not in row for n in names)]
    if not todo or frequency is None or history.get("time") is None:
        return list(rows), []
    # period key → the source values known for it: the history's last row, and each row's own
    known: dict[Any, Mapping[str, Any]] = {_key(history["time"], frequency): history["features"]}
    for row in rows:
        at = _key(row.get(time_column), frequency)
        if at is not None:
            known.setdefault(at, row)
    times = [rows[i].get(time_column) for i in todo]
    readable = [t for t in times if _key(t, frequency) is not None]
    before = _previous_keys(readable, frequency, zone)
    out = list(rows)
    errors: list[dict[str, Any]] = []
    for i, t in zip(todo, times, strict=True):
        row, filled = rows[i], dict(rows[i])
        for name, col in names.items():
            if name in row:
                continue
            prev = known.get(before.get(_key(t, frequency)))
            why = _why_unknown(row, col, name, time_column, prev, history)
            if why:
                errors.append(_problem(where[i], name if col in row else col, why))
                continue
            assert prev is not None
            filled[name] = float(row[col]) - float(prev[col])
        out[i] = filled
    return out, errors


def _why_unknown(
    row: Mapping[str, Any],
    col: str,
    name: str,
    time_column: str,
    prev: Mapping[str, Any] | None,
    history: Mapping[str, Any],
) -> str:
    """Why ``name`` of ``row`` cannot be derived, or ``""`` when it can."""
    if not _is_number(row.get(col)):
        return (
            f"'{name}' is derived from feature '{col}': send '{col}' as a number in the row, "
            f"or send '{name}'"
        )
    if time_column not in row:
        return f"'{name}' needs the row's time ('{time_column}') to find the period before it"
    if prev is None or not _is_number(prev.get(col)):
        return (
            f"'{name}' needs '{col}' of the period before {row[time_column]!r}: send that "
            f"period's row in the same request (the model's last time is {history['time']}), "
            f"or send '{name}'"
        )
    return ""


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return False
    return bool(np.isfinite(float(value)))


def _key(value: Any, frequency: Any) -> Any:
    """A time as a comparable key (ns since the epoch for dates, a float for periods), or
    ``None`` when it does not read as one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(frequency, str):
            return pd.Timestamp(value).as_unit("ns").value
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _previous_keys(times: Sequence[Any], frequency: Any, zone: str | None) -> dict[Any, Any]:
    """``{key of a time: key of the period before it}``. The period before ``t`` is the time
    whose next period is ``t``: each distinct time's predecessor is found by stepping back one
    period and checking that the step forward (``timefeatures.advance``, the forecast's own
    walk) lands on ``t`` again; a time off the series' steps gets none."""
    distinct = list(dict.fromkeys(times))
    if not isinstance(frequency, str):
        return {float(t): float(t) - float(frequency) for t in distinct}
    out: dict[Any, Any] = {}
    for t in distinct:
        try:
            back = _back_one(t, frequency, zone)
            forward = timefeatures.advance([back.isoformat()], frequency, 1, zone)[0]
            if pd.Timestamp(forward).as_unit("ns").value == _key(t, frequency):
                out[_key(t, frequency)] = back.as_unit("ns").value
        except (TypeError, ValueError, OverflowError):
            continue  # a time of another zone or kind: its change stays unknown
    return out


def _back_one(value: Any, frequency: str, zone: str | None) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if zone:
        stamp = (stamp.tz_localize("UTC") if stamp.tz is None else stamp).tz_convert(zone)
    anchor, plus, days = frequency.partition("+")
    step = pd.tseries.frequencies.to_offset(anchor)
    if stamp.tz is not None and isinstance(step, pd.offsets.Day):
        step = pd.DateOffset(days=step.n)
    if plus:  # "MS+14D": month starts, 14 days on
        within = pd.DateOffset(days=int(days.removesuffix("D")))
        return pd.Timestamp((stamp - within) - step + within)
    return pd.Timestamp(stamp - step)


def _problem(row: int, column: str, msg: str) -> dict[str, Any]:
    return {"loc": ["body", "rows", row, column], "msg": msg, "type": "value_error"}
