"""A binary classifier's label from its probability: the positive class at or above the
version's threshold (``[decision]``, recorded in its feature schema), the other below.

One rule for every surface that labels rows: the router (``serving.decision``) and batch
scoring (``manymodels.scoring``), so that a ``score`` file and ``/v1/predict`` give a row the
same label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from manymodels.exceptions import DataError
from manymodels.label_matching import same_label


def threshold_classes(
    schema: Any, where: str, model: Any = None, *, error: type[Exception] = DataError
) -> list[Any]:
    """The two classes a threshold asked for chooses between — the router's ``?threshold=``
    on predict and forecast, ``manymodels forecast --threshold`` — or ``error`` naming
    ``where`` (``partition 'k' vN``) for any other version: one check, so each says the same.
    Without ``model`` (before any is loaded) a schema that does not record its classes is
    left to the check with the model."""
    if not schema.classifies or (model is not None and not hasattr(model, "predict_proba")):
        raise error(f"{where} is not a classifier: a threshold needs probabilities")
    known = list(schema.classes or [])
    if not known and model is not None:
        known = np.asarray(model.classes_).tolist()
    if len(known) != 2 and (known or model is not None):
        raise error(
            f"{where} has {len(known)} class{'' if len(known) == 1 else 'es'}: "
            "a threshold labels a binary classifier's rows"
        )
    return known


def check_threshold(threshold: float | None, name: str = "threshold") -> float | None:
    """``threshold`` when it is a probability (0 to 1), else a ``DataError`` worded as the
    router's 422 for ``?threshold=`` (FastAPI's ``ge=0, le=1``; NaN is neither)."""
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float | np.number)
    ):  # '0.5' from Python failed in the comparison: "'<=' not supported between …"
        raise DataError(f"{name}: input should be a number from 0 to 1, not {threshold!r}")
    if threshold is None or 0.0 <= threshold <= 1.0:
        return threshold
    bound = "greater than or equal to 0" if threshold < 0 else "less than or equal to 1"
    raise DataError(f"{name}: input should be {bound} (got {threshold:g})")


def sides(decision: Mapping[str, Any], classes: Sequence[Any]) -> tuple[Any, Any]:
    """The positive and negative class of two: the decision's ``positive``, by default the
    greater (``1``, ``True``, ``"yes"`` over ``"no"``), as ``classes`` spell it: a version
    recorded before date classes were ISO text names ``'2024-01-01 00:00:00'``, which its
    loaded model answers as ``'2024-01-01T00:00:00'`` (``classes.dates_as_text_classes``)."""
    positive = decision.get("positive", classes[-1])
    if positive not in list(classes):
        positive = next((c for c in classes if same_label(c, positive)), positive)
    return positive, classes[0] if positive == classes[-1] else classes[-1]


def thresholded(
    model: Any, X: Any, decision: Mapping[str, Any], proba: Any = None
) -> tuple[np.ndarray, float] | None:
    """The labels of ``X`` at the decision's threshold, and the threshold; ``None`` for a
    model that is not a binary classifier with probabilities. ``proba``: the model's
    ``predict_proba(X)`` when the caller has it already (a scored table's probability
    columns), so the rows are not run through the model twice."""
    classes = np.asarray(getattr(model, "classes_", []))
    if len(classes) != 2 or not hasattr(model, "predict_proba") or "threshold" not in decision:
        return None
    return from_probabilities(model.predict_proba(X) if proba is None else proba, classes, decision)


def from_probabilities(
    proba: Any,
    columns: Any,
    decision: Mapping[str, Any],
    *,
    among: Sequence[Any] | None = None,
    threshold: float | None = None,
) -> tuple[np.ndarray, float]:
    """The labels of rows whose probabilities (a column per class of ``columns``) are
    ``proba``, and the threshold: ``threshold``, else the decision's. ``among``: the two
    classes to choose between, as given (the router's: its version's JSON classes), else
    ``columns``, in their dtype (a scored table's column)."""
    columns = np.asarray(columns)
    pair = list(among) if among is not None else columns.tolist()
    positive, negative = sides(decision, pair)
    at = np.flatnonzero(columns == positive)
    proba = np.asarray(proba, dtype=np.float64)
    p = proba[:, at[0]] if len(at) else np.zeros(len(proba))
    t = float(threshold if threshold is not None else decision["threshold"])
    labels = np.asarray([negative, positive], dtype=object if among is not None else columns.dtype)
    return labels[np.where(p >= t, 1, 0)], t
