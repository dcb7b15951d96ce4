"""Which partitions a run trains, and against which champions: the run record created (or a
run reopened to resume it, ``run_resume``), ``only`` and ``changed_only`` applied, each
champion's signature checked in the driver. Batched queries over the keys being trained,
never one per partition.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from manymodels.champion_targets import require_same_target
from manymodels.exceptions import (
    BadSignature,
    DataError,
    NothingToTrain,
    error_text,
)
from manymodels.feature_schema import transform_kind_json
from manymodels.key_selection import KeySelection, key_list
from manymodels.partition import FALLBACK_KEY, PartitionedTable, normalize_key
from manymodels.registry.client import Registry
from manymodels.registry.entities import Run
from manymodels.registry.ownership import check_training_store, claim_store
from manymodels.registry.store import ProductionRef, now
from manymodels.run_busy import refuse_beside_a_run
from manymodels.run_resume import keys_digest, reopen
from manymodels.signing import verify
from manymodels.spec import Spec
from manymodels.tempnames import host_boot, writer_tag
from manymodels.trained_keys import as_trained
from manymodels.training import Champion, pooled_fingerprint
from manymodels.weekdays import takes_holidays


def table_notes(table: PartitionedTable) -> dict[str, Any]:
    """What reading the table found that a person should see: warnings, rows dropped."""
    return {k: table.extra[k] for k in ("warnings", "bad_rows_dropped") if k in table.extra}


@dataclass(frozen=True)
class RunPlan:
    """A run about to start: its id, the partitions left to train (``todo``, the rest of a
    resumed run) and their champions, and whether the pooled fallback is trained too."""

    run_id: str
    todo: PartitionedTable
    champions: dict[str, Champion]
    fallback: Champion | None
    fallback_due: bool
    partial: bool = False  # named partitions retrained: global models re-scored, not refitted
    owner: str | None = None  # the process running it (``writer_tag``): its writes check it


def _champion(
    reg: Registry, key: str, ref: ProductionRef, replaced_target: str | None = None
) -> Champion:
    """The champion a worker compares against. Its signature is checked here, in the driver,
    which holds the key: the worker then gets a sha256 the key vouches for, and checks the
    bytes against it, so the key never travels to workers. ``replaced_target``: the target it
    predicts, which the run's replaces (``new_target``): never loaded nor compared."""
    if replaced_target is not None:
        return Champion(ref.version, ref.artifact_sha256, None, None, "none", None,
                        replaced_target=replaced_target)  # fmt: skip
    try:
        verify(
            reg.signer, ref.signature, key, ref.version, ref.artifact_sha256, ref.data_sha256,
            ref.feature_schema_json,
        )  # fmt: skip
    except BadSignature as e:
        refused: str | None = error_text(e)
    else:
        refused = None
    kind = transform_kind_json(ref.feature_schema_json)
    recipe = None
    if ref.estimator is not None and ref.params_json is not None:
        recipe = (ref.estimator, json.loads(ref.params_json))
    return Champion(ref.version, ref.artifact_sha256, ref.last_time, refused, kind, recipe)


def wanted_keys(
    table: PartitionedTable,
    only: KeySelection | None,
    columns: list[str],
    *,
    skip_absent: bool = False,
    source: str | None = None,
) -> tuple[set[str] | None, list[str]]:
    """The keys of ``only`` to train, and those left out because the data holds no row of
    them (``skip_absent``: the monitor's flags, which name partitions the data may have
    dropped; otherwise such a key is a ``DataError``, as is every one with ``skip_absent``).
    The error names the data (``source``, a file's path) and, for flags, says they are the
    monitor's: ``retrain --when degraded`` named keys its user never gave, in data unnamed."""
    if only is None:
        return None, []
    present = set(table.keys)
    chosen = key_list(only, "only", columns)
    named = (normalize_key(k, columns) for k in chosen)
    wanted = {k if k in present else as_trained(k, present.__contains__) for k in named}
    missing = sorted(wanted - present)
    if missing and (not skip_absent or len(missing) == len(wanted)):
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        where = f"{source}: " if source and source != "<DataFrame>" else ""
        if skip_absent:
            raise DataError(f"{where}no rows in the data for any of the {len(missing):,} "
                            f"partition(s) the monitor flags: {shown}")  # fmt: skip
        raise DataError(f"{where}no rows in the data for partition(s) {shown}")
    return wanted - set(missing), missing


def changed_keys(
    reg: Registry,
    spec: Spec,
    table: PartitionedTable,
    todo: PartitionedTable,
    last_seen: Mapping[str, str],
    *,
    spec_edits: bool,
) -> tuple[set[str], set[str], dict[str, Any]]:
    """The keys of ``todo`` a ``changed_only`` run trains, the keys (the fallback's too) left
    out as skipped before on the same data, and the options that say so. One code path for
    the run (``plan_run``) and for ``retrain --dry-run`` (``would_retrain``), which must list
    exactly what the run trains. ``last_seen``: each key's newest version's fingerprint."""
    now_seen = dict(zip(todo.keys, todo.fingerprints, strict=True))
    changed = {k for k, fp in now_seen.items() if last_seen.get(k) != fp}
    # a partition skipped (below min_rows) has no version to compare with: judged by the
    # outcome recorded when it was skipped, the same data under the same spec is skipped
    # again, and is no work to redo at every run (a lookup per changed key, by key)
    asked = {k: now_seen[k] for k in changed} | {FALLBACK_KEY: pooled_fingerprint(table)}
    skipped_alike = reg.store.skipped_alike(asked, spec.spec_hash)
    changed -= skipped_alike
    options: dict[str, Any] = {}
    if spec_edits:  # the same rows under another spec: not the same model again
        made_under = reg.store.latest_spec_hashes([k for k in todo.keys if k not in changed])
        changed |= {k for k, h in made_under.items() if h != spec.spec_hash}
    elif takes_holidays(table.extra.get("frequency")):  # business days: other holidays,
        # another calendar (the steps, the lags): an edited holidays CSV retrains
        made_with = reg.store.latest_holidays([k for k in todo.keys if k not in changed])
        moved = {k for k, days in made_with.items() if days != (spec.holidays or [])}
        changed |= moved
        options |= {"holidays_changed": len(moved)} if moved else {}
    options |= {"changed_only": True, "unchanged": len(todo) - len(changed)}
    if skipped_alike - {FALLBACK_KEY}:  # no models: a run of the rest still pools them all
        options["unchanged_skipped"] = len(skipped_alike - {FALLBACK_KEY})
    options |= {"spec_edits": True} if spec_edits else {}
    return changed, skipped_alike, options


def plan_run(
    reg: Registry,
    spec: Spec,
    table: PartitionedTable,
    source: str,
    *,
    resume: str | None,
    only: set[str] | None,
    changed_only: bool,
    notes: Mapping[str, Any],
    spec_edits: bool = False,
    record_nothing: bool = True,
    new_target: bool = False,
) -> RunPlan:
    """Create (or reopen) the run record; decide which partitions to train, and their champions.

    ``spec_edits`` (with ``changed_only``): a partition whose newest version was trained under
    another spec counts as changed too (a flagged partition's retrain after the spec was edited
    for it). Everything here is batched queries over the keys being trained, never per
    partition.

    ``record_nothing=False``: a changed-only run that finds nothing to train (no partition
    changed, the fallback's table neither) raises ``NothingToTrain`` and records no run.

    ``new_target``: champions of another target are replaced, uncompared, rather than the
    run refused (``champion_targets``); a resume of such a run does so too.

    A new run while another run of the spec trains raises ``RunBusy`` (``run_busy``)."""
    require_same_keys(reg, spec)
    # a resume's own checks say whether its run still trains; another run of the spec
    # training refuses it as it refuses a new run (both would train the same partitions)
    refuse_beside_a_run(reg.store, spec.name, besides=resume)
    # a misspelt --artifacts: every champion "cannot be loaded" there and was replaced, the
    # new versions promoted with their models in a store no router reads (a few lookups);
    # the registry's own artifacts/ cannot be misspelt: its models lost, training replaces them
    check_training_store(reg)
    # the resumed run, read once: its options, the checks below and ``reopen_run``'s ``seen``
    # are one look at it; a status or heartbeat moved since (a process resuming it, or one
    # still beating) is refused there, however long the partitions took to compare
    previous = reg.get_run(resume) if resume is not None else None
    if previous is not None and changed_only and not spec_edits:  # as the run started:
        # `train --resume` of a flagged retrain (doctor's advice) knows no spec_edits of its own
        spec_edits = bool(previous.options.get("spec_edits"))
    if previous is not None and not new_target:  # as the run started, whoever resumes it
        new_target = bool(previous.options.get("new_target"))
    todo = table if only is None else table.select(only)
    production = reg.store.production_info([*todo.keys, FALLBACK_KEY])
    options: dict[str, Any] = dict(notes)
    # "changed" = differs from the data the partition was last trained on (its newest version,
    # promoted or not): retraining on identical data would only repeat the same decision.
    last_seen = reg.store.latest_fingerprints([*todo.keys, FALLBACK_KEY]) if changed_only else {}
    pooled = pooled_fingerprint(table)
    skipped_alike: set[str] = set()
    if changed_only:
        changed, skipped_alike, found = changed_keys(
            reg, spec, table, todo, last_seen, spec_edits=spec_edits
        )
        options |= found
        todo = todo.select(changed)
    if only is not None:  # the count people read; the digest a resume checks its keys by
        options |= {"only": len(only), "only_sha256": keys_digest(only)}
    # The pooled fallback is retrained with full runs, and with changed-only runs that changed
    # something; never when named partitions are retrained (that must not touch other models).
    fb = production.get(FALLBACK_KEY)
    pooled_changed = last_seen.get(FALLBACK_KEY) != pooled and FALLBACK_KEY not in skipped_alike
    fallback_due = spec.fallback.enabled and only is None and (not changed_only or pooled_changed)
    if fallback_due and fb is not None and len(production) == 1:  # none of its partitions
        kept = other_specs_fallback(reg, spec, fb.version)
        if kept is not None:
            fallback_due = False
            options["warnings"] = [*options.get("warnings", []), kept]
    if changed_only and resume is None and not record_nothing and not (len(todo) or fallback_due):
        raise nothing_to_train(options)
    # before anything is recorded; only the versions this run challenges: another spec's
    # fallback (kept, fallback_due False) or partitions it leaves alone are not its to judge
    challenged = {k: production[k] for k in todo.keys if k in production}
    if fallback_due and fb is not None:
        challenged[FALLBACK_KEY] = fb
    replaced = require_same_target(reg.location, spec, challenged, new_target=new_target)
    options |= {"new_target": True} if new_target else {}
    champions = {
        k: _champion(reg, k, production[k], replaced.get(k)) for k in todo.keys if k in production
    }
    fallback = _champion(reg, FALLBACK_KEY, fb, replaced.get(FALLBACK_KEY)) if fb else None

    me = writer_tag()  # this process: the owner its writes are checked against
    if previous is not None:  # a resume: ``previous`` is read only then (an unknown id raised)
        done = reopen(reg, previous, spec, pooled, only=only, changed_only=changed_only, owner=me)
        remaining = todo.select({k for k in todo.keys if k not in done})
        # champions of a resumed run are the production versions *before* it: partitions it
        # already committed are skipped, the rest still have their old production
        fallback_due = fallback_due and FALLBACK_KEY not in done
        return RunPlan(
            previous.run_id, remaining, champions, fallback, fallback_due, only is not None, me
        )

    run = Run(
        run_id=uuid.uuid4().hex[:12],
        kind="retrain" if champions or started_by_retrain(notes) else "train",
        status="running",
        spec_name=spec.name,
        spec_hash=spec.spec_hash,
        spec=spec.to_dict(),
        data_source=source,
        data_fingerprint=pooled,
        started_at=now(),
        ended_at=None,
        n_partitions=len(todo),
        n_trained=0,
        n_skipped=0,
        n_failed=0,
        # which process runs it (Run.killed), and on which host (for people: ``run_busy``)
        options={**options, "owner": me, "host": host_boot()[0]},
    )
    claim_store(reg)  # gc of another registry on this store now refuses
    reg.store.create_run(run, alone=True)  # checked again under the lock: the race
    reg._partition_by = None  # read again: a registry of no partition takes this run's keys
    return RunPlan(run.run_id, todo, champions, fallback, fallback_due, only is not None, me)


def nothing_to_train(options: Mapping[str, Any]) -> NothingToTrain:
    """The line of a changed-only run that left every partition as it was: an empty run
    recorded at every firing of a frequent schedule buried the runs that trained in `runs
    list`, and said "0 trained" as if something had been tried."""
    n = int(options.get("unchanged", 0))
    which = "the partition has" if n == 1 else f"all {n:,} partitions have"
    return NothingToTrain(
        f"nothing to train: {which} the data {'it was' if n == 1 else 'they were'} last "
        "trained (or skipped) on; no run recorded",
        unchanged=n,
        notes=dict(options),
    )


def started_by_retrain(notes: Mapping[str, Any]) -> bool:
    """Whether the run's caller retrains (``retrain --when``, a scheduler's firing, a router's
    retrain job), which its notes say: such a run is a retrain whatever it trains. Judged by
    its champions alone, one that found nothing changed (no partition, no champion) read
    "train" in ``runs list``."""
    from manymodels.registry.job_outcomes import JOB_NOTE  # SQLAlchemy: the registry's anyway

    return bool(notes.get("retrain")) or notes.get("trigger") == "schedule" or JOB_NOTE in notes


def require_same_keys(reg: Registry, spec: Spec) -> None:
    """``DataError`` for a spec keyed by other columns than the registry's partitions: a
    registry is keyed one way (``Registry.partition_by``, the first spec's). Another spec's
    partitions trained in beside them could be served one by one, but never by ``score`` or
    ``POST /v1/predict`` (their rows were refused for lacking the registry's key columns),
    and its fallback model became a challenger to the registry's one fallback, which a
    policy of ``always`` (or a better score) would promote to answer the first spec's unknown
    keys. The likely cause is no ``--registry`` at all, so the default ./mmregistry."""
    held = reg.partition_by
    if held is None or list(held) == list(spec.partition_by):
        return
    if not reg.store.list_partitions(limit=1):
        return  # keys recorded by runs that trained nothing (all failed, or stopped first):
        # no partition is keyed so, and ``create_run`` records this spec's instead
    raise DataError(
        f"registry {reg.location} holds partitions keyed by {', '.join(held)}; spec "
        f"'{spec.name}' keys them by {', '.join(spec.partition_by)}: train it into a "
        "registry of its own (--registry DIR)"
    )


def other_specs_fallback(reg: Registry, spec: Spec, version: int) -> str | None:
    """The warning of a run that leaves the registry's fallback model alone: it was trained
    by another spec, and this run trains none of the registry's partitions (asked only then).
    ``None`` when the fallback is this spec's own.

    A registry has one fallback (``__fallback__``), which answers every key it has no model
    of. Two specs keyed alike trained into one registry over other partitions (stores of the
    north and of the south) each retrained it on their own rows, and the last one's was
    promoted over the other's (scores of different rows compared): the north's unknown keys
    were answered by a model of the south's sales. Another spec of the same partitions (an
    edit, a rename) still replaces it. Two primary-key reads."""
    made_by = reg.store.get_run(reg.store.get_version(FALLBACK_KEY, version).run_id).spec_name
    if made_by in (spec.name, None, ""):
        return None
    return (
        f"the registry's fallback model (v{version}) was trained by spec '{made_by}' and "
        f"answers the unknown keys of every partition in it; spec '{spec.name}' trains none of "
        f"its partitions, so its fallback was not trained, to leave that one serving (train "
        f"'{spec.name}' into a registry of its own for a fallback of its own)"
    )
