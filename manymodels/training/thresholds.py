"""The decision threshold that turns a classifier's probability of the positive class into a
label, per partition: chosen on its validation rows by the spec's ``[decision]`` rule (F1, or
the costs of a false positive and a false negative), or the global one where a partition has
too few positives to choose on.

Apart from ``training.classify`` (lopsided classes: constant models, metrics defined on any
window) because a threshold is a decision made after a model is chosen, with rules of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from manymodels.classes import ClassPrior
from manymodels.spec import Decision
from manymodels.training.classify import aligned_proba
from manymodels.training.positive_class import positive_at
from manymodels.training.splits import Frames, Split, frames_of


def threshold(
    decision: Decision,
    prior: ClassPrior,
    fits: Sequence[Any],
    splits: Sequence[Split],
    X: Any,
    y: np.ndarray,
    *,
    constant: bool = False,
    frames: Frames | None = None,
) -> dict[str, Any]:
    """The partition's decision threshold on the positive class's probability, chosen on its
    validation rows (``chosen_on = "validation"``), or the global one when they hold fewer
    than ``min_positives`` positives or the model is constant (``chosen_on = "global"``).
    ``frames`` (``Folds.rows``): the validation frames selection scored."""
    at = positive_at(decision, prior)
    positive = prior.classes[at]
    rule = decision.threshold
    out: dict[str, Any] = {"rule": rule, "positive": prior.labels[at]}
    if rule == "cost":
        out["cost"] = {"fp": decision.cost.fp, "fn": decision.cost.fn}
    p_parts, y_parts = [], []
    frame = frames_of(X, frames)
    for (_, va), est in zip(splits, fits, strict=True):
        p_parts.append(aligned_proba(est, frame(va), prior.classes)[:, at])
        y_parts.append(np.asarray(y[va]) == positive)
    p, truth = np.concatenate(p_parts), np.concatenate(y_parts)
    positives = int(truth.sum())
    out["positives"] = positives
    if constant or positives < decision.min_positives or positives == len(truth):
        return out | {"threshold": global_threshold(decision, prior), "chosen_on": "global"}
    return out | {"threshold": best_threshold(decision, p, truth), "chosen_on": "validation"}


def global_threshold(decision: Decision, prior: ClassPrior) -> float:
    """The threshold without a partition's evidence (see ``manymodels.spec.Decision``)."""
    if decision.threshold == "cost":
        return decision.cost.fp / (decision.cost.fp + decision.cost.fn)
    rate = float(prior.rates[positive_at(decision, prior)])
    return rate / (1 + rate)


def best_threshold(decision: Decision, p: np.ndarray, truth: np.ndarray) -> float:
    """The probability ``t`` (label positive when ``p ≥ t``) that scores best on these rows.

    Every ``t`` between a validation probability and the next lower one labels the rows
    alike; the midpoint is taken, so a new row is not labelled by which side of a validation
    row it happens to fall. Among equally good labellings, the highest threshold wins."""
    cuts = np.unique(p)[::-1]  # descending: each cut labels one more group positive
    p_sorted = np.sort(p)[::-1]
    t_sorted = truth[np.argsort(-p, kind="stable")]
    tp, fp = np.cumsum(t_sorted), np.cumsum(~t_sorted)
    last = np.searchsorted(-p_sorted, -cuts, side="right") - 1  # last row with p ≥ cut
    tp_at, fp_at = tp[last], fp[last]
    fn_at = int(truth.sum()) - tp_at
    if decision.threshold == "cost":
        value = -(decision.cost.fp * fp_at + decision.cost.fn * fn_at)
    else:
        value = 2 * tp_at / np.maximum(2 * tp_at + fp_at + fn_at, 1)
    i = int(np.argmax(value))
    return float(cuts[i] + cuts[i + 1]) / 2 if i + 1 < len(cuts) else float(cuts[i])
