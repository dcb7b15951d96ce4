"""A forecast's future steps, for many partitions at once: their times, calendar parts,
exogenous features (carried forward, or matched from a ``future`` table by key and time) and
the changes of those features (``manymodels.changes``).

Kept apart from ``manymodels.forecasting`` (which loads models and predicts) because the router's
forecast route builds the same steps from one partition's schema and posted rows; vectorised
over partitions, so a batch of 10,000 costs one merge, not 10,000.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from manymodels import changes, timefeatures
from manymodels.deferred import deferred
from manymodels.exceptions import DataError, pandas_first_line
from manymodels.feature_schema import FeatureSchema, ForecastPlan, History
from manymodels.features import feature_kinds
from manymodels.forecast_formats import on_midnights
from manymodels.partition import encode_key
from manymodels.registry.entities import ModelVersion

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from manymodels.training.global_fit import GlobalModel, KeyBound

_KEY, _TIME = "__key__", "__time__"


@dataclass(frozen=True)
class Steps:
    """The future steps of a batch of partitions sharing a frequency, partition-major: rows
    ``p * horizon : (p + 1) * horizon`` belong to partition ``p``. ``columns`` hold every
    calendar and exogenous feature (float64, or objects for text); lags are filled in by
    ``forecast_partition.labelled_steps``."""

    times: Any  # DatetimeIndex for dates, numpy array for periods
    columns: dict[str, np.ndarray]
    given: np.ndarray | None = None  # which steps' exogenous values a future table gave
    source: str = "future"  # that table, for the errors naming its cells
    dates: bool = False  # every step a midnight of a table of dates: errors name dates alone


def shown_time(value: Any, dates: bool) -> str | int | float:
    """A step's time in an error as the forecast's table writes it: ``2025-03-17`` for a
    midnight when every step is one (``forecast_formats.on_midnights``), as the user's table
    and the forecast's CSV write it, not ``2025-03-17T00:00:00``; else ``time_to_json`` (a
    zone-aware time keeps its offset)."""
    if dates and isinstance(value, pd.Timestamp | np.datetime64):
        t = pd.Timestamp(value)
        if t.tz is None and t == t.normalize():
            return t.strftime("%Y-%m-%d")
    return timefeatures.time_to_json(value)


FEATURELESS = frozenset(
    {
        "manymodels.candidates.LastValueRegressor",
        "manymodels.candidates.ConstantProbabilityClassifier",
        "sklearn.dummy.DummyRegressor",
        "sklearn.dummy.DummyClassifier",
    }
)
"""Estimators (as a version records them) that read none of their features: the naive
baselines and a one-class partition's constant probabilities."""


def reads_future(item: ModelVersion | FeatureSchema, model: Any = None) -> bool:
    """Whether a partition's model reads exogenous features, which a future table's rows
    feed: not when its spec has none (lags and calendar parts only), nor when its version is
    a naive baseline (the last value, a mean, a class), whatever features its spec named. A
    future table of common dates has no rows at the steps of a partition that ended earlier;
    such a partition needs none when its model reads nothing from them. The router knows a
    partition's schema and loaded ``model``, not its record (``recorded_estimator``)."""
    schema = item.schema if isinstance(item, ModelVersion) else item
    if not _plan(schema).exogenous:
        return False
    if isinstance(item, ModelVersion):
        return item.estimator not in FEATURELESS
    return model is None or recorded_estimator(model) not in FEATURELESS


@deferred
def estimator_parts() -> tuple[
    type[Pipeline], type[GlobalModel], type[KeyBound], Callable[[Any], str]
]:
    """What ``recorded_estimator`` unwraps a model with. A loaded model has imported
    scikit-learn: a cached call here, where importing them with this module cost the router's
    start ~2 s (the forecast route imports it); the router's warm-up calls it too."""
    from sklearn.pipeline import Pipeline

    from manymodels.training.global_fit import GlobalModel, KeyBound
    from manymodels.training.select import estimator_path

    return Pipeline, GlobalModel, KeyBound, estimator_path


def recorded_estimator(model: Any) -> str:
    """The estimator a loaded model's version records, as ``FEATURELESS`` names them: a
    global model bound to the partition's key is its inner estimator's, and a pipeline (the
    one-hot encoding of keys or categories before it) its last step's, as training records
    them — ``estimator_path`` of the binding said a global DummyRegressor read x0 and x1."""
    Pipeline, GlobalModel, KeyBound, estimator_path = estimator_parts()
    if isinstance(model, KeyBound):
        model = model.model
    if isinstance(model, GlobalModel):
        model = model.estimator
    if isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return estimator_path(model)


def held_features(
    item: ModelVersion | FeatureSchema, given: set[str] | None, model: Any = None
) -> list[str]:
    """The exogenous features a forecast of one partition holds at their last known values
    for every step: all its model reads (``reads_future``) when there is no future table
    (``given`` None) or the table has no rows of it (``given``: ``future_keys``); none
    otherwise, as a table with only some of its steps is refused (``build_steps``). The one
    answer of the CLI's note, the library's ``attrs["carried"]`` and the router's
    ``carried``, which had worked it out apart: a user who expected, as statsforecast's
    ``X_df``, to be asked for future prices learns why a forecast is flat."""
    schema = item.schema if isinstance(item, ModelVersion) else item
    if not reads_future(item, model) or (given is not None and _key_of(schema) in given):
        return []
    return list(dict.fromkeys(_plan(schema).exogenous))


def future_keys(future: pd.DataFrame) -> set[str]:
    """The partitions (canonical keys) a ``future_rows.future_table`` has rows of: which of a
    forecast's partitions it covers, the others carrying their last values forward. Its key
    column is this module's to name, so the forecast asks here rather than reading it."""
    return set(pd.unique(future[_KEY]))


def build_steps(
    schemas: Sequence[ModelVersion | FeatureSchema],
    horizon: int,
    future: pd.DataFrame | None = None,
    *,
    models: Sequence[Any] = (),
) -> Steps:
    """Times, calendar parts and exogenous features of the next ``horizon`` steps of each
    partition (versions, or their feature schemas). ``future`` is a table from
    ``future_table``: its values replace the carried-forward ones where key and time match.
    ``models``: the partitions' loaded models, for feature schemas (the router's), whose
    estimator only the model tells (``reads_future``)."""
    fs, kinds, exogenous = _exogenous(schemas)
    first = _plan(fs[0])
    assert first.frequency is not None  # forecast.unforecastable refused it
    last_times = [_history(s).time for s in fs]
    times = timefeatures.advance(
        last_times, first.frequency, horizon, first.timezone, first.holidays
    )
    columns: dict[str, np.ndarray] = {}

    calendar = {name: part for s in fs for name, part in _plan(s).calendar.items()}
    if calendar:
        parts = timefeatures.calendar_values(times, sorted(set(calendar.values())))
        columns.update({name: parts[part].astype(np.float64) for name, part in calendar.items()})

    for name in exogenous:
        last = [_history(s).features.get(name) for s in fs]
        if kinds.get(name, True):
            values = np.array([np.nan if v is None else v for v in last], dtype=np.float64)
        else:
            values = np.array(last, dtype=object)
        columns[name] = np.repeat(values, horizon)

    dates = all(on_midnights(s) for s in fs)
    given = None
    if future is not None and exogenous:
        keys = np.repeat(np.array([_key_of(s) for s in fs], dtype=object), horizon)
        # a naive model reads no feature whatever its schema names
        loaded = models or [None] * len(schemas)
        reads = np.array(
            [reads_future(s, m) for s, m in zip(schemas, loaded, strict=True)], dtype=bool
        )
        given, matched = _match_future(future, keys, times, exogenous, horizon, reads, dates)
        for name in exogenous:
            columns[name] = np.where(given, matched[name], columns[name])
    changes.add_to_steps(columns, fs, horizon)
    source = future.attrs.get("source", "future") if future is not None else "future"
    return Steps(times=times, columns=columns, given=given, source=source, dates=dates)


def _exogenous(
    schemas: Sequence[ModelVersion | FeatureSchema],
) -> tuple[list[FeatureSchema], dict[str, bool], list[str]]:
    """The feature schemas, whether each feature is numeric, and the exogenous features the
    partitions' models need, in first-seen order (what the steps and the future table fill)."""
    fs = [s.schema if isinstance(s, ModelVersion) else s for s in schemas]
    kinds = {name: num for s in fs for name, num in feature_kinds(s)}
    exogenous = list(dict.fromkeys(f for s in fs for f in _plan(s).exogenous))
    return fs, kinds, exogenous


def _plan(schema: FeatureSchema) -> ForecastPlan:
    """A forecast partition's plan (``forecast.unforecastable`` refused versions without)."""
    assert schema.forecast is not None, "a version without a forecast plan is not forecast"
    return schema.forecast


def _history(schema: FeatureSchema) -> History:
    assert schema.history is not None, "a version without a history is not forecast"
    return schema.history


def _key_of(schema: FeatureSchema) -> str:
    key = _history(schema).key
    return encode_key(list(key.values()), list(key))


def _match_future(
    future: pd.DataFrame,
    keys: np.ndarray,
    times: Any,
    exogenous: Sequence[str],
    horizon: int,
    reads: np.ndarray,
    dates: bool = False,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Which steps ``future`` has a row for, and its values there (one vectorised merge).
    Only the partitions whose models read its values (``reads``) must have a row at every
    step or at none: the others' rows, or their absence, change nothing."""
    steps = pd.DataFrame({_KEY: keys, _TIME: _time_key(times)})
    source = future.attrs.get("source", "future")
    try:
        merged = steps.merge(
            future[[_KEY, _TIME, *exogenous]], on=[_KEY, _TIME], how="left", indicator=True
        )
    except (ValueError, TypeError) as e:  # zone-aware times against naive ones
        ours, theirs = (getattr(getattr(c, "dtype", None), "tz", None) for c in
                        (steps[_TIME], future[_TIME]))  # fmt: skip
        if (ours is None) != (theirs is None):
            first = pd.Timestamp(steps[_TIME].iloc[0]).isoformat() if len(steps) else ""
            raise DataError(
                f"{source}: the forecast's times carry a time zone and its own do not: give "
                f"them with their UTC offset ({first}, one of the forecast's steps), as the "
                "training table's were"
                if ours is not None
                else f"{source}: its times carry a time zone and the forecast's do not: give "
                "them without one, as the training table's were"
            ) from None
        raise DataError(
            f"{source}: its times do not compare with the forecast's ({pandas_first_line(e)})"
        ) from None
    found = (merged["_merge"] == "both").to_numpy()
    per_partition = found.reshape(len(reads), horizon)
    partial = np.flatnonzero(per_partition.any(axis=1) & ~per_partition.all(axis=1) & reads)
    if len(partial):
        p = int(partial[0])
        missing = times[p * horizon + int(np.flatnonzero(~per_partition[p])[0])]
        raise DataError(
            f"{source}: partition '{keys[p * horizon]}' has rows for some forecast steps but not "
            f"for {shown_time(missing, dates)} (give every step of a partition, or none "
            f"of them to carry its last values forward); {len(partial)} partition(s) affected"
        )
    read = steps[np.repeat(reads, horizon)]
    _refuse_off_steps(future, read, horizon, source, dates)  # the more precise line first
    _refuse_missed_steps(future, keys, times, per_partition & reads[:, None], reads, horizon,
                         source, dates)  # fmt: skip
    return found, {name: merged[name].to_numpy() for name in exogenous}


def _refuse_missed_steps(
    future: pd.DataFrame,
    keys: np.ndarray,
    times: Any,
    per_partition: np.ndarray,
    reads: np.ndarray,
    horizon: int,
    source: str,
    dates: bool = False,
) -> None:
    """A forecast partition that ``future`` gives rows for, none of them at its steps (dates a
    year off, a table starting after a gap, history rows only): its values were never used,
    and the forecast silently carried the last ones forward as if it had none."""
    missed = np.flatnonzero(~per_partition.any(axis=1) & reads)
    if not len(missed):
        return
    given = pd.unique(future[_KEY])
    missed = missed[np.isin(keys[missed * horizon], given)]
    if len(missed):
        p = int(missed[0])
        first, last = times[p * horizon], times[(p + 1) * horizon - 1]
        raise DataError(
            f"{source}: partition '{keys[p * horizon]}' has rows, but none at its forecast "
            f"steps ({shown_time(first, dates)} … {shown_time(last, dates)}, "
            "which continue its last training time at the data's frequency): give every step "
            f"of a partition, or no row of it to carry its last values forward; {len(missed)} "
            "partition(s) affected"
        )


def _refuse_off_steps(
    future: pd.DataFrame, steps: pd.DataFrame, horizon: int, source: str, dates: bool = False
) -> None:
    """A future row of a forecast partition at a time within its steps that is no step (a
    Sunday among weekly Mondays, a time zone's hour off): its values were never used, and
    the forecast silently carried the last ones forward. Rows before or after the steps
    (a longer file than the horizon) are fine."""
    if steps.empty:
        return
    first = steps.iloc[::horizon].reset_index(drop=True)
    last = steps.iloc[horizon - 1 :: horizon].reset_index(drop=True)
    bounds = pd.DataFrame({_KEY: first[_KEY], "_lo": first[_TIME], "_hi": last[_TIME]})
    rows = future[[_KEY, _TIME]].merge(bounds, on=_KEY, how="inner")
    within = rows[(rows[_TIME] >= rows["_lo"]) & (rows[_TIME] <= rows["_hi"])]
    if within.empty:
        return
    off = within.merge(steps, on=[_KEY, _TIME], how="left", indicator=True)
    off = off[off["_merge"] == "left_only"]
    if len(off):
        at = off.iloc[0]
        raise DataError(
            f"{source}: partition '{at[_KEY]}' has a row at "
            f"{shown_time(at[_TIME], dates)}, "
            "which is not one of its forecast steps (they continue its last training time at "
            f"the data's frequency); {len(off)} such row(s)"
        )


def _time_key(times: Any) -> Any:
    """Times in one comparable form: datetime64[ns] (zone kept) or float64."""
    if isinstance(times, pd.DatetimeIndex):
        return times.as_unit("ns")
    if timefeatures.is_datetime(times):
        return pd.DatetimeIndex(times).as_unit("ns")
    return np.asarray(times, dtype=np.float64)


def unfed(
    schema: FeatureSchema, steps: Steps, p: int, horizon: int, version: int, error: str
) -> DataError | None:
    """The error of a model that failed on partition ``p``'s steps because one lacked a value
    (``missing_cell``), or ``None`` when none did (another failure)."""
    cell = missing_cell(schema, steps, p, horizon)
    if cell is None:
        return None
    return DataError(
        f"{cell}, and its model (v{version}) takes no missing values ({error}): give that "
        "value, or no row of the partition to carry its last values forward"
    )


def missing_cell(schema: FeatureSchema, steps: Steps, p: int, horizon: int) -> str | None:
    """Where partition ``p``'s steps lack an exogenous value its model reads (a NaN in a
    future table, or a last known value carried forward that was missing), as one clause
    naming the table, partition, time and column; ``None`` when every value is there.
    Models that take missing values forecast such steps; for the others scikit-learn's
    "Input X contains NaN" said nothing of which cell."""
    key = _key_of(schema)
    for s in range(p * horizon, (p + 1) * horizon):
        for name in _plan(schema).exogenous:
            value = steps.columns[name][s]
            if not (value is None or (isinstance(value, float) and np.isnan(value))):
                continue
            at = shown_time(steps.times[s], steps.dates)
            if steps.given is not None and steps.given[s]:
                return f"{steps.source}: partition '{key}' has no value of '{name}' at {at}"
            return (
                f"partition '{key}' has no value of '{name}' at {at}: its last known one "
                f"(at {_history(schema).time}), carried forward, is missing too"
            )
    return None
