"""Which class of a binary table is the positive one: the ``[decision]`` threshold's, and the
one the spec's ``f1``, ``precision``, ``recall``… count (scikit-learn's ``pos_label``).

One answer for both, from ``[decision] positive``: scikit-learn's default ``pos_label=1``
refused every table of two text labels (``"churn"``/``"stay"``) chosen by those metrics.
"""

from __future__ import annotations

from typing import Any

from manymodels.classes import ClassPrior
from manymodels.exceptions import SpecError
from manymodels.label_matching import KnownClasses, label
from manymodels.spec import Decision, Spec

POSITIVE_METRICS = frozenset({"f1", "precision", "recall", "jaccard", "average_precision"})
"""scikit-learn's scorers that count one class of two as positive (``pos_label``, 1 unless
told): on ``"churn"``/``"stay"`` they refused the table."""


_NATURAL = ({0, 1}, {-1, 1})
"""Two labels by value whose positive class (1) goes without saying."""


def metric_positive(spec: Spec, prior: ClassPrior) -> Any:
    """The class the spec's metric counts as positive (scikit-learn's ``pos_label``): the
    ``[decision]``'s positive class, named or by default the greater; ``None``
    (scikit-learn's 1) when the metric counts none, the table is not binary or the spec has
    no ``[decision]`` and a label is 1. Text labels without a named positive: a
    ``SpecError`` naming what to set.

    With a ``[decision]`` and labels 1 and 2 the threshold is on 2 (the greater): a metric
    counting 1 chose each partition's model for the other class than the one it labels."""
    if spec.metric_name not in POSITIVE_METRICS or not prior.binary:
        return None
    if spec.decision is not None and (
        spec.decision.positive is not None or not all(isinstance(c, str) for c in prior.labels)
    ):
        return prior.classes[positive_at(spec.decision, prior)]
    if any(c == 1 for c in prior.labels if not isinstance(c, str)):
        return None
    a, b = (repr(c) for c in prior.labels)
    raise SpecError(
        f"metric '{spec.metric_name}' counts one class as positive and the labels {a}, {b} "
        f"hold no 1: name it in the spec, [decision] positive = {a} (or {b}) beside threshold "
        f'= "f1" (or "cost")'
    )


def positive_at(decision: Decision, prior: ClassPrior) -> int:
    """Which of the table's two classes is the decision's positive one: ``positive``, by
    value (``1`` is the class ``1.0`` of a column read with blanks), else the greater."""
    if decision.positive is None:
        return len(prior.classes) - 1
    found = KnownClasses(prior.labels).matching(decision.positive)
    if len(found) != 1:
        raise SpecError(
            f"[decision] positive = {decision.positive!r} is not one of the table's classes "
            f"({KnownClasses(prior.labels).shown})"
        )
    return prior.labels.index(found[0])


def absent_positive(spec: Spec, prior: ClassPrior) -> str | None:
    """A warning when ``[decision] positive`` names a class a table of one class lacks (with
    two it is refused, ``positive_at``; more than two are warned of in ``manymodels.data``,
    the decision being ignored): a month without churners (every label ``"stay"``) is
    plausible data, but a misspelt class would otherwise pass silently."""
    decision = spec.decision
    if decision is None or decision.positive is None or len(prior.classes) != 1:
        return None
    known = KnownClasses(prior.labels)
    if known.matching(decision.positive):
        return None
    return (
        f"[decision] positive = {decision.positive!r} is not one of the table's classes "
        f"({known.shown}): no version of this run is labelled by a threshold"
    )


def implied_positive(spec: Spec, prior: ClassPrior) -> str | None:
    """A warning when a binary table's ``[decision]`` names no ``positive`` and its labels
    have no natural one: the greater label was thresholded as the positive class without a
    word (``"stay"`` over ``"churn"``, the later of two dates), where the user meant the
    other as often as not. Labels 0/1, -1/1 (a margin classifier's, libsvm's files) and
    False/True take 1/True, as everyone reads them: -1/1 warned at every run of its spec."""
    decision = spec.decision
    if decision is None or decision.positive is not None or not prior.binary:
        return None
    labels = prior.labels
    natural = label(labels[-1]) == 1 and {label(c) for c in labels} in _NATURAL
    if all(isinstance(c, bool) for c in labels) or natural:  # text "+1" sorts before "-1"
        return None
    other, taken = (repr(c) for c in labels)
    return (
        f"[decision] names no positive class: {taken} (the greater of {other}, {taken}) is "
        f"taken as positive, its probability thresholded; to choose, set [decision] "
        f"positive = {taken} (or {other})"
    )


def positive_warnings(spec: Spec, prior: ClassPrior) -> list[str]:
    """What a run says, without refusing it, of the ``[decision]``'s positive class."""
    said = (absent_positive(spec, prior), implied_positive(spec, prior))
    return [warning for warning in said if warning]
