"""A run's champions must predict what its spec predicts.

A registry's partitions are scored and served side by side (``score``, ``POST /v1/predict``,
the fallback for unknown keys), so every production model must answer the same question.
A spec whose ``target`` (or ``task``) was edited, trained into the registry of the old one,
scored its challengers against champions of another quantity: where a champion scored
better it was kept, and production served the old target for some partitions and the new
one for the rest, with nothing saying so.

A target that replaces the old one (a renamed column, or the quantity to serve from now
on) is said so (``train(new_target=True)``, ``manymodels train --new-target``): the
champions of the old target are then replaced by the new versions, uncompared.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from manymodels.exceptions import DataError
from manymodels.registry.store import ProductionRef
from manymodels.spec import Spec


def require_same_target(
    where: object,
    spec: Spec,
    production: Mapping[str, ProductionRef],
    *,
    new_target: bool = False,
) -> dict[str, str]:
    """``DataError`` naming the first production version (of those this run would challenge)
    made for another target or task than ``spec``'s. A text search of each schema for the
    spec's own target and task, so a run of 100,000 partitions parses none of them; only a
    schema that lacks either is parsed, to tell (a version without a recorded target, an
    MLflow import, is let be). With ``new_target`` none is refused: the keys of those
    versions are returned, each with the target it predicts, for the run to replace."""
    other: dict[str, str] = {}
    wanted = (
        f'"target":{json.dumps(spec.target)}',
        f'"task":{json.dumps(spec.task)}',
    )
    for key, ref in production.items():
        text = ref.feature_schema_json or ""
        if all(w in text for w in wanted):
            continue
        try:
            schema = json.loads(text)
        except ValueError:
            continue
        target, task = schema.get("target"), schema.get("task")
        if target is None or (target == spec.target and task in (None, spec.task)):
            continue
        was = f"'{target}'" + (f" ({task})" if task and task != spec.task else "")
        now = f"'{spec.target}'" + (f" ({spec.task})" if task and task != spec.task else "")
        if new_target:
            other[key] = str(target)
            continue
        raise DataError(
            f"registry {where}: partition '{key}' v{ref.version} in production predicts "
            f"{was}; spec '{spec.name}' predicts {now}: its models cannot be judged against "
            "those nor served beside them: train it into a registry of its own (--registry "
            f"DIR), or, if {now} replaces {was} (a renamed column), train with --new-target "
            "(new_target=True): its versions replace those, uncompared"
        )
    return other
