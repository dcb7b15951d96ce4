"""Forecasting: the next periods of each partition, from its production model and the history
its version recorded — the training data is never read again.

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
  forward too; one with only some of its steps there is an error);
* target lags and rolling statistics (``manymodels.lagfeatures``), from the recorded targets
  and then from the forecast itself: step 2's ``lag1`` is step 1's prediction (so a lag
  shorter than the horizon makes the forecast recursive, one ``predict`` per step; when every
  lag is at least the horizon it is direct, one ``predict`` for all steps).

Classification models forecast the predicted class of each step. The fallback model is not
forecast: it has no history of its own.

Times, calendar parts and the matching of ``future`` rows are vectorised over all partitions;
per partition there is one model load and one ``predict`` (per step, with lags).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from manymodels import intervals as conformal
from manymodels import timefeatures
from manymodels.data import DataSource, describe_source, read_table
from manymodels.exceptions import DataError, PartitionNotFound, RegistryError, first_line
from manymodels.features import assemble, column_values, feature_kinds
from manymodels.lagfeatures import LagPlan, TargetTransform, step_features
from manymodels.partition import FALLBACK_KEY, encode_key
from manymodels.registry.client import Registry
from manymodels.registry.entities import ModelVersion
from manymodels.schemahistory import recorded
from manymodels.signing import Signer
from manymodels.training.global_fit import GlobalModel, bind_key

MAX_HORIZON = 1000
MAX_LISTED_KEYS = 10
OUTPUT_COLUMNS = ("prediction", "model_version")
_KEY, _TIME = "__key__", "__time__"


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
    keys: Iterable[str | Mapping[str, Any]] | None = None,
    *,
    horizon: int,
    future: DataSource | None = None,
    signer: Signer | None = None,
    levels: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Forecast the next ``horizon`` periods of each partition with its production model.

    ``keys`` selects partitions (canonical text or mappings); by default every partition in
    production except the fallback. ``future`` (a DataFrame, CSV or Parquet) holds exogenous
    feature values of future periods, with the key and time columns; partitions it does not
    mention carry their last known values forward. Returns one row per partition and step,
    sorted by key then time: the key columns, the time column (named as in the spec),
    ``prediction`` and ``model_version``. Versions trained with ``[intervals]`` add
    ``lo-<level>`` / ``hi-<level>`` columns (``manymodels.intervals``): every recorded level,
    or ``levels`` (a level some partition did not record is a ``DataError``).

    Raises ``DataError`` for a horizon outside 1 … 1000, for partitions trained without a time
    column, and for a ``future`` table that lacks columns or covers only some of a partition's
    steps; ``PartitionNotFound`` for keys with no production model; ``BadSignature`` (one of
    them) when a ``signer`` is given, for a registry opened here (as ``score``; a ``Registry``
    checks with its own), and a version's signature is missing or wrong.

        frame = forecast("./mmregistry", ["store=2,brand=tropicana"], horizon=4)
        frame.pivot(index="week", columns="brand", values="prediction")
    """
    horizon = check_horizon(horizon)
    own_registry = not isinstance(registry, Registry)
    reg = registry if isinstance(registry, Registry) else Registry.open(registry, signer=signer)
    if not own_registry and signer is not None and signer != reg.signer:
        raise ValueError("pass the signer to Registry.open: this registry checks with its own")
    try:
        records = _production(reg, keys)
        key_columns, time_column = _common_layout(records)
        named = [(f"partition '{r.key}' v{r.version}", r.feature_schema) for r in records]
        levels = conformal.choose_levels(named, levels)
        fut = None
        if future is not None:
            fut = future_table(future, records, key_columns=key_columns, time_column=time_column)
        predictions: list[np.ndarray] = []
        times: list[Any] = []
        shared: dict[str, GlobalModel] = {}
        for group in _groups(records):
            steps = build_steps(group, horizon, fut)
            times.append(steps.times)
            for p, record in enumerate(group):
                model = _load(reg, record, shared)  # one model held at a time, or a global
                try:
                    pred = predict_steps(model, record.feature_schema, steps, p, horizon)
                except (ValueError, TypeError) as e:
                    raise DataError(
                        f"partition '{record.key}' v{record.version} could not forecast: "
                        f"{_first_line(e)}"
                    ) from None
                predictions.append(pred)
    finally:
        if own_registry:
            reg.close()
    return _output(records, key_columns, time_column, horizon, times, predictions, levels)


def _load(reg: Registry, record: ModelVersion, shared: dict[str, GlobalModel]) -> Any:
    """A partition's model. A global model (``training.global_fit``) is read and unpickled once
    per forecast, each partition's version still checked against its signature, and bound to
    the partition's key: 10,000 partitions on one global model are one load, not 10,000."""
    sha = record.artifact_sha256
    if "global" not in record.feature_schema:
        return reg.load_artifact(record)
    if sha in shared:
        reg.verify(record)
        return bind_key(shared[sha], record.feature_schema)
    loaded = reg.load_artifact(record)
    if isinstance(getattr(loaded, "model", None), GlobalModel):
        shared[sha] = loaded.model
    return loaded


def _production(
    reg: Registry, keys: Iterable[str | Mapping[str, Any]] | None
) -> list[ModelVersion]:
    """The production versions to forecast, sorted by key; all checked before any model loads."""
    table = reg.store.alias_table("production")
    if keys is None:
        wanted = sorted(k for k in table if k != FALLBACK_KEY)
        if not wanted:
            where = reg.root if reg.root is not None else reg.db_url
            raise RegistryError(f"the registry at {where} has no partitions in production")
    else:
        wanted = sorted({reg.key(k) for k in keys})
        if FALLBACK_KEY in wanted:
            raise DataError(f"the fallback model ({FALLBACK_KEY}) is not forecast")
        unknown = [k for k in wanted if k not in table]
        if unknown:
            raise PartitionNotFound(f"no production model for partition(s) {_listed(unknown)}")
    records = reg.store.get_versions([(k, table[k]) for k in wanted])
    found = {r.key for r in records}
    missing = [k for k in wanted if k not in found]
    if missing:  # production points at a version that no longer exists (gc, or a race with it)
        shown = _listed([f"{k} v{table[k]}" for k in missing])
        raise RegistryError(
            f"the production version of partition(s) {shown} is missing from the registry; "
            "promote an existing version"
        )
    records.sort(key=lambda r: r.key)
    problems = [(r.key, why) for r in records if (why := unforecastable(r.feature_schema))]
    if problems:
        reason = problems[0][1]
        same = [k for k, why in problems if why == reason]
        raise DataError(f"cannot forecast partition(s) {_listed(same)}: {reason}")
    return records


def unforecastable(schema: Mapping[str, Any]) -> str | None:
    """Why a version's feature schema cannot be forecast, or ``None`` when it can."""
    if not schema.get("time_column"):
        return "trained from a spec without a time_column (only time series can be forecast)"
    if "forecast" not in schema or "history" not in schema:
        return "trained before versions recorded their history; retrain to forecast"
    if schema["forecast"].get("frequency") is None:
        return "the time step is unknown (no partition had two distinct times when trained)"
    return None


def _first_line(e: BaseException) -> str:
    return first_line(e)[:500]


def _listed(keys: Sequence[str]) -> str:
    more = f" and {len(keys) - MAX_LISTED_KEYS} more" if len(keys) > MAX_LISTED_KEYS else ""
    return ", ".join(f"'{k}'" for k in keys[:MAX_LISTED_KEYS]) + more


def _common_layout(records: Sequence[ModelVersion]) -> tuple[list[str], str]:
    layouts = {
        (tuple(r.feature_schema["partition_by"]), r.feature_schema["time_column"]) for r in records
    }
    if len(layouts) > 1:
        raise DataError(
            "the partitions come from specs with different key or time columns; forecast "
            "them separately (keys=…, --partitions)"
        )
    columns, time_column = layouts.pop()
    return list(columns), str(time_column)


def _groups(records: list[ModelVersion]) -> list[list[ModelVersion]]:
    """Runs of partitions sharing a frequency (the time steps of a run are computed at once).
    ``records`` is reordered so that each run is contiguous and sorted by key."""
    records.sort(key=lambda r: (str(r.feature_schema["forecast"]["frequency"]), r.key))
    out: list[list[ModelVersion]] = []
    for r in records:
        if out and _frequency(out[-1][0]) == _frequency(r):
            out[-1].append(r)
        else:
            out.append([r])
    return out


def _frequency(record: ModelVersion) -> Any:
    return record.feature_schema["forecast"]["frequency"]


# --------------------------------------------------------------------------------------------
# the steps: times and every feature but the lags, for a batch of partitions at once
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Steps:
    """The future steps of a batch of partitions sharing a frequency, partition-major: rows
    ``p * horizon : (p + 1) * horizon`` belong to partition ``p``. ``columns`` hold every
    calendar and exogenous feature (float64, or objects for text); lags are filled in by
    ``predict_steps``."""

    times: Any  # DatetimeIndex for dates, numpy array for periods
    columns: dict[str, np.ndarray]


def build_steps(
    schemas: Sequence[ModelVersion | Mapping[str, Any]],
    horizon: int,
    future: pd.DataFrame | None = None,
) -> Steps:
    """Times, calendar parts and exogenous features of the next ``horizon`` steps of each
    partition (versions, or their feature schemas). ``future`` is a table from
    ``future_table``: its values replace the carried-forward ones where key and time match."""
    fs = [s.feature_schema if isinstance(s, ModelVersion) else s for s in schemas]
    n = len(fs)
    frequency = fs[0]["forecast"]["frequency"]
    times = timefeatures.advance([s["history"]["time"] for s in fs], frequency, horizon)
    columns: dict[str, np.ndarray] = {}

    calendar = {name: part for s in fs for name, part in s["forecast"]["calendar"].items()}
    if calendar:
        parts = timefeatures.calendar_values(times, sorted(set(calendar.values())))
        columns.update({name: parts[part].astype(np.float64) for name, part in calendar.items()})

    kinds = {name: num for s in fs for name, num in feature_kinds(s)}
    exogenous = list(dict.fromkeys(f for s in fs for f in s["forecast"]["exogenous"]))
    for name in exogenous:
        last = [s["history"]["features"].get(name) for s in fs]
        if kinds.get(name, True):
            values = np.array([np.nan if v is None else v for v in last], dtype=np.float64)
        else:
            values = np.array(last, dtype=object)
        columns[name] = np.repeat(values, horizon)

    if future is not None and exogenous:
        keys = np.repeat(np.array([_key_of(s) for s in fs], dtype=object), horizon)
        found, matched = _match_future(future, keys, times, exogenous, horizon, n)
        for name in exogenous:
            columns[name] = np.where(found, matched[name], columns[name])
    return Steps(times=times, columns=columns)


def _key_of(schema: Mapping[str, Any]) -> str:
    key = schema["history"]["key"]
    return encode_key(list(key.values()), list(key))


def _match_future(
    future: pd.DataFrame,
    keys: np.ndarray,
    times: Any,
    exogenous: Sequence[str],
    horizon: int,
    n: int,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Which steps ``future`` has a row for, and its values there (one vectorised merge)."""
    steps = pd.DataFrame({_KEY: keys, _TIME: _time_key(times)})
    try:
        merged = steps.merge(
            future[[_KEY, _TIME, *exogenous]], on=[_KEY, _TIME], how="left", indicator=True
        )
    except (ValueError, TypeError) as e:  # e.g. zone-aware times against naive ones
        raise DataError(f"future: its times do not compare with the forecast's ({e})") from None
    found = (merged["_merge"] == "both").to_numpy()
    per_partition = found.reshape(n, horizon)
    partial = np.flatnonzero(per_partition.any(axis=1) & ~per_partition.all(axis=1))
    if len(partial):
        p = int(partial[0])
        missing = times[p * horizon + int(np.flatnonzero(~per_partition[p])[0])]
        raise DataError(
            f"future: partition '{keys[p * horizon]}' has rows for some forecast steps but not "
            f"for {timefeatures.time_to_json(missing)} (give every step of a partition, or none "
            f"of them to carry its last values forward); {len(partial)} partition(s) affected"
        )
    return found, {name: merged[name].to_numpy() for name in exogenous}


def _time_key(times: Any) -> Any:
    """Times in one comparable form: datetime64[ns] (zone kept) or float64."""
    if isinstance(times, pd.DatetimeIndex):
        return times.as_unit("ns")
    if timefeatures.is_datetime(times):
        return pd.DatetimeIndex(times).as_unit("ns")
    return np.asarray(times, dtype=np.float64)


def future_table(
    data: DataSource,
    schemas: Sequence[ModelVersion | Mapping[str, Any]],
    *,
    key_columns: Sequence[str] | None,
    time_column: str,
    key: str | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """``data`` checked and keyed for ``build_steps``: a canonical key per row (from
    ``key_columns``, or ``key`` for rows of one partition), its time, and the exogenous
    features the models need, each converted and checked once for the whole column."""
    source = source or f"future ({describe_source(data)})"
    df = read_table(data)
    fs = [s.feature_schema if isinstance(s, ModelVersion) else s for s in schemas]
    kinds = {name: num for s in fs for name, num in feature_kinds(s)}
    exogenous = list(dict.fromkeys(f for s in fs for f in s["forecast"]["exogenous"]))
    required = [*(key_columns or []), time_column, *exogenous]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))} (future rows carry "
            f"the key and time columns and the exogenous features {', '.join(exogenous)})"
        )
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    out[_KEY] = _row_keys(df, key_columns, source=source) if key is None else key
    out[_TIME] = _parse_times(df[time_column], fs[0], source=source)
    for name in exogenous:
        numeric = kinds.get(name, True)
        out[name] = column_values(df[name], numeric=numeric, name=name, source=source)
    duplicated = out.duplicated([_KEY, _TIME])
    if duplicated.any():
        first = out.loc[duplicated.to_numpy()].iloc[0]
        raise DataError(
            f"{source}: more than one row for partition '{first[_KEY]}' at "
            f"{timefeatures.time_to_json(first[_TIME])}"
        )
    return out


def _row_keys(df: pd.DataFrame, key_columns: Sequence[str] | None, *, source: str) -> np.ndarray:
    """The canonical key of every row: one ``encode_key`` per distinct key, not per row."""
    columns = list(key_columns or [])
    keys_df = df[columns]
    if keys_df.isna().any().any():
        raise DataError(f"{source}: a key column has missing values")
    if df.empty:
        return np.zeros(0, dtype=object)
    group = keys_df.groupby(columns, sort=False, observed=True).ngroup().to_numpy()
    _, firsts = np.unique(group, return_index=True)
    values = zip(*[keys_df[c].to_numpy()[firsts] for c in columns], strict=True)
    names = np.array([encode_key(v, columns) for v in values], dtype=object)
    return names[group]


def _parse_times(values: pd.Series, schema: Mapping[str, Any], *, source: str) -> Any:
    """The time column as the forecast's times compare: datetime64[ns] or float64."""
    dated = isinstance(schema["forecast"]["frequency"], str)
    try:
        if dated:
            parsed: Any = pd.DatetimeIndex(pd.to_datetime(values, format="ISO8601")).as_unit("ns")
        else:
            parsed = pd.to_numeric(values).to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as e:
        what = "dates" if dated else "numbers"
        raise DataError(f"{source}: time column '{values.name}' must hold {what} ({e})") from None
    if pd.isna(parsed).any():
        raise DataError(f"{source}: time column '{values.name}' has missing values")
    return parsed


# --------------------------------------------------------------------------------------------
# one partition
# --------------------------------------------------------------------------------------------
def predict_steps(
    model: Any, schema: Mapping[str, Any], steps: Steps, p: int, horizon: int
) -> np.ndarray:
    """The predictions of partition ``p``'s steps. Target lags and rolling statistics come
    from ``lagfeatures.step_features`` on the recorded history — the code training used. One
    ``predict`` for all steps when no feature reads a prediction (no target features, or every
    lag ≥ ``horizon``: direct); otherwise one per step, each prediction appended to the history
    for the next steps' features (recursive)."""
    lo = p * horizon
    kinds = feature_kinds(schema)
    plan = LagPlan.from_schema(schema, horizon)
    derived = {name: d for d, name in enumerate(plan.columns)}
    values = np.zeros((horizon, len(kinds)), dtype=np.float64)
    text: dict[int, np.ndarray] = {}
    target_at: list[tuple[int, int]] = []  # (model input column, step_features column)
    for j, (name, numeric) in enumerate(kinds):
        if name in derived:
            target_at.append((j, derived[name]))
        elif numeric:
            values[:, j] = steps.columns[name][lo : lo + horizon]
        else:
            text[j] = steps.columns[name][lo : lo + horizon]
    if not target_at:
        return _predict(model, assemble(schema, values, text), horizon)

    recent = np.array([[np.nan if v is None else float(v) for v in schema["history"]["target"]]])
    if plan.direct:
        for s in range(horizon):
            features = step_features(recent, plan, s + 1)[0]
            for j, d in target_at:
                values[s, j] = features[d]
        return _untransformed(_predict(model, assemble(schema, values, text), horizon), schema)

    out = []
    for s in range(horizon):
        features = step_features(recent, plan, 1)[0]
        for j, d in target_at:
            values[s, j] = features[d]
        row = assemble(schema, values[s : s + 1], {j: t[s : s + 1] for j, t in text.items()})
        pred = _predict(model, row, 1)[0]
        out.append(pred)
        recent = np.append(recent, [[float(pred)]], axis=1)
    return _untransformed(np.asarray(out), schema)


def _untransformed(predictions: np.ndarray, schema: Mapping[str, Any]) -> np.ndarray:
    """Predictions of a model fitted on a transformed target, in the target's units again."""
    transform = recorded(schema)
    if transform is None:
        return predictions
    last = transform.get("last")
    fitted = TargetTransform.from_json(transform)
    return fitted.invert(predictions, np.nan if last is None else float(last))


def _predict(model: Any, X: Any, n: int) -> np.ndarray:
    pred = np.asarray(model.predict(X))
    if pred.shape[:1] != (n,):
        raise DataError(f"the model returned {len(pred)} prediction(s) for {n} step(s)")
    return pred


# --------------------------------------------------------------------------------------------
# the output
# --------------------------------------------------------------------------------------------
def _output(
    records: Sequence[ModelVersion],
    key_columns: Sequence[str],
    time_column: str,
    horizon: int,
    times: Sequence[Any],
    predictions: Sequence[np.ndarray],
    levels: Sequence[float] = (),
) -> pd.DataFrame:
    keys = [r.feature_schema["history"]["key"] for r in records]
    out: dict[str, Any] = {c: np.repeat([k.get(c) for k in keys], horizon) for c in key_columns}
    if isinstance(times[0], pd.DatetimeIndex):
        out[time_column] = times[0].append(list(times[1:])) if len(times) > 1 else times[0]
    else:
        out[time_column] = np.concatenate(times)
    out["prediction"] = np.concatenate(predictions)
    schemas = [r.feature_schema for r in records]
    out.update(conformal.stacked_bands(schemas, predictions, levels, steps=horizon))
    out["model_version"] = np.repeat([r.version for r in records], horizon)
    frame = pd.DataFrame(out)
    by_key = np.argsort(np.array([r.key for r in records], dtype=object), kind="stable")
    if (by_key != np.arange(len(records))).any():  # partitions of several frequencies
        frame = frame.iloc[(by_key[:, None] * horizon + np.arange(horizon)).ravel()]
    return frame.reset_index(drop=True)
