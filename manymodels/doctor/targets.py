"""``doctor``'s check that each spec's production predicts one target.

A ``train --new-target`` run replaces every partition's model of the old target; one killed
mid-way leaves those it had not reached on the old target, and one that skips or fails a
partition completes (exit 0) with that partition still on it. ``score`` refuses such rows
together (``champion_targets.require_one_target``); before this check, ``doctor`` said
"ok" for the skipped case, and nothing else named it. Two specs of their own targets in
one registry are let be.
"""

from __future__ import annotations

from manymodels.champion_targets import describe_targets, mixed_why
from manymodels.doctor.findings import Problem
from manymodels.registry.client import Registry

LISTED = "if so, it is listed as an unfinished run, with the command that finishes it"
"""Where doctor's reader finds the interrupted run: among the same problems (``doctor.runs``)."""


def mixed_targets(registry: Registry) -> list[Problem]:
    """One problem per spec whose production versions predict more than one target."""
    specs: dict[str, dict[str, tuple[str, int, int]]] = {}
    for spec, key, version, target in registry.store.production_targets():
        if target is None:
            continue
        seen = specs.setdefault(spec, {})
        first = seen.get(target)
        seen[target] = (key, version, 1) if first is None else (*first[:2], first[2] + 1)
    problems = []
    for spec, named in sorted(specs.items()):
        if len(named) < 2:
            continue
        fewest = min(named, key=lambda t: named[t][2])
        key, version, _ = named[fewest]
        said = (
            f"production of spec '{spec}' predicts {len(named)} targets, "
            f"{describe_targets(named)}: score refuses their rows together; {mixed_why(LISTED)}"
        )
        problems.append(Problem("mixed_targets", said, key=key, version=version))
    return problems
