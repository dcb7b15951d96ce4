"""A classification partition below ``min_rows``: a version of its own, not a skip.

Too few rows to hold any out, so no candidate can be validated; but its rows still say
something about its class rates. It serves constant probabilities ``(k + m·p) / (n + m)``
(``ConstantProbabilityClassifier``, smoothed toward the table's rates as a single-class
partition is) — the naive candidate, the one model that needs no validation rows. With the
empirical-Bayes ``prior_rows = "auto"`` a partition of 3 rows is mostly the table's rate, one
of 9 a little more its own. The version records ``chosen = "too_few_rows"``, its score is
the constant's ``fallback_metric`` on its own rows (in-sample: there are no others), and the
run summary counts these apart. ``[selection] too_few_rows = "fallback"`` opts out: the
partition is skipped and the fallback model answers for it (regression always does so).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from manymodels.classes import ClassPrior
from manymodels.registry.entities import CandidateResult
from manymodels.spec import Spec
from manymodels.training import classify, thresholds
from manymodels.training.select import Fitted, estimator_path


def few_rows_constant(X: Any, y: np.ndarray, spec: Spec, prior: ClassPrior) -> Fitted:
    """The constant-probability version of a partition of ``len(y)`` < ``min_rows`` rows."""
    model = classify.smoothed_constant(spec, prior).fit(X, y)
    m = model.prior_rows
    scorer = classify.ProbaMetric(spec.selection.fallback_metric, prior.classes)
    classes, counts = np.unique(y, return_counts=True)
    why = f"not fitted: {len(y)} rows < min_rows {spec.min_rows}"
    decision = None
    if spec.decision is not None and prior.binary:
        decision = {
            "rule": spec.decision.threshold,
            "positive": prior.labels[classify.positive_at(spec.decision, prior)],
            **({"cost": spec.decision.cost.model_dump()} if spec.decision.threshold == "cost"
               else {}),
            "positives": 0,
            "threshold": thresholds.global_threshold(spec.decision, prior),
            "chosen_on": "global",
        }  # fmt: skip
    return Fitted(
        model=model,
        estimator=estimator_path(model),
        params={"prior_rows": m},
        score=scorer(model, X, y),
        naive_score=None,
        candidates=[CandidateResult(c.label, c.estimator, {}, None, why) for c in spec.candidates],
        validation={
            "strategy": "none",
            "folds": 0,
            "rows": 0,
            "too_few_rows": {
                "rows": len(y),
                "min_rows": spec.min_rows,
                "prior_rows": m,
                "classes": {
                    str(c): int(k) for c, k in zip(classes.tolist(), counts.tolist(), strict=True)
                },
            },
        },
        warnings=[],
        chosen="too_few_rows",
        metric=scorer.name if scorer.name != spec.metric_name else None,
        decision=decision,
    )
