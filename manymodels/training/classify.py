"""Classification per partition where real data is lopsided: partitions whose training rows
hold one class, validation windows on which the spec's metric is undefined, and the decision
threshold that turns a probability into a label (``training.thresholds``).

* A partition whose rows — or the training rows of one of its validation splits — hold one
  class cannot fit a classifier (``LogisticRegression`` refuses) and cannot be compared with
  one: it serves a ``ConstantProbabilityClassifier`` smoothed toward the table's class rates.
* On a validation window of one class only ``accuracy`` keeps its meaning (``roc_auc`` is
  undefined, ``f1`` and ``log_loss`` are degenerate or refuse): the partition is decided by the
  spec's ``[selection] fallback_metric`` instead, computed here over the table's classes so it
  is defined on any window, and the version records which metric decided.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from manymodels.candidates import ConstantProbabilityClassifier
from manymodels.classes import ClassPrior
from manymodels.exceptions import DataError, SpecError, first_line
from manymodels.spec import Calibration, Spec
from manymodels.training.metrics import Metric, metric
from manymodels.training.positive_class import metric_positive, positive_at
from manymodels.training.splits import Frames, Split, frames_of, take
from manymodels.warning_capture import captured

FALLBACK_METRICS = {"log_loss": "neg_log_loss", "brier": "neg_brier_score", "accuracy": "accuracy"}
_EPS = float(np.finfo(np.float64).eps)  # the clipping scikit-learn's log_loss uses


def aligned_proba(model: Any, X: Any, classes: np.ndarray) -> np.ndarray:
    """``predict_proba`` with one column per class of the table (0 for a class the model never
    saw), in the table's class order."""
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    return over_classes(proba, model.classes_, classes)


def over_classes(proba: np.ndarray, model_classes: Any, classes: np.ndarray) -> np.ndarray:
    """``proba`` (a column per class of ``model_classes``) as a column per class of
    ``classes``, 0 for a class the model never saw: a local fit's and a global model's
    validation probabilities are scored over the same columns."""
    out = np.zeros((proba.shape[0], len(classes)))
    for j, c in enumerate(np.asarray(model_classes)):
        hit = np.flatnonzero(classes == c)
        if len(hit):
            out[:, hit[0]] = proba[:, j]
    return out


def log_loss(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Mean negative log probability of the true class (clipped as scikit-learn clips)."""
    idx = np.searchsorted(classes, y)
    p = proba[np.arange(len(y)), idx]
    return float(-np.mean(np.log(np.clip(p, _EPS, 1.0))))


def brier(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Mean squared distance of the probabilities from the one-hot truth, halved: for two
    classes this is scikit-learn's ``brier_score_loss`` of the positive class."""
    onehot = (y[:, None] == classes[None, :]).astype(np.float64)
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)) / 2)


class ProbaMetric(Metric):
    """A metric defined on any validation window, one class or many (greater is better)."""

    def __init__(self, option: str, classes: np.ndarray) -> None:
        self.name = FALLBACK_METRICS[option]
        self.option = option
        self.classes = classes

    def __call__(self, estimator: Any, X: Any, y: np.ndarray) -> float:
        if self.option == "accuracy":
            return float(np.mean(np.asarray(estimator.predict(X)) == y))
        proba = aligned_proba(estimator, X, self.classes)
        y = np.asarray(y)
        if self.option == "brier":
            return -brier(y, proba, self.classes)
        return -log_loss(y, proba, self.classes)


class TableMetric(Metric):
    """The spec's proper scoring rule (``neg_log_loss``, ``neg_brier_score`` and their skill
    scores ``d2_log_loss_score``, ``d2_brier_score``) as scikit-learn
    computes it, over the table's classes: a fit's probabilities are aligned to them first
    (``aligned_proba``, 0 for a class its training rows never held). scikit-learn's own scorer
    takes the model's columns as the classes, so a window holding a class the model never saw
    (a class first seen in the newest rows, a champion trained before it existed) and a model
    answering a class the window lacks (the smoothed constant of a three-class table on a
    two-class partition) were refused: the partition failed, the champion "could not be
    evaluated" and was kept at every retrain, and the naive baseline went unscored. Passing
    the classes also names the positive one of two text labels, which scikit-learn's Brier
    scorers otherwise refuse ("pos_label is not specified")."""

    def __init__(self, name: str, classes: np.ndarray) -> None:
        self.name = name
        self.classes = classes

    def __call__(self, estimator: Any, X: Any, y: np.ndarray) -> float:
        from sklearn import metrics

        rule, sign = _PROPER_RULES[self.name]
        proba = aligned_proba(estimator, X, self.classes)
        return sign * float(getattr(metrics, rule)(np.asarray(y), proba, labels=self.classes))


def spec_metric(spec: Spec, prior: ClassPrior) -> Metric:
    """The metric that scores a classifier's fits by the spec's ``metric``: a proper scoring
    rule over the table's classes (``TableMetric``), any other as scikit-learn scores it,
    counting ``[decision] positive`` as the positive class where it counts one."""
    name = spec.metric_name
    if name in PROPER:
        return TableMetric(name, prior.classes)
    return metric(name, metric_positive(spec, prior))


PROBE_CLASSES = 10
"""Classes the metric is tried on: what fails on many classes fails on ten (multiclass is
multiclass), and a one-vs-one AUC costs classes² (21 s at 100)."""


def refuse_unscorable_metric(
    spec: Spec,
    prior: ClassPrior,
    y: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
    *,
    source: str = "the table",
) -> None:
    """``SpecError`` when the spec's metric cannot score the table's labels, before anything is
    written.

    Whether it can depends on the labels, not the spec alone: ``neg_mean_absolute_error`` on
    ``"yes"``/``"no"``, ``f1`` on labels without a ``1``, ``roc_auc`` on three classes. Found
    partition by partition, such a run failed those whose validation rows held every class
    (which ones depended on their class counts), then the fallback model, and left the registry
    half-written. The metric is tried here, as training calls it, on a classifier that gets
    one row of each class right (at most ``PROBE_CLASSES``), and refused only where some model
    of the run will meet every class: the fallback (pooled rows), a two-class table's two-class
    partitions, or a partition of ``y`` (by ``offsets``) holding every class. A table of three
    classes whose partitions each hold two trained with ``roc_auc`` and no fallback, and still
    does; metrics that fail on two classes but not three are left to the partitions."""
    if spec.decision is not None and prior.binary:
        positive_at(spec.decision, prior)  # a positive class the table lacks: before any work
    if len(prior.classes) < 2:  # one class: every partition is constant, no metric decides
        return
    if not (spec.fallback.enabled or _every_class_somewhere(prior, y, offsets)):
        return
    from sklearn.neighbors import KNeighborsClassifier

    tried = prior.classes[:PROBE_CLASSES]
    X = np.arange(len(tried), dtype=np.float64).reshape(-1, 1)
    name = spec.metric_name
    n, text = len(prior.labels), all(isinstance(c, str) for c in prior.labels)
    shown = ", ".join(repr(c) for c in prior.labels[:5]) + (", …" if n > 5 else "")
    try:  # labels no classifier takes (``True`` beside ``0``, ints past int64) were blamed
        # on the metric, "use a classification metric such as 'accuracy'" to an accuracy spec
        model = KNeighborsClassifier(n_neighbors=1).fit(X, tried)  # each row's own class
    except (ValueError, TypeError) as e:
        said = first_line(e).split(". ")[0].rstrip(".")  # not "Maybe … a regression target"
        raise DataError(
            f"{source}: target '{spec.target}' holds labels no classifier takes ({n} classes: "
            f"{shown}): {said}; give every label as text or every one as a whole number of one "
            "kind"
        ) from None
    try:  # as training scores (``spec_metric``): neg_brier_score of text labels was refused
        with captured():  # dropped: one row a class, a perfect score (zero division…)
            spec_metric(spec, prior)(model, X, tried)
    except (ValueError, TypeError) as e:
        instead, why = ("roc_auc" if n == 2 else "roc_auc_ovr"), first_line(e).rstrip(".")
        raise SpecError(
            f"metric '{name}' cannot score this table's labels "
            f"({n} {'text labels' if text else 'classes'}: {shown}): {why}; use a "
            f"classification metric such as 'accuracy', 'neg_log_loss' or '{instead}'"
        ) from None


def _every_class_somewhere(
    prior: ClassPrior, y: np.ndarray | None, offsets: np.ndarray | None
) -> bool:
    """Whether some partition's rows hold every class of the table (a two-class table's do,
    unless every partition holds one); unknown (no rows in memory, or many classes): no."""
    if len(prior.classes) == 2:
        return True
    if y is None or offsets is None or len(prior.classes) > PROBE_CLASSES:
        return False
    starts = np.asarray(offsets[:-1])[np.diff(offsets) > 0]
    if not len(starts):
        return False
    held = np.ones(len(starts), dtype=bool)
    for c in prior.classes:
        held &= np.logical_or.reduceat(np.asarray(y == c, dtype=bool), starts)
    return bool(held.any())


def calibration_error(
    y: np.ndarray, proba: np.ndarray, classes: np.ndarray, bins: int = 10
) -> float:
    """Expected calibration error of the top class: over equal-width bins of its probability,
    the row-weighted gap between mean probability and how often it was right."""
    top = np.argmax(proba, axis=1)
    confidence = proba[np.arange(len(y)), top]
    right = classes[top] == y
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = 0.0
    for b in np.unique(which):
        hit = which == b
        gap += hit.sum() * abs(float(confidence[hit].mean()) - float(right[hit].mean()))
    return gap / len(y)


def quality(
    fits: Sequence[Any],
    splits: Sequence[Split],
    X: Any,
    y: np.ndarray,
    classes: np.ndarray,
    *,
    frames: Frames | None = None,
) -> dict[str, float]:
    """How good the chosen model's probabilities were on its validation rows (pooled over
    folds): log loss, Brier score and calibration error, recorded with every classifier; and
    the error rate of its most probable class, which the monitor compares live errors with
    when the spec's metric is not accuracy (``monitoring.report``): a balanced accuracy of
    0.8 and a live error rate are in different units, and the naive majority class's error
    rate is no bar for a model chosen by balanced accuracy on rare positives. ``frames``
    (``Folds.rows``): the validation frames selection scored, whose transform is kept."""
    probas, truths = [], []
    frame = frames_of(X, frames)
    for (_, va), est in zip(splits, fits, strict=True):
        probas.append(aligned_proba(est, frame(va), classes))
        truths.append(np.asarray(y[va]))
    proba, truth = np.concatenate(probas), np.concatenate(truths)
    return {
        "log_loss": log_loss(truth, proba, classes),
        "brier": brier(truth, proba, classes),
        "calibration_error": calibration_error(truth, proba, classes),
        "error_rate": float(np.mean(classes[np.argmax(proba, axis=1)] != truth)),
    }


def label_error_rate(
    fits: Sequence[Any], splits: Sequence[Split], X: Any, y: Any, *, frames: Frames | None = None
) -> float | None:
    """The error rate of the labels a classifier without probabilities (``RidgeClassifier``,
    ``LinearSVC``) answers on its validation rows, pooled over folds: the bar the monitor holds
    its live error rate to (``quality``'s ``error_rate``). Without it such a model chosen by
    another metric than accuracy was never flagged ``degraded``, all its actuals wrong.
    ``None`` when the fits cannot answer them: a record for the monitor never fails a
    partition's training. ``frames``: as ``quality``'s."""
    frame = frames_of(X, frames)
    try:
        wrong = [
            np.asarray(est.predict(frame(va))) != np.asarray(y[va])
            for (_, va), est in zip(splits, fits, strict=True)
        ]
        return float(np.mean(np.concatenate(wrong)))
    except Exception:
        return None


def calibrate(
    make: Callable[[], Any],
    X: Any,
    y: np.ndarray,
    splits: Sequence[Split],
    calibration: Calibration,
) -> tuple[Any | None, list[Any] | None, dict[str, Any]]:
    """The chosen candidate wrapped for calibration (unfitted), its calibrated fits on each
    split's training rows (``None`` when one split has too few rows of a class for the folds:
    the validation figures are then the uncalibrated fits'), and what the version records. No
    wrapper when the partition has fewer than ``min_rows_per_class`` rows of a class."""
    from sklearn.calibration import CalibratedClassifierCV

    least = _least_class(y)
    if least < calibration.min_rows_per_class:
        why = f"{least} row(s) of a class < min_rows_per_class {calibration.min_rows_per_class}"
        return None, None, {"method": None, "reason": why}

    def wrapped() -> Any:
        return CalibratedClassifierCV(make(), method=calibration.method, cv=calibration.folds)

    fits: list[Any] | None = []
    for tr, _ in splits:
        if fits is None or _least_class(y[tr]) < calibration.folds:
            fits = None
            break
        fits.append(wrapped().fit(take(X, tr), y[tr]))
    record = {"method": calibration.method, "folds": calibration.folds, "validated": bool(fits)}
    return wrapped(), fits, record


def _least_class(y: np.ndarray) -> int:
    """Rows of the rarest class (0 with fewer than two classes)."""
    _, counts = np.unique(y, return_counts=True)
    return int(counts.min()) if len(counts) >= 2 else 0


def single_class(y: np.ndarray, splits: Sequence[Split]) -> str | None:
    """Where a partition holds one class: ``"all rows"``, ``"training rows"`` (of a
    validation split), or ``None`` when every set it trains on holds two or more."""
    if len(np.unique(y)) < 2:
        return "all rows"
    if any(len(np.unique(y[tr])) < 2 for tr, _ in splits):
        return "training rows"
    return None


_PROPER_RULES = {
    "neg_log_loss": ("log_loss", -1.0),
    "neg_brier_score": ("brier_score_loss", -1.0),
    "d2_log_loss_score": ("d2_log_loss_score", 1.0),
    "d2_brier_score": ("d2_brier_score", 1.0),
}
"""scikit-learn's function for each proper scoring rule a spec may name, and its sign (the
scores are higher-is-better)."""
PROPER = frozenset(_PROPER_RULES)  # meaningful on any two-class window


def metric_defined(
    name: str, y: np.ndarray, splits: Sequence[Split], min_class_rows: int = 1
) -> bool:
    """Whether ``name`` can decide the partition: defined on every validation window, and
    for a ranking or threshold metric, each window holding ``min_class_rows`` rows of every
    class (``[selection] min_class_rows``: ``roc_auc`` over one positive ranks one row).

    Every class of the partition counts, those a window lacks as 0 rows: a three-class
    partition whose window held two failed under ``neg_log_loss`` (scikit-learn's "y_true and
    y_prob contain different number of classes") and ``roc_auc_ovr``. So does a window
    holding a class its split's training rows lack (a class first seen in the newest rows):
    the fits answer no probability for it, and the partition and the fallback failed."""
    if name == "accuracy":
        return True
    need = 1 if name in PROPER else min_class_rows
    n_classes = len(np.unique(y))
    for tr, va in splits:
        held, counts = np.unique(y[va], return_counts=True)
        if len(counts) < max(2, n_classes) or counts.min() < need:
            return False
        if not np.isin(held, y[tr]).all():
            return False
    return True


def prior_rows(spec: Spec, prior: ClassPrior) -> float | list[float]:
    """The pseudo-rows a constant model is smoothed with: the spec's, or with ``"auto"`` the
    table's estimate (``manymodels.classes.prior_strength``; 2 when there is none, as for a
    table of one partition) — of three or more classes, one per class
    (``manymodels.classes.class_strengths``)."""
    m = spec.selection.prior_rows
    if m == "auto":
        if prior.strengths is not None and len(prior.strengths) == len(prior.classes):
            return [float(s) for s in prior.strengths]
        return float(prior.strength) if prior.strength is not None else 2.0
    return float(m)


def smoothed_constant(spec: Spec, prior: ClassPrior) -> ConstantProbabilityClassifier:
    """The constant-probability model (unfitted) a partition's classes are smoothed with
    toward the table's rates: training's naive for a classifier, a single-class or small
    partition's model, and the naive answer monitoring compares live answers with."""
    m = prior_rows(spec, prior)
    return ConstantProbabilityClassifier(prior.labels, prior.rates.tolist(), m)


def gets_constant(spec: Spec, n: int) -> bool:
    """Whether a partition of ``n`` (> 0) rows below ``min_rows`` gets a constant model of its
    own (``[selection] too_few_rows``) rather than being skipped for the fallback."""
    policy = spec.selection.too_few_rows
    wanted = policy == "constant" or (policy == "auto" and spec.task == "classification")
    return wanted and n > 0
