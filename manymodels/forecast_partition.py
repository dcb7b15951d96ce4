"""One partition's forecast steps: its model's predictions of each step, and their labels at a
threshold — the code ``forecast`` runs for each partition of a chunk and the router's forecast
route runs for one.

Kept apart from ``manymodels.forecasting``, which selects the versions, loads the models a chunk at
a time and assembles the output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from manymodels.exceptions import DataError
from manymodels.feature_schema import FeatureSchema
from manymodels.features import assemble, feature_kinds
from manymodels.forecast_output import Labels
from manymodels.forecast_steps import Steps
from manymodels.labels import thresholded
from manymodels.lagfeatures import LagPlan, TargetTransform, step_features
from manymodels.step_columns import StepColumns


def labelled_steps(
    model: Any,
    schema: FeatureSchema,
    steps: Steps,
    p: int,
    horizon: int,
    *,
    decide: bool = True,
    threshold: float | None = None,
    inputs: list[Any] | None = None,
) -> tuple[np.ndarray, Labels | None]:
    """The predictions of partition ``p``'s steps, and their labels when the version has a
    ``[decision]`` (each step's input labelled by ``labels.thresholded``, the rule the router
    and ``score`` label rows by; the predicted class, not the label, feeds a recursive
    forecast's lags, as it fed training's). Target lags and rolling statistics come from
    ``lagfeatures.step_features`` on the recorded history — the code training used. One
    ``predict`` for all steps when no feature reads a prediction (no target features, or every
    lag ≥ ``horizon``: direct); otherwise one per step, each prediction appended to the history
    for the next steps' features (recursive). ``threshold``: label at it instead of the
    version's own (the router's ``?threshold=``), also for a version without a ``[decision]``
    (its positive class the greater, as ``/v1/predict`` labels). ``inputs``: a list the
    model's input of every step is appended to (for the caller's probabilities)."""
    inputs = [] if inputs is None else inputs  # the model's input of every step, for labels
    pred = _steps(model, schema, steps, p, horizon, inputs)
    rule = dict(schema.decision or {}) | ({} if threshold is None else {"threshold": threshold})
    if not (decide and rule):
        return pred, None
    found = [thresholded(model, X, rule) for X in inputs]
    got = [f for f in found if f is not None]
    if len(got) < len(found):  # not a binary classifier with probabilities
        return pred, None
    return pred, (np.concatenate([f[0] for f in got]), got[0][1])


def _steps(
    model: Any, schema: FeatureSchema, steps: Steps, p: int, horizon: int, inputs: list[Any]
) -> np.ndarray:
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
        inputs.append(assemble(schema, values, text))
        return _predict(model, inputs[-1], horizon)

    assert schema.history is not None  # unforecastable refused it
    recent = np.array([[np.nan if v is None else float(v) for v in schema.history.target]])
    if plan.direct:
        for s in range(horizon):
            features = step_features(recent, plan, s + 1)[0]
            for j, d in target_at:
                values[s, j] = features[d]
        inputs.append(assemble(schema, values, text))
        return _untransformed(_predict(model, inputs[-1], horizon), schema)

    lag_inputs = [j for j, _ in target_at]
    split = StepColumns.of(model, list(schema.features), lag_inputs) if text else None
    Z = None if split is None else split.transformed(assemble(schema, values, text))
    out = []
    for s in range(horizon):
        features = step_features(recent, plan, 1)[0]
        for j, d in target_at:
            values[s, j] = features[d]
        row = assemble(schema, values[s : s + 1], {j: t[s : s + 1] for j, t in text.items()})
        inputs.append(row)
        if split is not None and Z is not None:  # the steps' text was transformed once
            split.put(Z, s, values[s])
            pred = _predict(split.estimator, Z[s : s + 1], 1)[0]
        else:
            pred = _predict(model, row, 1)[0]
        out.append(pred)
        recent = np.append(recent, [[float(pred)]], axis=1)
    return _untransformed(np.asarray(out), schema)


def _untransformed(predictions: np.ndarray, schema: FeatureSchema) -> np.ndarray:
    """Predictions of a model fitted on a transformed target, in the target's units again."""
    transform = schema.transform
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
