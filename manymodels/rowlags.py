"""Lags at serve time: a row sent to ``/predict`` (or ``LoadedModel.predict``) may leave out the
features training derived — target lags, rolling statistics, calendar parts — and give its
time instead. They are then computed from the version's recorded history
(``FeatureSchema.history``: its last time and last ``LagPlan.depth`` targets) with
``lagfeatures.step_features``, the code training and forecasting use, so a row ``s`` periods
after the version's last time gets exactly the features its forecast step ``s`` would.

Rows that carry the target (posted actuals, with their time) extend that history for the other
rows of the same request, and only for them. A row whose missing lag reaches past what is known
(a lag shorter than its step, and no row posting the target it needs) or whose time is not one
of the next periods is refused with a problem naming the row and the feature or time, never
filled with NaN; so is a row that leaves one out and gives no time, naming the time column.
Rows that carry every derived feature are passed through untouched. Feature
changes (``changes = ["price"]``) are filled first, by ``manymodels.changes``. A ``score``
table's rows that leave out their lags are filled here too, a partition at a time
(``scoring.lag_columns``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from manymodels import changes, next_periods, timefeatures, timekeys
from manymodels.exceptions import InvalidRows, problem
from manymodels.feature_schema import FeatureSchema, History
from manymodels.lagfeatures import LagPlan, TargetTransform, step_features


def derived_missing(rows: Sequence[Mapping[str, Any]], schema: FeatureSchema) -> bool:
    """Whether some row lacks a derived feature that its version could compute (the router
    asks per batch: the plan's names read as they are, no ``LagPlan`` built)."""
    if schema.forecast is None:
        return False
    # without a history of its own (the fallback, a model of every partition) only the
    # calendar parts can be computed: they are the row's time's own; a lag or rolling
    # statistic it lacks is refused there, saying why (``_calendar_rows``)
    forecast = schema.forecast
    derived = (forecast.derived if schema.history is not None
               else [*forecast.calendar, *forecast.lags, *forecast.rolling])  # fmt: skip
    return bool(derived) and any(name not in row for row in rows for name in derived)


def _derived(schema: FeatureSchema) -> list[str]:
    plan = LagPlan.from_schema(schema)
    return [*plan.columns, *(name for name, _ in plan.calendar)]


def fill_rows(
    rows: Sequence[Mapping[str, Any]],
    schema: FeatureSchema,
    positions: Sequence[int] | None = None,
    *,
    with_changes: bool = True,
) -> list[Mapping[str, Any]]:
    """``rows`` with their missing derived features computed from the time column and the
    version's history, extended by the targets that rows of this request carry (posted
    actuals), and (``with_changes``) their feature changes (``manymodels.changes``). Raises
    ``InvalidRows`` for rows it cannot fill (see the module)."""
    where = positions if positions is not None else range(len(rows))
    errors: list[dict[str, Any]] = []
    if with_changes and changes.missing(rows, schema):
        rows, errors = changes.fill_rows(rows, schema, where)
    plan = LagPlan.from_schema(schema)
    if schema.history is None:
        return _calendar_rows(rows, schema, plan, where, errors)
    derived = _derived(schema)
    if not any(name not in row for row in rows for name in derived):  # changes were all
        if errors:
            raise InvalidRows(errors)
        return list(rows)
    history, forecast = schema.history, schema.forecast
    assert history is not None and forecast is not None  # derived names come from both
    time_column, target = str(schema.time_column), str(schema.target)
    frequency = forecast.frequency
    recent = np.array([np.nan if v is None else float(v) for v in history.target])
    reach = max(plan.depth, 1) + sum(1 for row in rows if target in row)
    if frequency is None:  # no partition had two distinct times when it trained
        why = (
            "the model's time step is unknown (no partition had two distinct times when it "
            "trained): send the derived features in the row"
        )
        errors += [problem(where[i], time_column, why) for i, row in enumerate(rows)
                   if time_column in row and any(n not in row for n in derived)]  # fmt: skip
        if errors:
            raise InvalidRows(errors)
        return list(rows)
    zone = forecast.timezone
    clock = timekeys.series_clock(zone, history.time)
    aware = clock is not None
    off = forecast.holidays
    upcoming = next_periods.upcoming(history.time, frequency, reach, zone, off)
    steps = [next_periods.step(row[time_column], upcoming, frequency, aware)
             if time_column in row else None for row in rows]  # fmt: skip
    posted, twice = _posted(rows, steps, target, history, reach)
    out: list[Mapping[str, Any]] = []
    for i, (row, step) in enumerate(zip(rows, steps, strict=True)):
        missing = [name for name in derived if name not in row]
        if not missing:
            out.append(row)  # complete: checked as a plain row
            continue
        if row.get(time_column) is None:  # was "feature 'y_lag1' is missing" (or, for a
            # null time, "'t' None is not one of the periods"): the time was what it lacked
            errors.append(problem(where[i], time_column, _no_time(time_column, missing)))
            out.append(row)
            continue
        if step is None:
            if timekeys.not_iso(row[time_column]):
                errors.append(problem(where[i], time_column, _not_iso(row, time_column)))
                out.append(row)
                continue
            a_time = timekeys.time_key(row[time_column], frequency, aware) is not None
            calendar_only = not any(n in plan.lag_columns or n in plan.rolling_columns
                                    for n in missing)  # fmt: skip
            if a_time and calendar_only:
                # calendar parts only: they are the time's own, however far ahead it is
                parts = _calendar(row[time_column], plan, missing, frequency, clock)
                out.append({**row, **parts})
                continue
            # a model without lags was told of "the periods … that its lags reach" for a time
            # given without (or with) the UTC offset its series' times have
            why = (_no_calendar(row, time_column) if calendar_only
                   else _not_next(row, time_column, history))  # fmt: skip
            if isinstance(frequency, str):
                why += timekeys.zone_hint(row[time_column], aware, zone)
            errors.append(problem(where[i], time_column, why))
            out.append(row)
            continue
        lags = {name: k for name, k in plan.lag_columns.items() if name in missing}
        windows = {name: r for name, r in plan.rolling_columns.items() if name in missing}
        reads = {name: range(step - k, step - k + 1) for name, k in lags.items()}
        reads |= {name: range(step - r.depth, step - r.lag + 1) for name, r in windows.items()}
        unknown = [(name, t) for name, span in reads.items() for t in span
                   if t >= 1 and not np.isfinite(posted[t - 1])]  # fmt: skip
        for name, t in dict(unknown).items():
            twice_why = _twice(name, t, twice[t], history) if t in twice else None
            errors.append(problem(where[i], name, twice_why or _unseen(name, step, t, history)))
        if unknown:
            out.append(row)
            continue
        filled = dict(row)
        filled.update(_calendar(row[time_column], plan, missing, frequency, clock))
        sub = LagPlan(plan.target, tuple(lags.values()), tuple(windows.values()))
        extended = np.concatenate([recent, posted[: step - 1]])
        values = step_features(extended, sub, 1)[0]
        for name, v in zip(sub.columns, values.tolist(), strict=True):
            filled[name] = None if np.isnan(v) else v
        out.append(filled)
    if errors:
        raise InvalidRows(errors)
    return out


def previous_targets(
    rows: Sequence[Mapping[str, Any]],
    schema: FeatureSchema,
    positions: Sequence[int] | None = None,
) -> np.ndarray:
    """Each row's previous target, as given (not transformed): what a ``difference`` model's
    predicted change is added to. A row gives its time; the row one period after the
    version's last time follows its recorded last target, a later one the target another row
    of the same request posts for the period before it. Raises ``InvalidRows`` naming every
    row whose previous target is not known (no time, a time that is not one of the next
    periods, or the period before it not posted)."""
    history, forecast = schema.history, schema.forecast
    last_time = history.time if history is not None else None
    recorded = schema.transform or {}
    time_column, target = schema.time_column, str(schema.target)
    where = positions if positions is not None else range(len(rows))
    frequency = forecast.frequency if forecast is not None else None
    steps: list[int | None] = [None] * len(rows)
    reach = len(rows) + 1
    zone = forecast.timezone if forecast is not None else None
    aware = timekeys.series_clock(zone, last_time) is not None
    if time_column and last_time is not None and frequency is not None:
        off = forecast.holidays if forecast is not None else ()
        upcoming = next_periods.upcoming(last_time, frequency, reach, zone, off)
        steps = [next_periods.step(row[time_column], upcoming, frequency, aware)
                 if time_column in row else None for row in rows]  # fmt: skip
    known = np.full(reach + 1, np.nan)  # known[s]: the target of period s after the last time
    if recorded.get("last") is not None:
        known[0] = float(recorded["last"])
    by_step, twice = _targets_by_step(rows, steps, target)
    for at, value in by_step.items():
        known[at] = value
    out = np.full(len(rows), np.nan)
    errors: list[dict[str, Any]] = []
    for i, (row, step) in enumerate(zip(rows, steps, strict=True)):
        if step is not None and np.isfinite(known[step - 1]):
            out[i] = known[step - 1]
            continue
        given = bool(time_column) and str(time_column) in row
        why = _no_previous(given, step, last_time)
        if step is not None and step - 1 in twice:
            why = _twice(target, step - 1, twice[step - 1], history) or why
        if given and step is None and isinstance(frequency, str):
            why += timekeys.zone_hint(row[str(time_column)], aware, zone)
        errors.append(problem(where[i], str(time_column), why))
    if errors:
        raise InvalidRows(errors)
    return out


def _no_previous(given: bool, step: int | None, last: Any) -> str:
    why = "the model predicts the change from the previous period's target (target_transform "
    why += "= 'difference'), "
    if not given:
        return why + (
            f"so the row must give its time, one of the periods after the model's last time "
            f"({last})"
        )
    if step is None:
        return why + (
            f"and the target of the period before this row's is not known (the model's last "
            f"time is {last}): post each period's target since then in the request"
        )
    return why + (
        f"and the target of period {step - 1} after the model's last time ({last}) is not "
        "known: post it in an earlier row of the request"
    )


def _targets_by_step(
    rows: Sequence[Mapping[str, Any]], steps: Sequence[int | None], target: str
) -> tuple[dict[int, float], dict[int, int]]:
    """The target posted for each period after the model's last time (``{step: value}``), and
    the periods that rows post different targets for (``{step: how many values}``): those are
    left out, as two rows of a partition at one time are refused in training, rather than
    the request's last row taken for the truth (``changes`` refuses two values of a feature
    in one period alike)."""
    seen: dict[int, set[float]] = {}
    for row, step in zip(rows, steps, strict=True):
        value = row.get(target)
        if step is not None and isinstance(value, int | float) and not isinstance(value, bool):
            seen.setdefault(step, set()).add(float(value))
    known = {step: next(iter(v)) for step, v in seen.items() if len(v) == 1}
    return known, {step: len(v) for step, v in seen.items() if len(v) > 1}


def _posted(
    rows: Sequence[Mapping[str, Any]],
    steps: Sequence[int | None],
    target: str,
    history: History,
    reach: int,
) -> tuple[np.ndarray, dict[int, int]]:
    """The targets rows carry for the next ``reach`` periods (NaN where none, or where rows
    post different ones: the second value), in the units the model's lags are in (the
    version's target transform applied)."""
    raw = np.full(reach + 1, np.nan)
    recorded = history.transform or {}
    if recorded.get("last") is not None:
        raw[0] = float(recorded["last"])
    known, twice = _targets_by_step(rows, steps, target)
    for step, value in known.items():
        raw[step] = value
    return TargetTransform.from_json(recorded or None).apply(raw)[1:], twice


def _twice(name: str, needed: int, values: int, history: History | None) -> str | None:
    """Why ``name`` is not known when rows post ``values`` different targets for the period
    ``needed`` after the model's last time (``None`` for the period of the last time itself,
    which the history holds)."""
    if needed < 1:
        return None
    last = history.time if history is not None else None
    return (
        f"'{name}' needs the target of period {needed} after the model's last time ({last}), "
        f"and rows of the request post {values} different targets for it: post one"
    )


UNSEEN_TARGET = "which the model has not seen"
"""The words of a lag that needs a target neither the history nor the rows hold: ``score``
adds its own hint to them (a table of future periods is a forecast's ``--future``)."""


def _unseen(name: str, step: int, needed: int, history: History) -> str:
    return (
        f"'{name}' of a row {step} period(s) after the model's last time ({history.time}) "
        f"needs the target of period {needed} after it, {UNSEEN_TARGET}: post "
        f"that period's target in an earlier row, or send '{name}' in the row"
    )


def _calendar_rows(
    rows: Sequence[Mapping[str, Any]],
    schema: FeatureSchema,
    plan: LagPlan,
    where: Sequence[int],
    errors: list[dict[str, Any]],
) -> list[Mapping[str, Any]]:
    """``rows`` with the calendar parts they leave out, for a version without a history of
    its own (the fallback, fitted on every partition's rows): its calendar parts are the
    row's time's own, as for any version; a lag or rolling statistic it cannot know and
    the row leaves out is refused, saying that this model has no series to read it from. A
    date of the other kind than the series' — with a UTC offset where its times have none,
    or without where they have one — is refused, as a partition's own version refuses it
    (``timekeys.time_key``)."""
    forecast = schema.forecast
    assert forecast is not None  # derived_missing asked for calendar parts
    time_column = str(schema.time_column)
    calendar = [name for name, _ in plan.calendar]
    clock = timekeys.series_clock(forecast.timezone, None)
    dated = isinstance(forecast.frequency, str)
    out: list[Mapping[str, Any]] = []
    for i, row in enumerate(rows):
        # was "feature 'y_lag1' is missing" alone, though the row gave its time: a sender
        # whose key has no model of its own could not tell why the time did not do
        errors += [problem(where[i], name, _no_series(name), "missing")
                   for name in plan.columns if name not in row]  # fmt: skip
        missing = [name for name in calendar if name not in row]
        value = row.get(time_column)
        if missing and value is None:  # said as a partition's row hears it, in the same 422
            # as its lags: it was "feature 't_day_of_week' is missing" after the lag was sent
            errors.append(problem(where[i], time_column, _no_time(time_column, missing)))
        if not missing or value is None:
            out.append(row)  # complete, or without a time: checked as a plain row
            continue
        stamp = None
        if not isinstance(value, bool | int | float | np.number):  # a number is no date
            try:
                stamp = timekeys.read_time(value)
            except (TypeError, ValueError, OverflowError):
                stamp = None
        if stamp is None or stamp is pd.NaT:
            why = (
                _not_iso(row, time_column)
                if timekeys.not_iso(value)
                else f"'{time_column}' {value!r} is not a date"
            )
            errors.append(problem(where[i], time_column, why))
            out.append(row)
            continue
        hint = timekeys.zone_hint(value, clock is not None, forecast.timezone) if dated else ""
        if hint:  # "; the model's times …": of the other kind
            errors.append(problem(where[i], time_column, f"'{time_column}' {value!r}:{hint[1:]}"))
            out.append(row)
            continue
        out.append({**row, **_calendar(value, plan, missing, forecast.frequency, clock)})
    if errors:
        raise InvalidRows(errors)
    return out


def _no_series(name: str) -> str:
    return (
        f"feature '{name}' is missing, and the model that answers this row has no series of "
        "its own to compute it from (the fallback, which answers a key without a model, was "
        f"fitted on every partition's rows): send '{name}' in the row"
    )


def _no_time(time_column: str, missing: Sequence[str]) -> str:
    shown, verb, these = (
        ", ".join(map(repr, missing)),
        "is" if len(missing) == 1 else "are",
        ("this feature" if len(missing) == 1 else "these features"),
    )
    return (
        f"the row has no '{time_column}', and its {shown} {verb} computed from it: send its "
        f"'{time_column}', or {these}"
    )


def _not_iso(row: Mapping[str, Any], time_column: str) -> str:
    return (
        f"'{time_column}' {row[time_column]!r} is not an ISO 8601 date (2024-04-11, "
        "2024-04-11T10:00): the model's times were read as ISO 8601, as training reads a "
        "table's"
    )


def _calendar(
    value: Any, plan: LagPlan, missing: list[str], frequency: Any, clock: Any
) -> dict[str, Any]:
    """The calendar parts ``missing`` of a row's time, read on the series' ``clock`` (its
    zone, or for a version from before zones were recorded the offset its last time was
    written with): a time given at another offset (UTC, say) is the same instant, and its
    day or hour is the series', as training and forecasting read them."""
    wanted = [(name, part) for name, part in plan.calendar if name in missing]
    if not wanted or not isinstance(frequency, str):
        return {}
    stamp = timekeys.read_time(value)
    if clock is not None and stamp.tzinfo is not None:
        stamp = stamp.tz_convert(clock)
    parts = timefeatures.calendar_values(pd.DatetimeIndex([stamp]), [p for _, p in wanted])
    return {name: int(parts[part][0]) for name, part in wanted}


def _no_calendar(row: Mapping[str, Any], time_column: str) -> str:
    return (
        f"'{time_column}' {row[time_column]!r} is not a time of the model's series, which its "
        "calendar features are read from"
    )


def _not_next(row: Mapping[str, Any], time_column: str, history: History) -> str:
    return (
        f"'{time_column}' {row[time_column]!r} is not one of the periods after the model's last "
        f"time ({history.time}) that its lags reach: send the derived features in the row"
    )
