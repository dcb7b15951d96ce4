"""Global candidates: one model per run over every partition's rows, chosen per partition.

A candidate with ``scope = "global"`` is fitted once per grid point, before the chunks (a
task per validation fold and one for the refit: ``global_tasks``), on the training rows of
all partitions, the ``partition_by`` columns added as categorical features with a fixed
category list. Each partition's validation rows — the same ``validation_splits`` its local
candidates use — are left out of that fit and predicted in one call; the predictions travel
to each chunk as a slice, where the partition scores them with its own metric beside its
local candidates (``select.fit_partition``, ``training.external``). The model is then refitted
on all rows and stored once; every version that chose it references the same sha256, so ``gc``
keeps it while any does.

A version that chose it records ``feature_schema["global"] = {"key": …}`` (read as
``FeatureSchema.bound``); every loader
(``Registry.load_artifact``, batch scoring, forecasting, the router) binds the stored
``GlobalModel`` to that key with ``bind_key``, so clients never send key columns.

The pooled fallback (``training.fallback``) is the degenerate case — no key columns, one
pooled holdout, scored on no partition — and keeps its own small module.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from manymodels import candidates as cands
from manymodels.artifacts import ArtifactStore, deserialize
from manymodels.exceptions import error_text
from manymodels.global_members import GlobalModels
from manymodels.partition import PartitionedTable
from manymodels.spec import Candidate, Spec
from manymodels.timefeatures import later_than
from manymodels.training.booster_input import booster_predict, booster_proba
from manymodels.training.classify import over_classes
from manymodels.training.global_folds import fold_rows

NATIVE_CATEGORICAL = ("lightgbm.",)
"""Estimators that split on pandas ``category`` columns themselves: no one-hot encoder."""


def native_categorical(candidate: Candidate) -> bool:
    return candidate.estimator.startswith(NATIVE_CATEGORICAL)


class GlobalLoader:
    """A chunk's global models, read from the store once each, bound to a key on demand.

    A bound model knows its sha256 — so an ensemble stores it by reference
    (``manymodels.global_members``) — only when it was stored in ``format``, the one the chunk
    writes: a skops ensemble never depends on a pickle (a registry that comes to trust only
    skops would refuse it); one in another format is copied into the ensemble instead."""

    def __init__(self, store: ArtifactStore, format: str = "pickle") -> None:
        self.models = GlobalModels(store.get, store.formats)
        self.format = format

    def __call__(self, sha256: str, key: Mapping[str, Any]) -> KeyBound:
        model = self.models(sha256)
        same = self.models.format(sha256) == self.format
        return bound(model, key, sha256 if same else None)


class GlobalModel(BaseEstimator):
    """An estimator over every partition's rows, the key columns as categorical features.

    ``predict(X, keys)`` takes the partition's usual input (a float64 matrix or a frame of its
    features) and the key values per row (one sequence per key column); the frame the inner
    estimator sees has the features, then the keys, categorical columns as pandas categories
    over the category lists fixed at fit time (an unseen key becomes a missing category)."""

    def __init__(
        self,
        estimator: Any = None,
        features: Sequence[str] = (),
        categorical: Sequence[str] = (),
        keys: Sequence[str] = (),
    ) -> None:
        self.estimator = estimator
        self.features = features
        self.categorical = categorical
        self.keys = keys

    def frame(self, X: Any, keys: Sequence[Sequence[Any]]) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            df = X.loc[:, list(self.features)].reset_index(drop=True)
        else:
            df = pd.DataFrame(np.asarray(X, dtype=np.float64), columns=list(self.features))
        cats: Mapping[str, list[Any]] = getattr(self, "categories_", {})
        for name in self.categorical:
            df[name] = _categorical(df[name].tolist(), cats.get(name))
        for name, values in zip(self.keys, keys, strict=True):
            # straight from the key values (an object array a row, ``row_keys``) to the
            # categorical: through a column and a list of every row it cost ~10 % of a global
            # LightGBM fit's time
            column = np.empty(len(df), dtype=object)
            column[:] = values if len(values) == len(df) else list(values) * len(df)
            df[name] = _categorical(column, cats.get(name))
        return df

    def fit(self, X: Any, y: Any, keys: Sequence[Sequence[Any]] = ()) -> GlobalModel:
        self.categories_ = {}
        df = self.frame(X, keys)
        self.categories_ = {
            name: [c for c in df[name].cat.categories.tolist()]
            for name in (*self.categorical, *self.keys)
        }
        for name, categories in self.categories_.items():  # as ``frame`` builds them from now on
            df[name] = pd.Categorical.from_codes(df[name].cat.codes, categories=categories)
        self.estimator.fit(df, y)
        self.classes_ = getattr(self.estimator, "classes_", None)
        return self

    def predict(self, X: Any, keys: Sequence[Sequence[Any]] = ()) -> np.ndarray:
        fast = booster_predict(self, X, keys)  # LightGBM: the frame's bits, without the frame
        if fast is not None:
            return fast
        return np.asarray(self.estimator.predict(self.frame(X, keys)))

    def predict_proba(self, X: Any, keys: Sequence[Sequence[Any]] = ()) -> np.ndarray:
        fast = booster_proba(self, X, keys)
        if fast is not None:
            return fast
        return np.asarray(self.estimator.predict_proba(self.frame(X, keys)))


def _categorical(values: list[Any] | np.ndarray, categories: list[Any] | None) -> pd.Categorical:
    """``values`` over fixed ``categories``; one not among them (a key the model never saw)
    is missing, which LightGBM routes as missing and a one-hot encoder ignores.

    Without ``categories`` they are ``pd.Categorical(list(values))``'s — its dtype and order,
    inferred from the distinct values alone — and the rows are coded by hashing once, not by
    pandas' inference over a list of every row."""
    if categories is None:
        codes, distinct = pd.factorize(np.asarray(values, dtype=object))
        inferred = pd.Categorical(list(distinct)).categories
        where = inferred.get_indexer(pd.Index(distinct, dtype=object))
        at = np.append(where, -1)[codes]  # a missing value (code -1) stays missing
        return pd.Categorical.from_codes(at, categories=inferred)
    codes = pd.Index(categories, dtype=object).get_indexer(pd.Index(values, dtype=object))
    return pd.Categorical.from_codes(codes, categories=categories)


class KeyBound:
    """A ``GlobalModel`` serving one partition: its key values go in with every row.

    Built by the loaders, never stored: the artifact stays one, shared by every version (an
    ensemble's artifact names it by ``sha256``: ``manymodels.global_members``)."""

    def __init__(
        self, model: GlobalModel, key: Mapping[str, Any], sha256: str | None = None
    ) -> None:
        self.model = model
        self.key = dict(key)
        self.sha256 = sha256  # the stored global model's, where the loader knows it
        self._keys = [[self.key.get(name)] for name in model.keys]

    def predict(self, X: Any) -> np.ndarray:
        return self.model.predict(X, self._keys)


class KeyBoundClassifier(KeyBound):
    """A bound global classifier: probabilities over the global model's classes."""

    def __init__(
        self, model: GlobalModel, key: Mapping[str, Any], sha256: str | None = None
    ) -> None:
        super().__init__(model, key, sha256)
        self.classes_ = model.classes_

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.model.predict_proba(X, self._keys)


def bind_key(model: Any, binding: Mapping[str, Any] | None) -> Any:
    """``model`` as a version serves it: a global model bound to the key values its schema
    records (``FeatureSchema.bound``, ``None`` for a version of its own model)."""
    if isinstance(model, GlobalModel) and binding is not None:
        return bound(model, binding["key"])
    return model


def bound(model: GlobalModel, key: Mapping[str, Any], sha256: str | None = None) -> KeyBound:
    if getattr(model, "classes_", None) is not None:
        return KeyBoundClassifier(model, key, sha256)
    return KeyBound(model, key, sha256)


@dataclass(frozen=True)
class GlobalFit:
    """One global grid point: its artifact and its predictions of every validation row
    (``val_pred``, aligned to the table's rows: NaN — or a row of NaN probabilities — for rows
    no partition validates on). ``error`` when it could not be fitted."""

    label: str
    estimator: str
    params: dict[str, Any]
    sha256: str | None = None
    size: int = 0
    val_pred: np.ndarray | None = None
    seconds: float = 0.0
    error: str | None = None
    rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    transform: str | None = None  # the target transform it learnt (set by the run's phase)
    through: str | int | float | None = None
    """The latest time of the rows it was fitted on (``None`` without a time column): a
    retrain of named partitions judges it only on validation rows after it."""
    unscored: str | None = None
    """Why a run's fit left some partitions' validation rows unpredicted (an early cutoff's
    fit that failed: ``global_tasks.run_task``), said among their versions' candidates."""
    own_pred: dict[int, np.ndarray] = field(default_factory=dict)
    """Per validation fit (its first fold), its predictions of the partitions' own training
    rows of the folds it predicts, aligned to the table's rows, NaN elsewhere: a
    prior-shifted partition's reference rates (``training.shifted``). Empty unless the spec
    asks for the shift, and for a stored model rescored (``rescore_global``)."""


def global_candidates(spec: Spec) -> list[tuple[Candidate, dict[str, Any]]]:
    """Every (candidate, grid point) with ``scope = "global"``: one fit each per run."""
    return [(c, p) for c in spec.candidates if c.scope == "global" for p in cands.grid(c)]


def row_keys(table: PartitionedTable, rows: Any) -> list[Any]:
    """The key values of table ``rows``, one array per key column."""
    which = np.repeat(np.arange(len(table.keys)), np.diff(table.offsets))[rows]
    out: list[Any] = []
    for j in range(len(table.key_values[0]) if table.key_values else 0):
        values = np.empty(len(table.key_values), dtype=object)
        values[:] = [kv[j] for kv in table.key_values]
        out.append(values[which])
    return out


def build_model(
    candidate: Candidate, params: dict[str, Any], table: PartitionedTable, spec: Spec
) -> Any:
    keys = list(spec.partition_by)
    numeric = [c for c in table.features if c not in table.categorical]
    if native_categorical(candidate):
        inner = cands.build(candidate, params, seed=spec.seed)
    else:
        inner = cands.build(
            candidate, params, categorical=[*table.categorical, *keys], numeric=numeric,
            seed=spec.seed,
        )  # fmt: skip
        _require_dense_fits(candidate, inner, table)
    return GlobalModel(inner, list(table.features), list(table.categorical), keys)


DENSE_LIMIT = 2 * 1024**3
"""Bytes of one-hot input a global model may hand, dense, to an estimator that takes no
sparse input (HistGradientBoosting): beyond it the fit is refused with a reason rather than
left to exhaust the worker's memory."""


def _require_dense_fits(candidate: Candidate, model: Any, table: PartitionedTable) -> None:
    """Refuse (``ValueError``: the global fit's error) a model whose key columns would one-hot
    encode to a dense matrix past ``DENSE_LIMIT``: 100,000 partitions are 100,000 columns."""
    steps = getattr(model, "steps", None)
    if not table.key_values or cands.takes_sparse(steps[-1][1] if steps else model):
        return
    levels = sum(len({kv[j] for kv in table.key_values}) for j in range(len(table.key_values[0])))
    width = levels + len(table.features)
    size = table.n_rows * width * 8
    if size > DENSE_LIMIT:
        raise ValueError(
            f"{candidate.estimator} takes no sparse input, and the {levels:,} key values would "
            f"one-hot encode to a dense {table.n_rows:,} × {width:,} matrix "
            f"({size / 1024**3:.1f} GiB): use lightgbm.LGBMRegressor (or LGBMClassifier), "
            "which splits on the keys as categories"
        )


def rescore_global(
    table: PartitionedTable,
    spec: Spec,
    store: ArtifactStore,
    record: Mapping[str, Any],
    seen: Mapping[str, Any] | None = None,
) -> GlobalFit:
    """A stored global model (``record``: a run's ``options["global"]`` entry) predicting
    ``table``'s validation rows, never refitted: retraining one partition scores the current
    global model on its new rows beside freshly fitted local candidates.

    Only rows it was not fitted on are predicted: it was refitted on every row of its run, so
    a validation row it saw is one it learnt, and its score there is in-sample (a retrain on
    the same rows chose it and promoted it). ``seen`` is each partition's last time in that
    run (``SqlStore.last_times``); a partition without one (new since, or not trained then)
    takes the latest time of the whole fit (``through``). A fold holding a row it saw leaves
    the model unscored for its partition; so does a table without a time column."""
    started = time.perf_counter()
    label, estimator, params = record["label"], record["estimator"], dict(record["params"])
    try:
        model = deserialize(store.get(record["sha256"]), store.formats)
        if not isinstance(model, GlobalModel):
            raise TypeError(f"artifact {record['sha256'][:12]} is not a global model")
        if list(model.features) != list(table.features):  # it reads columns by position
            raise ValueError(
                f"it was fitted on the features {list(model.features)}, and this spec gives "
                f"{list(table.features)}: a full run fits it again"
            )
        _, folds = fold_rows(table, spec)
        val = empty_predictions(table, spec)
        unseen = unseen_rows(table, record.get("through"), seen or {})
        for _, valid in folds:
            fresh = valid[unseen[valid]]
            if len(fresh):
                predict_into(val, model, table, fresh)
    except Exception as e:
        return GlobalFit(label, estimator, params, error=error_text(e))
    seconds = time.perf_counter() - started
    return GlobalFit(label, estimator, params, record["sha256"], record["size"], val, seconds)


def unseen_rows(
    table: PartitionedTable, through: str | int | float | None, seen: Mapping[str, Any]
) -> np.ndarray:
    """Which of ``table``'s rows come after those a global model was fitted on: each
    partition's after its own last time there (``seen``), else after ``through``; none
    without a time column, or for a partition with neither."""
    if table.time is None:
        return np.zeros(table.n_rows, dtype=bool)
    cutoffs = [seen.get(key, through) for key in table.keys]  # ``None``: neither is known
    return later_than(table.time, table.offsets, cutoffs)


def empty_predictions(table: PartitionedTable, spec: Spec) -> np.ndarray:
    """NaN predictions of every row (a row of NaN probabilities for a classifier)."""
    if spec.task != "classification":
        return np.full(table.n_rows, np.nan)
    return np.full((table.n_rows, len(_classes(table))), np.nan)


def _classes(table: PartitionedTable) -> np.ndarray:
    prior = table.extra.get("class_prior")
    return np.asarray(prior.classes) if prior is not None else np.unique(table.y)


def predict_into(val: np.ndarray, model: GlobalModel, table: PartitionedTable, rows: Any) -> None:
    X, keys = take_rows(table.X, rows), row_keys(table, rows)
    if val.ndim == 2:
        val[rows] = over_classes(model.predict_proba(X, keys), model.classes_, _classes(table))
    else:
        val[rows] = model.predict(X, keys)


def take_rows(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]
