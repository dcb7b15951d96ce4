"""Training one partition, and one chunk of partitions: pure functions — no Ray, no SQL.

Per partition: check it is usable → split for validation → fit and score every candidate × grid
point and the naive baseline → pick the best → refit it on all rows → serialise and store the
artifact. Anything a partition's data makes go wrong is caught and becomes that partition's
``PartitionOutcome``; the chunk carries on.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, TimeSeriesSplit

from manymodels import candidates as cands
from manymodels.artifacts import ArtifactStore, deserialize, serialize
from manymodels.evaluate import decide
from manymodels.exceptions import first_line
from manymodels.partition import FALLBACK_KEY, PartitionedTable
from manymodels.registry.entities import CandidateResult, NewVersion, PartitionOutcome
from manymodels.spec import Spec
from manymodels.timefeatures import time_to_json

Split = tuple[Any, Any]  # (train rows, validation rows): slices or index arrays
Result = NewVersion | PartitionOutcome


class PartitionSkipped(Exception):
    """The partition is fine but not trainable under the spec (too few rows): not a failure."""


def _mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(y - p)))


def _mse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((y - p) ** 2))


# Plain numpy for the commonest scorers on 1-D targets: sklearn's input checks cost ~3× the
# arithmetic. Tests check each against sklearn.
_NUMPY_SCORERS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "neg_mean_absolute_error": lambda y, p: -_mae(y, p),
    "neg_mean_squared_error": lambda y, p: -_mse(y, p),
    "neg_root_mean_squared_error": lambda y, p: -math.sqrt(_mse(y, p)),
    "accuracy": lambda y, p: float(np.mean(y == p)),
}


class Metric:
    """A scikit-learn scorer, called without its per-call overhead when it only needs
    ``predict`` (that overhead is comparable to fitting a small model)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._numpy = _NUMPY_SCORERS.get(name)
        self._scorer = get_scorer(name)
        func = getattr(self._scorer, "_score_func", None)
        sign = getattr(self._scorer, "_sign", None)
        kwargs = getattr(self._scorer, "_kwargs", None)
        self._fast: tuple[Callable[..., float], int, dict[str, Any]] | None = None
        if getattr(self._scorer, "_response_method", None) == "predict" and func and sign:
            self._fast = (func, sign, dict(kwargs or {}))

    def __call__(self, estimator: Any, X: Any, y: np.ndarray) -> float:
        if self._numpy is not None and y.ndim == 1 and y.dtype.kind in "fiub":
            pred = np.asarray(estimator.predict(X))
            if pred.shape == y.shape and pred.dtype.kind in "fiub":
                return self._numpy(y, pred)
        if self._fast is not None:
            func, sign, kwargs = self._fast
            return float(sign * func(y, estimator.predict(X), **kwargs))
        return float(self._scorer(estimator, X, y))


@lru_cache(maxsize=32)
def metric(name: str) -> Metric:
    return Metric(name)


@dataclass(frozen=True)
class Fitted:
    """A partition's chosen model and everything known about how it was chosen."""

    model: Any
    estimator: str
    params: dict[str, Any]
    score: float
    naive_score: float | None
    candidates: list[CandidateResult]
    validation: dict[str, Any]
    warnings: list[str]
    comparison: Comparison | None = None


@dataclass(frozen=True)
class Champion:
    """The production version a retrained partition is compared against; ``last_time`` is the
    newest time in its training data (JSON form), so only newer rows judge it."""

    version: int
    artifact_sha256: str
    last_time: Any = None


# --------------------------------------------------------------------------------------------
# validation splits
# --------------------------------------------------------------------------------------------
def validation_splits(
    n: int, spec: Spec, *, key: str, time_ordered: bool | None = None
) -> list[Split]:
    """The (train, validation) row sets for a partition of ``n`` rows sorted by time if any.

    The shuffle is seeded from the spec seed *and* the key, so a partition gets the same split
    whichever chunk or worker trains it.
    """
    strategy = spec.validation_strategy
    ordered = spec.time_column is not None if time_ordered is None else time_ordered
    size = spec.validation.size
    rng_seed = [spec.seed, zlib.crc32(key.encode())]
    if strategy == "kfold":
        folds = spec.validation.folds
        if n < folds + 1:
            raise PartitionSkipped(f"{n} rows is too few for {folds}-fold validation")
        if ordered:
            return list(TimeSeriesSplit(n_splits=folds).split(np.empty(n)))
        seed = int(np.random.default_rng(rng_seed).integers(2**31))
        return list(KFold(folds, shuffle=True, random_state=seed).split(np.empty(n)))
    k = int(size) if size >= 1 else max(1, round(n * size))
    if n - k < 2:
        raise PartitionSkipped(f"{n} rows leave fewer than 2 to train after {k} validation row(s)")
    if strategy == "last" and ordered:
        return [(slice(0, n - k), slice(n - k, n))]
    perm = np.random.default_rng(rng_seed).permutation(n)
    return [(np.sort(perm[k:]), np.sort(perm[:k]))]


def _take(X: Any, rows: Any) -> Any:
    if isinstance(X, pd.DataFrame):
        return X.iloc[rows]
    return X[rows]


# --------------------------------------------------------------------------------------------
# one partition
# --------------------------------------------------------------------------------------------
def fit_partition(
    X: Any,
    y: np.ndarray,
    spec: Spec,
    *,
    key: str,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    time_ordered: bool | None = None,
    champion: Any | None = None,
    unseen: np.ndarray | None = None,
) -> Fitted:
    """Select the best candidate on validation rows and refit it on all rows.

    ``champion`` (a fitted model) is scored on the same validation rows, for the promotion
    decision. Raises ``PartitionSkipped`` when there are too few rows and ``ValueError`` when no
    candidate could be fitted; any exception an estimator raises propagates for the caller.
    """
    n = len(y)
    if n < spec.min_rows:
        raise PartitionSkipped(f"{n} rows < min_rows {spec.min_rows}; served by the fallback")
    if y.dtype.kind == "f":
        n_nan = int(np.isnan(y).sum())
        if n_nan:
            raise ValueError(f"target '{spec.target}' has {n_nan} missing value(s) of {n}")
    elif y.dtype == object and pd.isna(y).any():
        raise ValueError(f"target '{spec.target}' has missing values")

    splits = validation_splits(n, spec, key=key, time_ordered=time_ordered)
    score_fn = metric(spec.metric_name)
    results: list[CandidateResult] = []
    best: tuple[float, Any, dict[str, Any]] | None = None

    fitted_last: list[Any] = []  # the validation fits of the last cross_score call

    def cross_score(make: Callable[[], Any]) -> float:
        scores = []
        fitted_last.clear()
        for tr, va in splits:
            est = make()
            est.fit(_take(X, tr), y[tr])
            scores.append(score_fn(est, _take(X, va), y[va]))
            fitted_last.append(est)
        value = float(np.mean(scores))
        if not math.isfinite(value):
            raise ValueError(f"{spec.metric_name} is not finite ({value})")
        return value

    best_fits: list[Any] = []

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for cand in spec.candidates:
            for params in cands.grid(cand):

                def make(c: Any = cand, p: dict[str, Any] = params) -> Any:
                    return cands.build(
                        c, p, categorical=categorical, numeric=numeric, seed=spec.seed
                    )

                try:
                    value = cross_score(make)
                except Exception as e:  # an estimator's own complaint about this partition
                    results.append(
                        CandidateResult(cand.label, cand.estimator, params, None, _oneline(e))
                    )
                    continue
                results.append(CandidateResult(cand.label, cand.estimator, params, value))
                if best is None or value > best[0]:
                    best = (value, cand, params)
                    best_fits = list(fitted_last)
        try:
            naive: float | None = cross_score(
                lambda: cands.naive_baseline(spec.task, time_ordered=bool(spec.time_column))
            )
        except Exception:
            naive = None
        if best is None:
            first = next(r.error for r in results if r.error)
            raise ValueError(f"all {len(results)} candidate fit(s) failed; first: {first}")
        score, cand, params = best
        model = cands.build(cand, params, categorical=categorical, numeric=numeric, seed=spec.seed)
        model.fit(X, y)
        comparison: Comparison | None = None
        if champion is not None:
            comparison = compare(champion, best_fits, splits, X, y, score_fn, n=n, unseen=unseen)

    n_valid = sum(_count(va, n) for _, va in splits)
    return Fitted(
        model=model,
        estimator=cand.estimator,
        params=params,
        score=score,
        naive_score=naive,
        candidates=results,
        validation={"strategy": spec.validation_strategy, "folds": len(splits), "rows": n_valid},
        warnings=sorted({f"{w.category.__name__}: {w.message}" for w in caught})[:5],
        comparison=comparison,
    )


@dataclass(frozen=True)
class Comparison:
    """Champion and challenger scored on the same rows: validation rows the champion never saw
    (when that can be told), by the challenger as fitted on the training rows."""

    challenger: float | None
    champion: float | None
    rows: int
    error: str | None = None


def compare(
    champion: Any,
    challenger_fits: Sequence[Any],
    splits: Sequence[Split],
    X: Any,
    y: np.ndarray,
    score_fn: Metric,
    *,
    n: int,
    unseen: np.ndarray | None,
) -> Comparison:
    """Like for like: the champion is only judged on rows it was not trained on, or it would
    grade itself on its own training data and almost never lose."""
    ours, theirs, rows = [], [], 0
    for (_, va), est in zip(splits, challenger_fits, strict=True):
        idx = np.arange(n)[va]
        if unseen is not None:
            idx = idx[unseen[idx]]
        if len(idx) == 0:
            continue
        rows += len(idx)
        ours.append(score_fn(est, _take(X, idx), y[idx]))
        try:
            theirs.append(score_fn(champion, _take(X, idx), y[idx]))
        except Exception as e:  # e.g. the features changed since the champion was trained
            return Comparison(None, None, rows, _oneline(e))
    if not rows:
        return Comparison(None, None, 0, "no validation rows newer than its training data")
    return Comparison(float(np.mean(ours)), float(np.mean(theirs)), rows)


def _count(rows: Any, n: int) -> int:
    if isinstance(rows, slice):
        return len(range(*rows.indices(n)))
    return len(rows)


def _first_line(e: BaseException) -> str:
    """At most 500 characters of the first line; empty for an error without a message (its type
    is recorded beside it)."""
    return first_line(e)[:500] if str(e).strip() else ""


def _oneline(e: BaseException) -> str:
    return f"{type(e).__name__}: {_first_line(e)}"


# --------------------------------------------------------------------------------------------
# a chunk: what one worker task does
# --------------------------------------------------------------------------------------------
def feature_schema(table: PartitionedTable, spec: Spec) -> dict[str, Any]:
    """What scoring rows are validated against later.

    With a time column, ``forecast`` adds what forecasting needs of every partition: the
    table's ``frequency``, the derived ``calendar`` and ``lags`` columns (name → part / lag) and
    the ``exogenous`` features (the others); each partition's version then also records its
    ``history`` (see ``partition_history``)."""
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
        derived = {*spec.calendar_columns, *spec.lag_columns}
        schema["forecast"] = {
            "frequency": table.extra.get("frequency"),
            "calendar": spec.calendar_columns,
            "lags": spec.lag_columns,
            "exogenous": [f for f in table.features if f not in derived],
        }
    return schema


def partition_history(
    table: PartitionedTable, i: int, schema: dict[str, Any], key_values: dict[str, Any]
) -> dict[str, Any]:
    """What forecasting partition ``i`` starts from, small enough for its feature schema: its
    key values, its last time, its last ``max(lags)`` targets (oldest first) and its last row of
    exogenous features."""
    assert table.time is not None
    rows = table.rows(i)
    last = rows.stop - 1
    plan = schema["forecast"]
    depth = max(plan["lags"].values(), default=0)
    if isinstance(table.X, pd.DataFrame):
        row = table.X.iloc[last]
        features = {f: _json_scalar(row[f]) for f in plan["exogenous"]}
    else:
        at = {f: j for j, f in enumerate(table.features)}
        features = {f: _json_scalar(table.X[last, at[f]]) for f in plan["exogenous"]}
    return {
        "key": key_values,
        "time": time_to_json(table.time[last]),
        "target": [
            _json_scalar(v) for v in table.y[max(rows.start, rows.stop - depth) : rows.stop]
        ],
        "features": features,
    }


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def trainable_rows(table: PartitionedTable, spec: Spec) -> np.ndarray | None:
    """Rows whose target lags are all defined (a mask over the table), or ``None`` without
    lags: the first ``max(lags)`` rows of each partition have nothing to look back at."""
    lags = list(spec.lag_columns)
    if not lags:
        return None
    if isinstance(table.X, pd.DataFrame):
        return np.asarray(table.X[lags].notna().all(axis=1).to_numpy(), dtype=bool)
    at = [table.features.index(c) for c in lags]
    return np.asarray(np.isfinite(table.X[:, at]).all(axis=1))


def _trainable(rows: slice, usable: np.ndarray | None) -> slice | np.ndarray:
    """A partition's rows to train on: a slice when they are contiguous (the usual case)."""
    if usable is None:
        return rows
    keep = np.flatnonzero(usable[rows]) + rows.start
    if len(keep) and int(keep[-1] - keep[0]) + 1 == len(keep):
        return slice(int(keep[0]), int(keep[-1]) + 1)
    return keep


def train_chunk(
    table: PartitionedTable,
    spec: Spec,
    store: ArtifactStore,
    champions: Mapping[str, Champion] | None = None,
) -> list[Result]:
    """Train every partition of a chunk; one partition's failure never stops the others.

    ``champions`` names the production version of partitions being retrained."""
    champions = champions or {}
    schema = feature_schema(table, spec)
    numeric = [c for c in table.features if c not in table.categorical]
    usable = trainable_rows(table, spec)
    out: list[Result] = []
    for i, key in enumerate(table.keys):
        rows = _trainable(table.rows(i), usable)
        key_values = dict(zip(spec.partition_by, table.key_values[i], strict=True))
        if "forecast" in schema:
            history = partition_history(table, i, schema, key_values)
            schema_i = {**schema, "history": history}
        else:
            schema_i = schema
        out.append(
            train_one(
                _take(table.X, rows),
                table.y[rows],
                spec,
                store,
                key=key,
                key_values=key_values,
                fingerprint=table.fingerprints[i],
                schema=schema_i,
                numeric=numeric,
                durable=False,
                champion=champions.get(key),
                times=None if table.time is None else table.time[rows],
            )
        )
    store.sync()  # every artifact is on disk before the driver registers any of them
    return out


def train_one(
    X: Any,
    y: np.ndarray,
    spec: Spec,
    store: ArtifactStore,
    *,
    key: str,
    key_values: dict[str, Any],
    fingerprint: str,
    schema: dict[str, Any],
    numeric: Sequence[str],
    time_ordered: bool | None = None,
    durable: bool = True,
    champion: Champion | None = None,
    times: np.ndarray | None = None,
) -> Result:
    """Fit, serialise and store one partition's model; every failure becomes an outcome.

    With ``durable=False`` the caller must ``store.sync()`` before the version is registered.
    With a ``champion``, the spec's promotion policy decides whether the new version replaces it.
    """
    started = time.perf_counter()
    n = len(y)
    champion_model, load_error = _load_champion(champion, store)
    try:
        fitted = fit_partition(
            X,
            y,
            spec,
            key=key,
            categorical=schema["categorical"],
            numeric=numeric,
            time_ordered=time_ordered,
            champion=champion_model,
            unseen=_newer_than(times, champion.last_time if champion else None),
        )
        data = serialize(fitted.model)
        sha, size = store.put(data, durable=durable)
    except PartitionSkipped as e:
        return PartitionOutcome(key, "skipped", "PartitionSkipped", str(e), n, fingerprint)
    except Exception as e:
        return PartitionOutcome(key, "failed", type(e).__name__, _first_line(e), n, fingerprint)
    return NewVersion(
        key=key,
        key_values=key_values,
        n_rows=n,
        data_fingerprint=fingerprint,
        estimator=fitted.estimator,
        params=_jsonable(fitted.params),
        metric=spec.metric_name,
        score=fitted.score,
        naive_score=fitted.naive_score,
        candidates=[
            CandidateResult(c.label, c.estimator, _jsonable(c.params), c.score, c.error)
            for c in fitted.candidates
        ],
        feature_schema=schema,
        artifact_sha256=sha,
        artifact_size=size,
        train_seconds=time.perf_counter() - started,
        warnings=fitted.warnings,
        validation=fitted.validation,
        evaluation=_evaluation(spec, fitted, champion, load_error),
    )


def _evaluation(
    spec: Spec, fitted: Fitted, champion: Champion | None, load_error: str | None
) -> dict[str, Any]:
    cmp = fitted.comparison
    decision = decide(
        spec.promotion,
        metric=spec.metric_name,
        challenger=cmp.challenger if cmp and cmp.challenger is not None else fitted.score,
        champion_version=champion.version if champion else None,
        champion=cmp.champion if cmp else None,
        champion_error=load_error or (cmp.error if cmp else None),
    )
    return {**decision.to_dict(), "compared_rows": cmp.rows if cmp else None}


def _newer_than(times: np.ndarray | None, last: Any) -> np.ndarray | None:
    """Rows after ``last`` (a champion's newest training time, in JSON form); ``None`` when it
    cannot be told (no time column, or a champion without that record)."""
    if times is None or last is None:
        return None
    try:
        if times.dtype.kind == "M":
            bound = pd.Timestamp(last).to_datetime64().astype(times.dtype)
            return np.asarray(times > bound)
        return np.asarray(times > float(last))
    except (ValueError, TypeError):
        return None


def _load_champion(
    champion: Champion | None, store: ArtifactStore
) -> tuple[Any | None, str | None]:
    """The production model to compare against; a load failure is recorded, not raised."""
    if champion is None:
        return None, None
    try:
        return deserialize(store.get(champion.artifact_sha256)), None
    except Exception as e:
        return None, _oneline(e)


def pooled_fingerprint(table: PartitionedTable) -> str:
    """The fallback's data fingerprint: changes when any partition's does."""
    h = hashlib.blake2b(digest_size=16)
    for key, fp in zip(table.keys, table.fingerprints, strict=True):
        h.update(f"{key}\0{fp}\n".encode())
    return h.hexdigest()


def train_fallback(
    table: PartitionedTable, spec: Spec, store: ArtifactStore, champion: Champion | None = None
) -> Result:
    """One global model over (a sample of) all rows, for unknown and too-small partitions.

    Validated on a time-ordered last 20 % (or a seeded 20 % holdout): the per-partition ``size``
    means nothing for the pooled table.
    """
    n = table.n_rows
    rng = np.random.default_rng(spec.seed)
    idx = np.arange(n)
    idx = idx[~pd.isna(table.y)]  # one partition's missing targets must not sink the fallback
    usable = trainable_rows(table, spec)
    if usable is not None:
        idx = idx[usable[idx]]
    if len(idx) > spec.fallback.max_rows:
        idx = np.sort(rng.choice(idx, spec.fallback.max_rows, replace=False))
    if table.time is not None:
        idx = idx[np.argsort(table.time[idx], kind="stable")]
    pooled = spec.model_copy(
        update={
            "validation": spec.validation.model_copy(
                update={"strategy": "last" if table.time is not None else "holdout", "size": 0.2}
            ),
            "min_rows": 2,
        }
    )
    return train_one(
        _take(table.X, idx),
        table.y[idx],
        pooled,
        store,
        key=FALLBACK_KEY,
        key_values={},
        fingerprint=pooled_fingerprint(table),
        schema=feature_schema(table, spec),
        numeric=[c for c in table.features if c not in table.categorical],
        champion=champion,
    )


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """Grid values as JSON-friendly scalars (numpy scalars and tuples crop up in grids)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, tuple):
            v = list(v)
        elif not isinstance(v, str | int | float | bool | list | dict | type(None)):
            v = repr(v)
        out[k] = v
    return out
