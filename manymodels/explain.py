"""Why this model: what a partition's version learned, beside the scores that chose it.

One view for a person asking "why does store 7 forecast that?": the candidates tried and their
validation scores, the naive baseline's score, and what the chosen estimator weighs —
coefficients for linear models, impurity importances for trees, the probabilities of a
constant model. Used by ``manymodels models show --explain`` and
``GET /v1/partitions/{key}/explain``.

Coefficients are given **per unit of the feature as the user sent it**: a ``scale = true``
candidate is fitted on standardized inputs, and its raw coefficients (per standard deviation)
would rank features by a different yardstick than the one in the user's table; the
``StandardScaler`` is folded back in (``coef / scale``, the intercept shifted by
``coef · mean / scale``) so that ``intercept + Σ coef·x`` is the model's prediction (a
classifier's decision function: a two-class one's log-odds) for a row ``x`` of raw values —
whether the scaler stands alone in front of the estimator or, with a categorical feature, beside
the one-hot encoder in a ``ColumnTransformer``. With one-hot encoded text features the terms are
named as scikit-learn names its output columns (``onehot__store_7``) and stay per unit of that
column: 1 for a row with that value.

Under a ``target_transform`` the estimator never saw the target as the user sent it, so its
weights are in the transformed target's units, and ``units`` says so with the numbers needed
to read them (``scale``: the partition's center and spread; ``difference``: the change from
the previous period). They are not converted: with lag features computed on the transformed
target no per-feature conversion is both exact and short.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from manymodels.feature_schema import FeatureSchema
from manymodels.registry.entities import ModelVersion

Kind = Literal["coefficients", "importances", "constant", "none"]
MAX_TERMS = 50
"""Terms shown, largest first (a one-hot encoded key can give thousands of columns)."""


@dataclass(frozen=True)
class Term:
    """One input column of the estimator and its weight (``cls``: the class, for a
    multi-class linear model, which has one coefficient per feature and class)."""

    feature: str
    value: float
    cls: str | None = None


@dataclass(frozen=True)
class Explanation:
    """A version's scores and what its estimator weighs; ``units`` says how to read a term."""

    key: str
    version: int
    estimator: str
    metric: str
    score: float
    naive_score: float | None
    skill: float | None
    kind: Kind
    units: str
    terms: list[Term] = field(default_factory=list)
    intercept: list[float] = field(default_factory=list)
    n_terms: int = 0
    candidates: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def explain(version: ModelVersion, model: Any) -> Explanation:
    """The explanation of ``version`` whose fitted estimator is ``model`` (as loaded by
    ``Registry.load_model``, i.e. after its digest and signature were checked)."""
    features = [str(f) for f in version.schema.features]
    kind, units, terms, intercept = weights(model, features)
    if kind in ("coefficients", "constant"):
        units += _transformed(version.schema)
    terms.sort(key=lambda t: -abs(t.value))
    return Explanation(
        key=version.key,
        version=version.version,
        estimator=version.estimator,
        metric=version.metric,
        score=version.score,
        naive_score=version.naive_score,
        skill=version.skill,
        kind=kind,
        units=units,
        terms=terms[:MAX_TERMS],
        intercept=intercept,
        n_terms=len(terms),
        candidates=[dict(c) for c in version.candidates],
    )


def weights(model: Any, features: list[str]) -> tuple[Kind, str, list[Term], list[float]]:
    """``(kind, units, terms, intercept)`` of a fitted estimator or scikit-learn Pipeline."""
    shared = _bound_global(model)
    if shared is not None:  # a partition on the run's global model: that model's weights
        features = [*map(str, shared.features), *map(str, shared.keys)]
        kind, units, terms, intercept = weights(shared.estimator, features)
        return kind, units + SHARED, terms, intercept
    estimator, names, fold = _unwrap(model, features)
    coef = getattr(estimator, "coef_", None)
    if coef is not None and np.ndim(coef) in (1, 2):
        return _linear(estimator, np.asarray(coef, dtype=np.float64), names, fold)
    booster = getattr(estimator, "booster_", None)
    if booster is not None and hasattr(booster, "feature_importance"):  # LightGBM
        # its ``feature_importances_`` counts splits; the gain is what impurity reduction is
        gains = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
        total = float(gains.sum())
        values = gains / total if total > 0 else gains
        terms = [Term(n, float(v)) for n, v in zip(names, values, strict=False)]
        units = "share of the trees' gain (sums to 1)" if total > 0 else "no split: no gain"
        return "importances", units, terms, []
    importances = getattr(estimator, "feature_importances_", None)
    if importances is not None:
        values = np.asarray(importances, dtype=np.float64)
        terms = [Term(n, float(v)) for n, v in zip(names, values, strict=False)]
        return "importances", "share of the trees' impurity reduction (sums to 1)", terms, []
    for attribute, name in (("last_", "last value"), ("constant_", "constant")):
        value = getattr(estimator, attribute, None)  # the naive baselines
        if value is not None and np.size(value) == 1:
            terms = [Term(name, float(np.ravel(value)[0]))]
            return "constant", f"the {name} seen in training, whatever the row", terms, []
    proba = getattr(estimator, "proba_", None)
    if proba is not None:  # ConstantProbabilityClassifier: the same answer for every row
        classes = [str(c) for c in getattr(estimator, "classes_", [])]
        terms = [Term("probability", float(p), c) for c, p in zip(classes, proba, strict=False)]
        return "constant", "the probability of each class, whatever the row", terms, []
    why = f"{type(estimator).__name__} exposes neither coefficients nor feature importances"
    return "none", why, [], []


SHARED = (
    "; of the global model every partition on it shares (fitted on all their rows), its key "
    "columns among the features"
)


def _bound_global(model: Any) -> Any:
    """The ``GlobalModel`` a partition's model serves bound to its key (``KeyBound``), or
    ``None``; told by shape, so that an explanation imports no training code."""
    inner = getattr(model, "model", None)
    if type(model).__name__.startswith("KeyBound") and hasattr(inner, "estimator"):
        return inner if hasattr(inner, "keys") and hasattr(inner, "features") else None
    return None


def _transformed(schema: FeatureSchema) -> str:
    """What a weight means under the version's target transform ('' without one)."""
    transform = schema.transform
    if not transform:
        return ""
    from manymodels.lagfeatures import TargetTransform  # pandas: only for such versions

    fitted = TargetTransform.from_json(transform)
    if fitted.kind == "scale":
        return (
            f"; in the scaled target: target = answer × {fitted.spread:.6g} + "
            f"{fitted.center:.6g} (the partition's training spread and mean)"
        )
    if fitted.kind == "difference":
        return "; in the change of the target from the previous period (target_transform)"
    return ""


SCALED = "per unit of the feature as sent (the scaler folded back in)"
ONE_HOT = "; a one-hot column (onehot__<feature>_<value>) is 1 for a row with that value, else 0"


@dataclass(frozen=True)
class _Fold:
    """The estimator's input column ``j`` is ``(x - mean[j]) / scale[j]`` of a value ``x`` as
    the user sent it (a one-hot column: 0 and 1), and ``units`` says so."""

    mean: np.ndarray
    scale: np.ndarray
    units: str


def _unwrap(model: Any, features: list[str]) -> tuple[Any, list[str], _Fold | None]:
    """The final estimator, the names of the columns it was fitted on, and how those columns
    map back to the features as sent when the front of the pipeline is known to be linear in
    them: a lone ``StandardScaler``, or the ``ColumnTransformer`` that ``candidates.build``
    puts in front when the spec has a categorical feature."""
    steps = getattr(model, "steps", None)
    if not steps:
        return model, features, None
    *front, (_, last) = steps
    if len(front) == 1 and type(front[0][1]).__name__ == "StandardScaler":
        mean, scale = _scaling(front[0][1], _width(front[0][1], len(features)))
        return last, features, _Fold(mean, scale, SCALED)
    try:
        names = [str(n) for n in model[:-1].get_feature_names_out(features)]
    except (AttributeError, ValueError, TypeError):  # a user's transformer without names
        names = [f"column {i}" for i in range(_width(last, len(features)))]
        return last, names, None
    return last, names, _columns(front[0][1], len(names)) if len(front) == 1 else None


def _scaling(scaler: Any, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted ``StandardScaler``'s ``(mean, scale)``, as it applies them: ``mean_`` is
    computed under ``with_mean=False`` too but not subtracted, ``scale_`` is ``None`` under
    ``with_std=False``, and neither exists when it was skipped on no column."""
    mean = _attr(scaler, "mean_", 0.0) if getattr(scaler, "with_mean", True) else np.zeros(1)
    scale = _attr(scaler, "scale_", 1.0)
    return np.broadcast_to(mean, (width,)), np.broadcast_to(scale, (width,))


def _columns(pre: Any, width: int) -> _Fold | None:
    """The fold of a ``ColumnTransformer`` made only of one-hot encoders, standard scalers,
    passed-through and dropped columns; ``None`` for anything else, whose output columns
    are then the only units the coefficients have."""
    parts = getattr(pre, "transformers_", None)
    where = getattr(pre, "output_indices_", None)
    if parts is None or where is None:
        return None
    mean, scale = np.zeros(width), np.ones(width)
    scaled = onehot = False
    for name, step, _ in parts:
        out = where[name]
        kind = step if isinstance(step, str) else type(step).__name__
        if kind == "FunctionTransformer" and getattr(step, "func", None) is None:
            kind = "passthrough"  # as a fitted ColumnTransformer holds "passthrough"
        if out.stop <= out.start or kind in ("passthrough", "drop"):
            continue
        if kind == "OneHotEncoder":
            onehot = True
        elif kind == "StandardScaler":
            mean[out], scale[out] = _scaling(step, out.stop - out.start)
            scaled = True
        else:
            return None
    units = SCALED if scaled else "per unit of the feature as sent"
    return _Fold(mean, scale, units + (ONE_HOT if onehot else ""))


def _linear(
    estimator: Any, coef: np.ndarray, names: list[str], fold: _Fold | None
) -> tuple[Kind, str, list[Term], list[float]]:
    rows = coef.reshape(1, -1) if coef.ndim == 1 else coef
    intercept = np.broadcast_to(
        np.asarray(getattr(estimator, "intercept_", 0.0), dtype=np.float64), (rows.shape[0],)
    ).copy()
    units = "per unit of the feature (the model's input column)"
    if fold is not None and rows.shape[1] == fold.mean.shape[0]:
        rows = rows / fold.scale
        intercept = intercept - rows @ fold.mean
        units = fold.units
    classes = [str(c) for c in getattr(estimator, "classes_", [])]
    per_class = rows.shape[0] > 1 and len(classes) == rows.shape[0]
    # two classes, one row: the log-odds of the second (a partition's two of a table's three
    # were told apart nowhere: 'b' over 'a' for one user, 'c' over 'b' for the next)
    of = classes[1:] if rows.shape[0] == 1 and len(classes) == 2 else [None] * rows.shape[0]
    terms = [
        Term(name, float(value), classes[i] if per_class else of[i])
        for i, row in enumerate(rows)
        for name, value in zip(names, row, strict=False)
    ]
    return "coefficients", units, terms, [float(b) for b in intercept]


def _width(estimator: Any, default: int) -> int:
    """How many columns the estimator was fitted on (its coefficients' or importances' size)."""
    n = getattr(estimator, "n_features_in_", None)
    return int(n) if n is not None else default


def _attr(obj: Any, name: str, default: float) -> np.ndarray:
    value = getattr(obj, name, None)
    return np.asarray(default if value is None else value, dtype=np.float64)
