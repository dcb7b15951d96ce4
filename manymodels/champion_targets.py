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

from collections.abc import Callable, Container, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from manymodels.exceptions import DataError, RegistryError
from manymodels.feature_schema import Predicts, predicts
from manymodels.registry.store import ProductionRef
from manymodels.spec import Spec

if TYPE_CHECKING:
    from manymodels.training import Champion


def require_same_target(
    where: object,
    spec: Spec,
    production: Mapping[str, ProductionRef],
    *,
    new_target: bool = False,
) -> dict[str, str]:
    """``DataError`` naming the first production version (of those this run would challenge)
    made for another target or task than ``spec``'s. A schema is parsed only when it does not
    say the spec's own target and task (``feature_schema.predicts``), so a run of 100,000
    partitions parses none of them (a version without a recorded target, an MLflow import,
    is let be). With ``new_target`` none is refused: the keys of those versions are
    returned, each with the target it predicts, for the run to replace."""
    other: dict[str, str] = {}
    wanted = Predicts(spec.target, spec.task)
    for key, ref in production.items():
        target, task = predicts(ref.feature_schema_json, wanted)
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


def require_one_target(
    source: str,
    alias: str,
    answering: Mapping[str | None, Sequence[tuple[str, int]]],
    specs_of: Callable[[Sequence[tuple[str, int]]], Mapping[tuple[str, int], str]],
    *,
    of: str = "these rows",
) -> None:
    """``RegistryError``, naming the spec (as its runs record it), when the versions
    answering a table's rows predict more than one target of one spec (``answering``: each
    target → the ``(key, version)`` pairs predicting it; ``specs_of``: the spec that trained
    each of many versions, one batched read asked only once two targets are found,
    ``Registry.store.version_specs``). One ``prediction``
    column cannot hold two quantities: a ``--new-target`` run killed mid-way left the
    partitions it had not reached on the old target's models (as does one that skips or
    fails a partition: it keeps the old model), and ``score`` wrote both into that column,
    exit 0, nothing saying so (``forecast`` too: ``of`` names what the models answer). Two
    specs of their own targets in one registry (each its partitions) are let be; so is a
    version recording no target (an import). Every version's spec is read, not one per
    target: another spec predicting the old target's name hid the mix when its version was
    the one asked."""
    named = {t: pairs for t, pairs in answering.items() if t is not None and pairs}
    if len(named) < 2:
        return
    spec = specs_of([p for pairs in named.values() for p in pairs])
    by_spec: dict[str, dict[str, tuple[str, int, int]]] = {}
    for target, pairs in named.items():
        for key, version in pairs:
            if (key, version) not in spec:  # deleted meanwhile: its read fails on its own
                continue
            seen = by_spec.setdefault(spec[key, version], {})
            first = seen.get(target)
            seen[target] = (key, version, 1) if first is None else (*first[:2], first[2] + 1)
    mixed = next(((name, ts) for name, ts in by_spec.items() if len(ts) > 1), None)
    if mixed is None:
        return
    name, targets = mixed
    fewest = targets[min(targets, key=lambda t: targets[t][2])]  # the partitions left behind
    raise RegistryError(
        f"{source}: the '{alias}' models of {of} predict {len(targets)} targets of spec "
        f"'{name}', {describe_targets(targets)}, which one prediction column cannot hold: "
        f"{mixed_why('`manymodels doctor` names it to resume')}; to serve one target, retire "
        f"the other's partitions from production (manymodels retire '{fewest[0]}'"
        f"{' …' * (fewest[2] > 1)}; rollback undoes it)"
    )


def mixed_why(interrupted: str) -> str:
    """Why one spec's models predict two targets; ``interrupted`` says where to find the
    interrupted run (a refusal sends its reader to ``doctor``, which lists it itself)."""
    return (
        f"a run replacing the target (train --new-target) was interrupted ({interrupted}), "
        "or skipped or failed partitions that kept the old target's model"
    )


def describe_targets(named: Mapping[str, tuple[str, int, int]]) -> str:
    """``'price' (partition 'a' v2 and 9 more), 'units' (partition 'b' v1)``: each target
    with its first version and how many more, the most used first."""
    parts = []
    for target in sorted(named, key=lambda t: -named[t][2]):
        key, version, n = named[target]
        more = f" and {n - 1} more" if n > 1 else ""
        parts.append(f"'{target}' (partition '{key}' v{version}{more})")
    return ", ".join(parts)


def left_on_old_target(
    champions: Mapping[str, Champion], moved: Container[str], target: str
) -> dict[str, Any] | None:
    """What a ``--new-target`` run left behind, or ``None``: its partitions whose champion
    predicts another target (``Champion.replaced_target``) and that got no new version in
    it (``moved``: the run's committed versions), skipped (the new target all missing) or
    failed, so that they keep serving the old target's model beside the new one. The run
    completed, exit 0, and said nothing; ``score`` and ``forecast`` then refused the registry.
    ``partitions``, the ``first`` key, its old ``target`` and the run's ``warning`` line; read
    from what the run holds (its champions, a resume's too), no registry read."""
    left = {
        k: str(c.replaced_target)
        for k, c in champions.items()
        if c.replaced_target is not None and k not in moved
    }
    if not left:
        return None
    first, n = min(left), len(left)
    olds = [f"'{t}'" for t in sorted(set(left.values()))]
    they, them = ("it", "it") if n == 1 else ("they", "them")
    warning = (
        f"{n:,} partition{'s' * (n > 1)} still serve{'s' * (n == 1)} "
        f"{'a model' if n == 1 else 'models'} of the old target{'s' * (len(olds) > 1)} "
        f"{', '.join(olds)} in production beside '{target}' (the first, '{first}'): this "
        f"--new-target run skipped or failed {them}, and score and forecast refuse the "
        f"registry until {they} "
        f"{'is' if n == 1 else 'are'} retired (manymodels retire '{first}'{' …' * (n > 1)}; "
        f"rollback undoes it) or trained again with rows of '{target}' (train --new-target)"
    )
    return {"partitions": n, "first": first, "target": left[first], "warning": warning}
