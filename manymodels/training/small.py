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

Where the run has a ``scope = "global"`` classifier and the spec asks for the shift
(``[selection] prior_shifted = true``, off by default), such a partition is served that model
shifted to its rates instead (``manymodels.prior_shift``): ``p(c | x) · q_c / r_c``, ``q`` the
same smoothed constant, ``r`` the model's own mean prediction over the partition's rows (its
rate for it: the table's for a pooled model, the partition's for one holding the key, which
the table's rates counted twice; ``training.shifted``). The constant is the special case of an
uninformative pooled model (``p(c | x) = r_c``), so nothing it knew is lost, and what the
pooled model learnt from the features is gained — which a constant cannot use (the visits
panel of ``benchmarks/classification.py``: 6,116 of 10,000 users below ``min_rows``). Neither
is validated on the partition's rows (it has none to spare); the global model was on every
other partition's. ``too_few_rows = "constant"`` or ``prior_shifted = false`` keep the bare
constant. The version records ``chosen = "too_few_rows"`` still (why it was not
validated), the estimator ``PriorShifted`` and, in ``validation.too_few_rows``, ``served =
"prior_shifted"`` and which global model (``member``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from manymodels.classes import ClassPrior
from manymodels.registry.entities import CandidateResult
from manymodels.spec import Spec
from manymodels.training import classify, thresholds
from manymodels.training.external import External
from manymodels.training.select import Fitted, estimator_path
from manymodels.training.shifted import Shifted


def few_rows_constant(
    X: Any, y: np.ndarray, spec: Spec, prior: ClassPrior, external: Sequence[External] = ()
) -> Fitted:
    """The version of a partition of ``len(y)`` < ``min_rows`` rows: its smoothed constant,
    or with a global classifier among ``external`` (the run's, first in the spec's order) that
    model shifted to the constant's rates (``shifted_global``)."""
    constant = classify.smoothed_constant(spec, prior).fit(X, y)
    m = constant.prior_rows
    model: Any = constant
    params: dict[str, Any] = {"prior_rows": m}
    served: dict[str, Any] = {}
    warnings: list[str] = []
    pooled = shifted_global(spec, external)
    if pooled is not None:
        option = Shifted(pooled, spec, prior)
        try:
            model = option.model(X, y, own=constant.proba_)  # the constant, not fitted again
        except Exception as e:  # the store, not the partition: its constant still serves
            model = constant
            warnings.append(f"{option.label} not served: {type(e).__name__}: {e}")
        else:
            served = {"served": "prior_shifted", "member": pooled.label}
            params = {"member": pooled.label, "shift": list(model.shift), "prior_rows": m}
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
        params=params,
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
                **served,
            },
        },
        warnings=warnings,
        chosen="too_few_rows",
        metric=scorer.name if scorer.name != spec.metric_name else None,
        decision=decision,
    )


def shifted_global(spec: Spec, external: Sequence[External]) -> External | None:
    """The global classifier a small partition is served shifted (``[selection]
    too_few_rows = "auto"``, the default): the run's first that can be loaded here. None are
    validated on its rows, so none is preferred by a score; ``"constant"`` asks for none."""
    if spec.selection.too_few_rows == "constant" or not spec.selection.prior_shifted:
        return None
    return next((e for e in external if e.pred.ndim == 2 and e.load is not None), None)
