"""Which task a stored metric means: the versions table keeps a partition's metric, not its
task, and the monitor needs the task to compute a live error (a regression's mean absolute
error, a classifier's error rate).

Its own module because the answer is a small puzzle of its own (scikit-learn's scorer names,
and a perfect live score that reads the same either way), apart from the report's reads.
"""

from __future__ import annotations

import functools
from typing import Any

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1", "roc_auc", "precision",
                          "recall", "neg_log_loss", "average_precision")  # fmt: skip
REGRESSION_METRICS = ("neg_mean_absolute_error", "neg_mean_squared_error", "r2",
                      "neg_root_mean_squared_error", "neg_mean_absolute_percentage_error",
                      "neg_median_absolute_error", "explained_variance")  # fmt: skip


def task_of(metric: str, sums: Any) -> str:
    """The versions table keeps the metric, not the task: a classification scorer, or wrong
    answers counted, mean classification (a perfect score reads the same either way)."""
    known = classifies(metric)
    if known is not None:
        return "classification" if known else "regression"
    if sums is not None and sums.wrong + sums.naive_wrong:
        return "classification"
    return "regression"


@functools.cache
def classifies(metric: str) -> bool | None:
    """Whether ``metric`` scores classifiers, ``None`` when it is no scikit-learn scorer.
    Only the common names were known: a classifier chosen by any other scorer the spec
    accepts (``f1_macro``, ``roc_auc_ovr``, the ``neg_brier_score`` a ``fallback_metric``
    records) read as a regression whenever its most probable class and the naive answer were
    both right on every actual — its labels at a ``[decision]`` threshold then counted as a
    mean absolute error against naive's 0, and flagged ``degraded``. Asked of scikit-learn
    once per metric name: where its scoring function lives (``_regression`` or not)."""
    if metric in CLASSIFICATION_METRICS:
        return True
    if metric in REGRESSION_METRICS:
        return False
    try:
        from sklearn.metrics import get_scorer

        scorer = get_scorer(metric)
    except (ImportError, ValueError):
        return None
    module = getattr(getattr(scorer, "_score_func", None), "__module__", None)
    return None if module is None else not module.endswith("._regression")
