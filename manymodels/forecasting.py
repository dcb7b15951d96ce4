"""Forecasting: the next periods of each partition, from its production model (or the version
another alias names) and the history its version recorded — the training data is never read
again.

    frame = forecast("./mmregistry", horizon=8)                        # every partition
    frame = forecast(reg, ["store=2,brand=tropicana"], horizon=4, future="promos.csv")

Only partitions trained from a spec with a ``time_column`` can be forecast. Training records
in each version's ``feature_schema`` the table's frequency, the spec's calendar parts and target
lags, and the partition's last time, last ``max(lags)`` targets and last row of exogenous
features (``train.feature_schema``, ``train.partition_history``). A forecast step is one period
of that frequency after the previous one; its features are

* calendar parts, from the step's time;
* exogenous features, from ``future`` rows matched by key and time when given, otherwise the
  partition's last known values carried forward (a partition absent from ``future`` carries
  forward too; one with only some of its steps there is an error, unless its model reads
  no feature: ``forecast_steps.reads_future``; which features were held,
  ``forecast_steps.held_features``, is said by the CLI's note and the router's ``carried``);
* target lags and rolling statistics (``manymodels.lagfeatures``), from the recorded targets
  and then from the forecast itself: step 2's ``lag1`` is step 1's prediction (so a lag
  shorter than the horizon makes the forecast recursive, one ``predict`` per step; when every
  lag is at least the horizon it is direct, one ``predict`` for all steps).

Classification models forecast the predicted class of each step; a binary classifier with a
``[decision]`` also its label at the version's threshold (``decision_label`` and
``decision_threshold``, as ``manymodels score`` writes them and the router answers them). The
fallback model is not forecast: it has no history of its own.

Times, calendar parts and the matching of ``future`` rows (``manymodels.forecast_steps``) are
vectorised over a chunk of partitions; per partition there is one model load and one
``predict`` (per step, with lags). Every version is checked before any model loads, and the
partitions are forecast ``forecast_select.CHUNK`` at a time, only a chunk's version records
held at once: what grows with the number of partitions is the output, and not even that with
``forecast_chunks``, a chunk's frame at a time (``manymodels forecast --out`` writes them as
they come: ``manymodels.table_output.write_tables``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from manymodels import forecast_steps
from manymodels.classes import UnitProba, model_probabilities, require_probabilities
from manymodels.csvkeys import data_keys_recorded
from manymodels.deferred import deferred
from manymodels.exceptions import DataError, first_line
from manymodels.feature_schema import FeatureSchema
from manymodels.flags import require_flags
from manymodels.forecast_output import Labels, output, refuse_overwritten
from manymodels.forecast_partition import labelled_steps as labelled_steps  # the router's
from manymodels.forecast_select import PRODUCTION, Selection, select
from manymodels.forecast_select import unforecastable as unforecastable  # the router's check
from manymodels.forecast_steps import build_steps, future_keys, held_features
from manymodels.future_rows import future_table, refuse_unmatched, unused_rows
from manymodels.intervals import parse_levels
from manymodels.key_selection import KeySelection
from manymodels.key_spellings import registry_spelling
from manymodels.labels import check_threshold, threshold_classes
from manymodels.registry.client import Registry
from manymodels.registry.entities import ModelVersion
from manymodels.registry.model_access import alias_name, one_version_choice, version_number
from manymodels.signing import Signer
from manymodels.tables import DataSource, require_table
from manymodels.written_columns import FORECAST_COLUMNS

if TYPE_CHECKING:
    from manymodels.training.global_fit import GlobalModel

MAX_HORIZON = 1000
MAX_VERSION = 2**31 - 1  # as the CLI's and the router's bound on a version number
OUTPUT_COLUMNS = FORECAST_COLUMNS


def check_horizon(horizon: Any) -> int:
    """``horizon`` as an int in 1 … ``MAX_HORIZON``; ``DataError`` otherwise."""
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer):
        raise DataError(f"horizon must be a whole number of periods, not {horizon!r}")
    if not 1 <= horizon <= MAX_HORIZON:
        raise DataError(f"horizon must be between 1 and {MAX_HORIZON} periods, not {horizon}")
    return int(horizon)


# --------------------------------------------------------------------------------------------
# the entry point
# --------------------------------------------------------------------------------------------
def forecast(
    registry: Registry | str | Path = "./mmregistry",
    keys: KeySelection | None = None,
    *,
    horizon: int,
    future: DataSource | None = None,
    signer: Signer | None = None,
    levels: Sequence[float] | None = None,
    alias: str | None = PRODUCTION,
    threshold: float | None = None,
    probabilities: bool = False,
    version: int | None = None,
) -> pd.DataFrame:
    """Forecast the next ``horizon`` periods of each partition with its production model, or
    the version ``alias`` points at (a challenger's forecast beside the champion's).

    ``keys`` selects partitions (canonical text or mappings; one key alone is a selection of
    one; a DataFrame, a key per distinct row of its key columns — the table itself will do —
    or a Series: a key column's values, or one row); by default every partition
    with the alias except the fallback. ``future`` (a DataFrame, CSV or Parquet) holds
    exogenous feature values of future periods, with the key and time columns; partitions it
    does not mention carry their last known values forward.
    Returns one row per partition and step, sorted by key then time: the key columns, the
    time column (named as in the spec), ``prediction`` and ``model_version``; when a version
    has a ``[decision]``, ``decision_label`` and ``decision_threshold`` after ``prediction``
    (missing and NaN for the others; the labels typed as the classes are). ``threshold``
    labels every step at it instead (a probability of the positive class, as the router's
    ``?threshold=``; every version must be a binary classifier with probabilities). Versions
    trained with ``[intervals]`` add ``lo-<level>`` / ``hi-<level>`` columns
    (``manymodels.intervals``): every recorded level, or ``levels`` (a level some partition
    did not record is a ``DataError``). ``probabilities=True`` adds a classifier's class
    probabilities of each step, a ``proba-<class>`` column per class of the versions' tables
    (0 for a class a partition never held; ``score``'s columns); a regression is a
    ``DataError``. ``version`` forecasts that version of each partition in ``keys`` instead
    of the alias's (the router's ``?version=``: a challenger before it is promoted, an old
    version after a rollback); it needs ``keys``, and not an ``alias`` too.
    ``forecast_chunks`` gives the same rows a chunk of partitions at a time (a file written as
    they come holds no more than a chunk).

    Raises ``DataError`` for an empty ``keys``, for a horizon outside 1 … 1000, for
    partitions named that were trained without a time column (a forecast of every partition
    leaves those out, an MLflow import among them, and lists them in the frame's
    ``attrs["left_out"]``; only when none is left is it refused; it counts the partitions
    with no version at ``alias``, not forecast, in ``attrs["without_alias"]``, the first few
    by key in ``attrs["without_keys"]``; the rows of ``future`` that no partition forecast
    reads in ``attrs["future_unused"]``: partitions, rows, the first keys, and how many have
    no version at ``alias``), and for a
    ``future`` table that lacks columns or covers only some of a partition's steps;
    ``PartitionNotFound`` for keys with no model at ``alias``; ``BadSignature`` (one of them)
    when a ``signer`` is given, for a registry opened here (as ``score``; a ``Registry``
    checks with its own), and a version's signature is missing or wrong.

        frame = forecast("./mmregistry", ["store=2,brand=tropicana"], horizon=4)
        frame.pivot(index="week", columns="brand", values="prediction")
    """
    frames = list(
        forecast_chunks(
            registry, keys, horizon=horizon, future=future, signer=signer, levels=levels,
            alias=alias, threshold=threshold, probabilities=probabilities, version=version,
        )
    )  # fmt: skip
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    frame.attrs["left_out"] = frames[0].attrs.get("left_out", [])
    frame.attrs["without_alias"] = frames[0].attrs.get("without_alias", 0)
    frame.attrs["without_keys"] = frames[0].attrs.get("without_keys", [])
    frame.attrs["future_unused"] = frames[0].attrs.get("future_unused")
    return frame


def forecast_chunks(
    registry: Registry | str | Path = "./mmregistry",
    keys: KeySelection | None = None,
    *,
    horizon: int,
    future: DataSource | None = None,
    signer: Signer | None = None,
    levels: Sequence[float] | None = None,
    alias: str | None = PRODUCTION,
    threshold: float | None = None,
    probabilities: bool = False,
    version: int | None = None,
) -> Iterator[pd.DataFrame]:
    """``forecast``'s rows, ``forecast_select.CHUNK`` partitions at a time in key order (every
    frame with the same columns): every version is checked, and a ``future`` table read,
    before the first frame. A registry opened here stays open until the last frame has been
    taken or the generator is closed."""
    horizon = check_horizon(horizon)
    require_flags(probabilities=probabilities)
    if future is not None:
        # not "data must be …": the argument is future; file:///x.csv is /x.csv
        future = require_table(future, "future")
    threshold = check_threshold(threshold)
    levels = parse_levels(levels)  # levels=80 or "80,95" from Python, as the CLI's
    alias = alias_name(alias)  # None: production, as ``score`` and the router take it
    if version is not None:
        one_version_choice(version, None if alias == PRODUCTION else alias,
                           names=("version", "alias"))  # fmt: skip
        version = version_number(version)
        if not 1 <= version <= MAX_VERSION:
            raise DataError(f"version must be between 1 and {MAX_VERSION}, not {version}")
    own_registry = not isinstance(registry, Registry)
    reg = registry if isinstance(registry, Registry) else Registry.open(registry, signer=signer)
    if not own_registry and signer is not None and signer != reg.signer:
        raise ValueError("pass the signer to Registry.open: this registry checks with its own")
    try:
        # all checked before any model loads
        chosen = select(
            reg, keys, alias, levels, threshold, probabilities=probabilities, version=version
        )
        refuse_overwritten(chosen)
        fut, unused = None, None
        if future is not None:
            forecast_keys = {k for k, _ in chosen.pairs}  # in memory already: no query
            fut = future_table(
                future, chosen.schemas, key_columns=chosen.key_columns,
                time_column=chosen.time_column,
                recorded=partial(data_keys_recorded, reg, future),  # its keys' types
                # and spellings: only to a partition forecast (not another spec's)
                spelt=registry_spelling(reg, chosen.key_columns, among=forecast_keys),
            )  # fmt: skip
            # a key of another type: none known (the alias table select read, not again)
            known = refuse_unmatched(fut, partial(chosen.known_of, reg), chosen.pairs[0][0])
            # its rows of partitions not forecast: said, not dropped silently
            unused = unused_rows(fut, forecast_keys, known)
        shared: dict[str, GlobalModel] = {}
        given = None if fut is None else future_keys(fut)
        for records in chosen.chunks(reg):  # the rest of the forecast is its output
            frame = _forecast_chunk(reg, records, chosen, horizon, fut, shared)
            frame.attrs["second_digits"] = chosen.second_digits  # one CSV format in every chunk
            frame.attrs["dates_only"] = chosen.dates_only
            frame.attrs["left_out"] = chosen.left_out  # said by the forecast's summary
            frame.attrs["without_alias"] = chosen.without_alias  # likewise, as a count
            frame.attrs["without_keys"] = chosen.without_keys  # and the first few of them
            frame.attrs["future_unused"] = unused  # None without a future table
            frame.attrs["mixed_keys"] = chosen.mixed_keys  # a file of one type a column says so
            # the partitions held at their last feature values, and the features: said by the
            # summary, over chunks, as the router's ``carried`` (one answer: held_features)
            held = {r.key: held_features(r, given) for r in records}
            frame.attrs["held"] = [k for k, names in held.items() if names]
            frame.attrs["carried"] = list(dict.fromkeys(n for ns in held.values() for n in ns))
            # each partition's last time: the summary names those ending before the newest
            frame.attrs["ends"] = [(r.key, _last_time(r)) for r in records]
            yield frame
    finally:
        if own_registry:
            reg.close()


def _last_time(record: ModelVersion) -> Any:
    history = record.schema.history
    return None if history is None else history.time


def _forecast_chunk(
    reg: Registry,
    records: list[ModelVersion],
    chosen: Selection,
    horizon: int,
    fut: pd.DataFrame | None,
    shared: dict[str, GlobalModel],
) -> pd.DataFrame:
    """The forecast of one chunk of partitions (sorted by key), as ``forecast`` returns it."""
    predictions: list[np.ndarray] = []
    labels: list[Labels | None] = []
    times: list[Any] = []
    proba: list[UnitProba] | None = [] if chosen.classes is not None else None
    for group in _groups(records):
        steps = build_steps(group, horizon, fut)
        times.append(steps.times)
        for p, record in enumerate(group):
            model = _load(reg, record, shared)  # one model held at a time, or a global
            if chosen.threshold is not None:  # as the router checks the model it loaded
                where = f"partition '{record.key}' v{record.version}"
                threshold_classes(record.schema, where, model)
            if proba is not None:  # not in the try: its error names the partition itself
                require_probabilities(model, f"partition '{record.key}' v{record.version}")
            try:
                inputs: list[Any] = []  # each step's model input, for its probabilities
                pred, labelled = labelled_steps(
                    model,
                    record.schema,
                    steps,
                    p,
                    horizon,
                    threshold=chosen.threshold,
                    inputs=inputs,
                )
                if proba is not None:
                    what = f"partition '{record.key}' v{record.version}"
                    proba.append(step_probabilities(model, record.schema, inputs, what))
            except (ValueError, TypeError) as e:
                why = _first_line(e)  # a missing value is named by partition, time, column
                unfed = forecast_steps.unfed(record.schema, steps, p, horizon, record.version, why)
                raise unfed or DataError(
                    f"partition '{record.key}' v{record.version} could not forecast: "
                    f"{why}{_missing_history(record.schema, e)}"
                ) from None
            predictions.append(pred)
            labels.append(labelled)
    return output(
        records, chosen.key_columns, chosen.time_column, horizon, times, predictions,
        chosen.levels, labels if chosen.decides else None, chosen.label_dtype,
        (chosen.classes or [], proba) if proba is not None else None,
    )  # fmt: skip


def step_probabilities(
    model: Any, schema: FeatureSchema, inputs: list[Any], what: str
) -> UnitProba:
    """A partition's class probabilities of its steps, from the inputs that predicted them
    (``labelled_steps(..., inputs=)``: all steps at once, or one per step of a recursive
    forecast) — ``forecast --probabilities`` and the router's ``?probabilities=true``."""
    found = [model_probabilities(model, X, schema.classes, what) for X in inputs]
    return found[0][0], np.concatenate([p for _, p in found])


@deferred
def global_fit() -> tuple[type[GlobalModel], Callable[[Any, Mapping[str, Any] | None], Any]]:
    """``GlobalModel`` and ``bind_key``: imported at a model's load (or by the router's
    warm-up), not with this module: the router's forecast route imports it, and scikit-learn
    with it cost every router's start ~2 s."""
    from manymodels.training.global_fit import GlobalModel, bind_key

    return GlobalModel, bind_key


def _load(reg: Registry, record: ModelVersion, shared: dict[str, GlobalModel]) -> Any:
    """A partition's model. A global model (``training.global_fit``) is read and unpickled once
    per forecast, each partition's version still checked against its signature, and bound to
    the partition's key: 10,000 partitions on one global model are one load, not 10,000."""
    GlobalModel, bind_key = global_fit()
    sha = record.artifact_sha256
    if record.schema.bound is None:
        return reg.load_artifact(record, shared)  # an ensemble's global members: once each
    if sha in shared:
        reg.verify(record)
        return bind_key(shared[sha], record.schema.bound)
    loaded = reg.load_artifact(record)
    if isinstance(getattr(loaded, "model", None), GlobalModel):
        shared[sha] = loaded.model
    return loaded


def _missing_history(schema: FeatureSchema, error: BaseException) -> str:
    """Why a model that refused NaN was fed one: a target its lags read is missing from the
    recorded history (``missing_target = "drop"`` trains without such a row, but the lags of
    the periods after it still reach it). Empty for any other error."""
    if "nan" not in str(error).lower() or schema.history is None:
        return ""
    recent = schema.history.target
    missing = sum(1 for v in recent if _absent(v))
    if missing:
        return (
            f" ({missing} of the last {len(recent)} training targets its lags read are missing: "
            "retrain with those periods' targets, or with candidates that take missing values, "
            "such as HistGradientBoostingRegressor)"
        )
    blank = [name for name, v in schema.history.features.items() if _absent(v)]
    if not blank:
        return ""
    return (  # a change's first step is taken from the last row's value (``changes``)
        f" (its last row, at {schema.history.time}, has no {', '.join(map(repr, blank))}, "
        "from which the first step's change is taken: retrain with that value, or with "
        "candidates that take missing values, such as HistGradientBoostingRegressor)"
    )


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _first_line(e: BaseException) -> str:
    return first_line(e)[:500]


def _groups(records: list[ModelVersion]) -> list[list[ModelVersion]]:
    """Runs of partitions sharing a frequency, time zone and holidays (the time steps of a run are
    computed at once). ``records`` is reordered so that each run is contiguous and sorted by
    key."""
    records.sort(key=lambda r: (str(_frequency(r)), r.key))
    out: list[list[ModelVersion]] = []
    for r in records:
        if out and _frequency(out[-1][0]) == _frequency(r):
            out[-1].append(r)
        else:
            out.append([r])
    return out


def _frequency(record: ModelVersion) -> Any:
    forecast = record.schema.forecast
    assert forecast is not None  # unforecastable refused it
    return forecast.frequency, forecast.timezone or "", tuple(forecast.holidays)
