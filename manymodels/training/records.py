"""What a version records of its fit, beside the model: its feature schema's additions (the
table's classes and a decision threshold, the interval record, the training rows' monitoring
profile), its ``validation`` (what was chosen, from which rows) and its ``evaluation`` (the
promotion policy's decision against the champion). Pure functions of a partition's fit
(``select.Fitted``), so ``chunk`` keeps to the flow of one partition through training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from manymodels.classes import ClassPrior
from manymodels.evaluate import decide
from manymodels.monitoring.profile import version_profile
from manymodels.spec import Spec
from manymodels.training.classify import smoothed_constant
from manymodels.training.compare import Champion
from manymodels.training.select import Fitted


def with_classes(
    schema: dict[str, Any], prior: ClassPrior | None, fitted: Fitted
) -> dict[str, Any]:
    """A classifier's schema also lists the table's classes (what its probabilities are
    answered over) and its decision threshold, if the spec asks for one; a regressor's, its
    interval record (``manymodels.intervals``), if the spec asks for one."""
    if fitted.intervals:
        schema = {**schema, "intervals": fitted.intervals}
    if schema.get("task") != "classification":
        return schema
    out = dict(schema)
    if prior is not None:
        out["classes"] = prior.labels
        # the table's rates and strength, for an append that sees one partition's rows
        # (``manymodels.appending.learnt_prior``): its own would be the table's
        rates = {"rates": prior.rates.tolist()}
        out["class_prior"] = (
            rates
            | ({} if prior.strength is None else {"strength": prior.strength})
            | ({} if prior.strengths is None else {"strengths": list(prior.strengths)})
        )
    if fitted.decision:
        out["decision"] = fitted.decision
    return out


def with_profile(
    schema: dict[str, Any],
    X: Any,
    y: np.ndarray,
    spec: Spec,
    times: np.ndarray | None,
    prior: ClassPrior | None = None,
) -> dict[str, Any]:
    """The schema with the training rows' profile (``manymodels.monitoring.profile``), what
    drift and live accuracy are measured against; a profile that cannot be made is left out
    (monitoring then has no reference for this version), never a failed partition.

    A classifier's naive answer is training's naive baseline: the class of the smoothed
    constant (its counts pulled toward the table's rates), which a small partition's own
    majority need not be."""
    try:
        profile = version_profile(
            X, y, features=schema["features"], categorical=schema["categorical"],
            task=spec.task, time_ordered=spec.time_column is not None, times=times,
        )  # fmt: skip
        if spec.task == "classification" and prior is not None and len(y):
            label = smoothed_constant(spec, prior).fit(X, y).predict(np.zeros((1, 1)))[0]
            profile["naive"] = label.item() if isinstance(label, np.generic) else label
    except Exception:
        return schema
    return {**schema, "profile": profile}


def validation_record(
    spec: Spec, fitted: Fitted, dropped: Mapping[str, int] | None
) -> dict[str, Any]:
    """How the version was chosen: the fit's validation record, what was chosen, whether the
    naive baseline competed, which global model (by sha256), and the rows left out."""
    out = {
        **fitted.validation,
        "chosen": fitted.chosen,
        "naive_candidate": spec.selection.naive_candidate,
    }
    if fitted.artifact is not None:  # which global model: the run's, by its sha256
        out["scope"] = "global"
        out["global"] = {"label": fitted.artifact.label, "sha256": fitted.artifact.sha256}
    if dropped:
        out["dropped"] = dict(dropped)
    return out


def evaluation_record(
    spec: Spec,
    fitted: Fitted,
    champion: Champion | None,
    load_error: str | None,
    *,
    identical: bool = False,
    unservable: str | None = None,
) -> dict[str, Any]:
    """The policy's decision. A challenger byte-identical to its champion (the same data
    again) is never promoted: the move would change nothing but the alias history, and make
    a rollback step back to the same model. A champion no reader can serve (``unservable``
    says why: a format the registry no longer loads, a missing or corrupted artifact) is
    replaced under ``if_better``."""
    cmp = fitted.comparison
    decision = decide(
        spec.promotion,
        metric=(cmp.metric if cmp else None) or fitted.metric or spec.metric_name,
        challenger=cmp.challenger if cmp and cmp.challenger is not None else fitted.score,
        champion_version=champion.version if champion else None,
        champion=cmp.champion if cmp else None,
        champion_error=load_error or (cmp.error if cmp else None),
        basis=cmp.basis if cmp else None,
        same_method=bool(cmp and cmp.same_method),
    )
    out = {**decision.to_dict(), "compared_rows": cmp.rows if cmp else None}
    if fitted.metric:  # the spec's metric is undefined on this partition's validation rows
        out["metric"] = fitted.metric
    if cmp and cmp.metric:  # … or on the rows the champion was judged on: the scores' metric
        out["compared_by"] = cmp.metric
    if fitted.single_class:
        out["single_class"] = fitted.single_class
    if unservable and champion is not None and spec.promotion.policy == "if_better":
        why = f"champion v{champion.version} {unservable}"
        out |= {"promote": True, "reason": f"{why} ({load_error}); replaced"}
    if champion is not None and champion.replaced_target is not None:  # another quantity
        was = f"champion v{champion.version} predicts {champion.replaced_target!r}"
        out |= {"promote": True, "reason": f"new target: {was}, not compared; replaced"}
    elif identical and champion is not None and decision.promote:
        version = champion.version
        out |= {"promote": False, "reason": f"identical to champion v{version} (same bytes); kept"}
    return out


def jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """Grid values as JSON-friendly scalars (numpy scalars and tuples crop up in grids)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, tuple):
            v = list(v)
        elif not isinstance(v, str | int | float | bool | list | dict | type(None)):
            v = repr(v)
        out[k] = v
    return out
