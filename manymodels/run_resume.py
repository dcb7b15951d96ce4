"""Reopening a run to resume it: the checks that it may be resumed, here and now, with this
spec, data and partitions, then the reopen that says what it recorded already.

Kept apart from ``run_plan`` (which partitions a run trains, against which champions) since
these are the rules of one question, whether a run may be finished by this process: a resume
beside the process still running it would train its partitions twice, and one with another
spec, other data or other partitions would mark it completed over models it never trained.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from manymodels.exceptions import RunTakenOver, TrainingError
from manymodels.heartbeat import SILENT_AFTER, spoken
from manymodels.registry.client import Registry
from manymodels.registry.entities import Run
from manymodels.run_busy import whereabouts
from manymodels.spec import Spec
from manymodels.tempnames import host_boot, owner_pid


def reopen(
    reg: Registry,
    previous: Run,
    spec: Spec,
    pooled: str,
    *,
    only: set[str] | None,
    changed_only: bool,
    owner: str,
) -> set[str]:
    """The partitions ``previous`` recorded already, read as it is reopened for ``owner``
    (this process, ``writer_tag``): nothing can be recorded after that. ``TrainingError``
    naming the run when it cannot be resumed: completed, abandoned, still running (here, or
    beating elsewhere), or started over other partitions, under another spec or from other
    data (``pooled``: the table's fingerprint)."""
    lost = reg.store.run_outcomes(previous.run_id, status="lost", limit=1)
    run_id = previous.run_id
    if previous.status == "completed" and not lost:
        raise TrainingError(f"run {run_id} is already completed; there is nothing to resume")
    if previous.options.get("abandoned"):
        raise TrainingError(f"run {run_id} was abandoned ({previous.error}); start a new run")
    running = previous.options.get("owner")
    mine = running == owner
    if previous.status == "running" and not mine and previous.owner_alive:
        raise TrainingError(
            f"run {run_id} is still running (process {owner_pid(running)} on this machine): "
            "wait for it to end, or stop it, before resuming it"
        )
    if previous.beating and not mine:  # not a heartbeat stamped ahead of this clock
        raise TrainingError(
            f"run {run_id} is still running ({whereabouts(previous)}; heartbeat at "
            f"{previous.heartbeat_at}): wait for it to end, or stop it; a run silent for "
            f"{spoken(SILENT_AFTER)} can be resumed"
        )
    _same_partitions(previous, only, changed_only)
    if previous.spec_hash != spec.spec_hash:
        raise TrainingError(
            f"run {run_id} was made with a different spec "
            f"({previous.spec_hash[:12]} vs {spec.spec_hash[:12]}); start a new run instead"
        )
    if previous.data_fingerprint != pooled:
        raise TrainingError(
            f"run {run_id} was made from different data (fingerprint "
            f"{previous.data_fingerprint[:12]} vs {pooled[:12]}); "
            "resume it with the same table, or start a new run"
        )
    seen = (previous.status, previous.heartbeat_at)
    try:
        return reg.store.reopen_run(
            run_id, previous.n_partitions, owner=owner, seen=seen, host=host_boot()[0]
        )
    except RunTakenOver as e:
        raise TrainingError(str(e)) from None


def keys_digest(keys: Iterable[str]) -> str:
    """sha256 of a set of canonical keys, whatever their order: what a run of named
    partitions records (``only_sha256``), and a resume checks its keys by."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()


def _same_partitions(previous: Run, only: set[str] | None, changed_only: bool) -> None:
    """A resume finishes a run over the partitions it set out to train: a full run resumed
    with ``--partitions`` or ``--changed-only`` would be marked completed with the others never
    trained (and count as the spec's newest full run), and a run of named or changed
    partitions resumed without them would train every partition under it."""
    o = previous.options
    named, digest = o.get("only"), o.get("only_sha256")
    how = "the same --append data" if o.get("append") else "the same --partitions"
    if named is None and only is not None:
        raise TrainingError(
            f"run {previous.run_id} trains every partition: resume it without --partitions "
            "(then retrain the partitions you want in a run of their own)"
        )
    if named is not None and (
        only is None or len(only) != named or (digest and keys_digest(only) != digest)
    ):
        raise TrainingError(
            f"run {previous.run_id} retrains {named} partition(s) named when it started: "
            f"resume it with {how}"
        )
    if bool(o.get("changed_only")) != changed_only:
        flag = "with" if o.get("changed_only") else "without"
        raise TrainingError(
            f"run {previous.run_id} was started {flag} --changed-only: resume it {flag} it"
        )
