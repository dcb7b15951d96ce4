"""Lags at serve time: a row sent to ``/predict`` (or ``LoadedModel.predict``) may leave out the
features training derived — target lags, rolling statistics, calendar parts — and give its
time instead. They are then computed from the version's recorded history
(``feature_schema["history"]``: its last time and last ``LagPlan.depth`` targets) with
``lagfeatures.step_features``, the code training and forecasting use, so a row ``s`` periods
after the version's last time gets exactly the features its forecast step ``s`` would.

A row whose missing lag reaches past the history (a lag shorter than its step: the target it
needs is not known) or whose time is not one of the next periods is refused with a problem
naming the row and the lag or time, never filled with NaN. Rows that carry every derived
feature are passed through untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from manymodels import timefeatures
from manymodels.exceptions import InvalidRows
from manymodels.lagfeatures import LagPlan, step_features


def derived_missing(rows: Sequence[Mapping[str, Any]], schema: Mapping[str, Any]) -> bool:
    """Whether some row lacks a derived feature that its version could compute."""
    if "forecast" not in schema or "history" not in schema:
        return False
    derived = _derived(schema)
    return bool(derived) and any(name not in row for row in rows for name in derived)


def _derived(schema: Mapping[str, Any]) -> list[str]:
    plan = LagPlan.from_schema(schema)
    return [*plan.columns, *(name for name, _ in plan.calendar)]


def fill_rows(
    rows: Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any],
    positions: Sequence[int] | None = None,
) -> list[Mapping[str, Any]]:
    """``rows`` with their missing derived features computed from the time column and the
    version's history. Raises ``InvalidRows`` for rows it cannot fill (see the module)."""
    plan = LagPlan.from_schema(schema)
    derived = _derived(schema)
    time_column = str(schema["time_column"])
    where = positions if positions is not None else range(len(rows))
    history = schema["history"]
    frequency = schema["forecast"]["frequency"]
    recent = np.array([[np.nan if v is None else float(v) for v in history["target"]]])
    reach = max(plan.depth, 1)
    upcoming = _as_keys(timefeatures.advance([history["time"]], frequency, reach))
    errors: list[dict[str, Any]] = []
    out: list[Mapping[str, Any]] = []
    for i, row in enumerate(rows):
        missing = [name for name in derived if name not in row]
        if not missing or time_column not in row:
            out.append(row)  # complete, or without a time: checked as a plain row
            continue
        step = _step(row[time_column], upcoming, frequency)
        if step is None:
            errors.append(_problem(where[i], time_column, _not_next(row, time_column, history)))
            out.append(row)
            continue
        filled = dict(row)
        filled.update(_calendar(row[time_column], plan, missing, frequency))
        lags = {name: k for name, k in plan.lag_columns.items() if name in missing}
        windows = {name: r for name, r in plan.rolling_columns.items() if name in missing}
        late = [(n, k) for n, k in lags.items() if k < step]
        late += [(n, r.lag) for n, r in windows.items() if r.lag < step]
        for name, k in late:
            errors.append(
                _problem(
                    where[i],
                    name,
                    f"lag {k} of a row {step} period(s) after the model's last time "
                    f"({history['time']}) needs a target the model has not seen: send "
                    f"'{name}' in the row",
                )
            )
        if late:
            out.append(row)
            continue
        sub = LagPlan(plan.target, tuple(lags.values()), tuple(windows.values()))
        values = step_features(recent, sub, step)[0]
        for name, v in zip(sub.columns, values.tolist(), strict=True):
            filled[name] = None if np.isnan(v) else v
        out.append(filled)
    if errors:
        raise InvalidRows(errors)
    return out


def _as_keys(times: Any) -> list[Any]:
    if isinstance(times, pd.DatetimeIndex):
        return [t.value for t in times.as_unit("ns")]
    return [float(t) for t in np.asarray(times, dtype=np.float64)]


def _step(value: Any, upcoming: list[Any], frequency: Any) -> int | None:
    """Which of the next periods ``value`` is (1-based), or ``None``."""
    try:
        if isinstance(frequency, str):
            key: Any = pd.Timestamp(value).as_unit("ns").value
        else:
            key = float(value)
    except (TypeError, ValueError):
        return None
    return upcoming.index(key) + 1 if key in upcoming else None


def _calendar(value: Any, plan: LagPlan, missing: list[str], frequency: Any) -> dict[str, Any]:
    wanted = [(name, part) for name, part in plan.calendar if name in missing]
    if not wanted or not isinstance(frequency, str):
        return {}
    parts = timefeatures.calendar_values(
        pd.DatetimeIndex([pd.Timestamp(value)]), [p for _, p in wanted]
    )
    return {name: int(parts[part][0]) for name, part in wanted}


def _not_next(row: Mapping[str, Any], time_column: str, history: Mapping[str, Any]) -> str:
    return (
        f"'{time_column}' {row[time_column]!r} is not one of the periods after the model's last "
        f"time ({history['time']}) that its lags reach: send the derived features in the row"
    )


def _problem(row: int, column: str, msg: str) -> dict[str, Any]:
    return {"loc": ["body", "rows", row, column], "msg": msg, "type": "value_error"}
