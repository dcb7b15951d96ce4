"""What a version records about its inputs, so scoring rows can be checked and forecasts start
from the right place: the feature schema and, with a time column, the partition's history."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from manymodels.feature_schema import FeatureSchema
from manymodels.lagfeatures import LagPlan, fit_transforms
from manymodels.partition import PartitionedTable
from manymodels.spec import Spec
from manymodels.timefeatures import time_to_json, time_zone
from manymodels.weekdays import takes_holidays


def feature_schema(table: PartitionedTable, spec: Spec) -> dict[str, Any]:
    """What scoring rows are validated against later.

    With a time column, ``forecast`` adds what forecasting needs of every partition: the
    table's ``frequency``, the derived ``calendar``, ``lags``, ``rolling`` and ``changes``
    columns (name → part / lag / ``{lag, window, stat}`` / source feature) and the
    ``exogenous`` features (the others); each
    partition's version then also records its ``history`` (see ``partition_history``)."""
    schema: dict[str, Any] = {
        "features": table.features,
        "dtypes": table.feature_dtypes,
        "categorical": table.categorical,
        "input": "dataframe" if table.categorical else "numpy",
        "target": spec.target,
        "task": spec.task,
        "partition_by": spec.partition_by,
        "time_column": spec.time_column,
    }
    if spec.time_column:
        derived = set(spec.derived_columns)
        schema["forecast"] = {
            "frequency": table.extra.get("frequency"),
            "calendar": spec.calendar_columns,
            "lags": spec.lag_columns,
            "exogenous": [f for f in table.features if f not in derived],
        }
        zone = time_zone(table.time) if table.time is not None else None
        if zone is not None:  # left out otherwise: versions without a zone read as before
            schema["forecast"]["timezone"] = zone
        if spec.transform != "none":
            schema["forecast"]["transform"] = {"kind": spec.transform}
        if spec.holidays and takes_holidays(table.extra.get("frequency")):
            schema["forecast"]["holidays"] = spec.holidays  # left out: no business calendar
        if spec.changes:  # left out otherwise, as rolling is
            schema["forecast"]["changes"] = spec.change_columns
        if spec.rolling:  # left out otherwise: versions without rolling read as before
            schema["forecast"]["rolling"] = {
                name: r.model_dump() for name, r in spec.rolling_columns.items()
            }
    return schema


def partition_history(
    table: PartitionedTable,
    i: int,
    schema: dict[str, Any],
    key_values: dict[str, Any],
    *,
    last: int | None = None,
) -> dict[str, Any]:
    """What forecasting partition ``i`` starts from, small enough for its feature schema: its
    key values, its last time, its last ``LagPlan.depth`` targets (oldest first) and its last row
    of exogenous features.

    ``last`` is the table row of the partition's last row with a target (default: its last
    row): rows after it have none, so the forecast starts with them, and its lags are the
    targets up to that row (one left out of training for a missing feature value included)."""
    assert table.time is not None
    rows = table.rows(i)
    last = rows.stop - 1 if last is None else last
    parsed = FeatureSchema.parse(schema)
    plan = parsed.forecast
    assert plan is not None
    depth = LagPlan.from_schema(parsed).depth
    features = {f: _last_known(table, f, rows.start, last) for f in plan.exogenous}
    history = {
        "key": key_values,
        "time": time_to_json(table.time[last]),
        "target": [json_scalar(v) for v in table.y[max(rows.start, last + 1 - depth) : last + 1]],
        "features": features,
    }
    if table.raw_y is not None:  # the partition's transform, to turn forecasts back
        fitted = fit_transforms(
            table.raw_y[rows], np.array([0, rows.stop - rows.start]), plan.transform
        )
        got = fitted[1][0]
        if got.kind != "none":  # auto_difference left it as it is: a version like any other
            history["transform"] = {**got.to_json(), "last": json_scalar(table.raw_y[last])}
    return history


def _last_known(table: PartitionedTable, feature: str, start: int, last: int) -> Any:
    """A feature's value at the partition's last row, or its last known value before it:
    the first forecast step's change (``changes``) is taken from it, and a last row whose
    price is missing is read as an unchanged price (a missing one failed every forecast of a
    model that refuses NaN). ``None`` when the partition never had one."""
    if isinstance(table.X, pd.DataFrame):
        values = table.X[feature].iloc[start : last + 1]
        known = values[values.notna()]
        return json_scalar(known.iloc[-1]) if len(known) else None
    column = table.X[start : last + 1, table.features.index(feature)]
    known_at = np.flatnonzero(np.isfinite(column))
    return json_scalar(column[known_at[-1]]) if len(known_at) else None


def json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value
