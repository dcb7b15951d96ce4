"""Garbage collection: old versions past a retention limit, and artifacts nothing references.

Order matters for safety: version rows are deleted first (one transaction), then artifacts no
remaining version references. A version an alias pointed at within the alias grace period is
kept whatever the retention says: routers may not have seen the move yet. An artifact is only
removed once it is older than a grace period, because a training run writes its artifacts
*before* it commits their versions — a young unreferenced artifact may belong to a run still in
flight; and while a run is training (its process alive here, or its heartbeat heard within a
day: ``RunsMixin.live_runs_since``), nothing written since it started is removed, however long
its versions take (a run that pools its intervals holds them until the pool is known:
``manymodels.interval_pool``); the report names that run (``kept_for_run``). Runs are looked
at *before* the references are read: a run that commits in between was either training then
(and keeps what it wrote since it started) or started later (and wrote after gc's clock was
read), never neither. The rows a router stored for a queued or running retrain job count as
referenced (``JobTable.active_uploads``): its run, which will name them, may not exist yet.
With a grace under a second, an upload in the instant before its job is queued can still go
(the job then fails, saying its rows are missing). And gc deletes
nothing when the registry references none of the artifacts its store holds: that is a lost or
mismatched database, not a store full of garbage; nor when another registry marked the store
as its own (``registry.ownership``). Holiday sets no version names any more go too
(``registry.holiday_rows``: found by a read, checked again under a lock every writer of
sets holds).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from manymodels.artifacts import LocalArtifactStore
from manymodels.exceptions import RegistryError
from manymodels.registry import pg_silence
from manymodels.registry.client import Registry
from manymodels.registry.ownership import check_store, claim_store, other_owners
from manymodels.registry.store import describe_url

CLOCK_SKEW_SECONDS = 600.0
"""How far the clock of a run's driver may be from the artifact store's: what a running run
wrote a little before its recorded start is its still."""

ALIAS_GRACE_SECONDS = 600.0
"""Versions an alias left (or reached) this recently are kept. A router follows ``production``
from an in-memory table it refreshes every 2 s by default (``serve --refresh-seconds``), and
keeps serving from that table while the registry is briefly unreachable: until it sees a move,
the version it knows must still exist. Ten minutes is 300 default refresh intervals, and 5×
the window each refresh re-reads (``serving.aliases``)."""


@dataclass(frozen=True)
class GcReport:
    dry_run: bool
    versions_deleted: list[tuple[str, int]] = field(default_factory=list)
    artifacts_deleted: int = 0
    bytes_freed: int = 0
    artifacts_kept_young: int = 0
    temp_files_deleted: int = 0  # half-written artifacts of killed writers
    artifacts_put_back: int = 0  # whole ones a gc killed mid-way had left moved aside
    kept_for_run: str | None = None  # a run still training: nothing since it started goes
    holiday_sets_deleted: int = 0  # sets of holidays no version names any more
    # past --keep, yet kept: an alias moved onto or off them within the alias grace (a
    # `gc --keep 1` right after a retrain deleted nothing, and said nothing of why)
    versions_kept_alias_grace: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@pg_silence.long_statements()  # its whole-table reads: 4.8 s silent at 4 million versions
def collect(
    registry: Registry,
    *,
    keep: int | None = None,
    grace_seconds: float = 3600.0,
    alias_grace_seconds: float = ALIAS_GRACE_SECONDS,
    dry_run: bool = False,
) -> GcReport:
    """Apply retention (``keep`` newest versions per partition, plus every aliased version,
    plus every version an alias moved onto or off within ``alias_grace_seconds``), then
    remove unreferenced artifacts older than ``grace_seconds``, and temp files of killed
    writers: at once when the writer died on this machine, otherwise once older than
    ``grace_seconds`` (``manymodels.tempnames``)."""
    if not dry_run:
        registry.require_writable("gc deletes from it (--dry-run only reads)")
    others = other_owners(registry)
    if others:
        raise RegistryError(
            f"the artifact store {registry.artifacts.url} also holds the models of another "
            f"registry ({', '.join(sorted(others.values()))}): gc deletes what this registry "
            "does not reference, which includes that registry's models. Nothing was deleted; "
            "give each registry its own artifact store (is --artifacts the right one? if "
            f"that registry is gone, remove its mark: {registry.artifacts.url}/owners/"
            f"{sorted(others)[0]})"
        )
    # a misspelt --artifacts (a bucket that does not exist, another prefix): before anything
    # is pruned, and never marked as this registry's, which let serve and score start over it
    check_store(registry)
    # first: a run still training now, and the time (a run that starts later writes after it);
    # a run that commits its versions once the references below are read was one or the other
    now = time.time()
    training = registry.store.live_runs_since()  # a running run's artifacts await versions
    pruned: list[tuple[str, int, str]] = []
    spared = 0  # past --keep, kept by the alias grace: counted by the prune's own one read
    if keep is not None:
        since = datetime.now(UTC) - timedelta(seconds=alias_grace_seconds)
        prune = registry.store.prune_versions(
            keep, dry_run=dry_run, moved_since=since.isoformat(timespec="microseconds")
        )
        pruned, spared = prune.deleted, prune.spared
    # after a real prune the rows are gone; a dry run asks "as if they were"
    gone = [(k, v) for k, v, _ in pruned] if dry_run else []
    # a router's retrain, before its run exists: read first, for a job whose run starts
    # after and ends before the versions' references are read names them in neither
    uploads = registry.jobs.active_uploads()
    referenced = registry.store.referenced_digests(exclude=gone) | uploads
    held = list(registry.artifacts.digests())
    if held and referenced.isdisjoint(held):
        database = describe_url(registry.db_url)
        raise RegistryError(
            f"the registry references none of the {len(held)} artifact(s) its store "
            f"{registry.artifacts.url} holds: refusing to delete them all (is {database} the "
            "database of this store? restore it from a backup; if the registry really has no "
            "versions, remove the artifacts by hand)"
        )
    if not dry_run:
        claim_store(registry)  # from now on, another registry's gc refuses this store
    cutoff = grace_cutoff = now - grace_seconds
    if training is not None:
        # its clock is the driver's, the store's mtimes another's: the grace of clock skew
        started = datetime.fromisoformat(training[1]).timestamp() - CLOCK_SKEW_SECONDS
        cutoff = min(cutoff, started)
    deleted = freed = young = 0
    for digest in held:
        if digest in referenced:
            continue
        if dry_run:
            try:
                size, mtime = registry.artifacts.stat(digest)
            except FileNotFoundError:  # deleted since it was listed (another gc): nothing to free
                continue
            freed_now: int | None = size if mtime < cutoff else None
        else:
            freed_now = registry.artifacts.delete_if_older(digest, cutoff)
        if freed_now is None:
            young += 1
            continue
        deleted += 1
        freed += freed_now
    # holiday sets (rows, not files): deleted where no writer can name one at once, so no
    # grace; a dry run counts those its pruning would free (as if its versions were gone).
    # Found unused by a read outside the write lock, each checked again under it: a set in
    # use named only by old versions is read past every newer one, with no writer waiting
    unused = registry.store.unused_holiday_sets(exclude=gone)
    sets_deleted = len(unused) if dry_run else registry.store.delete_holiday_sets(unused)
    store = registry.artifacts
    put_back = len(store.moved_aside(cutoff)) if isinstance(store, LocalArtifactStore) else 0
    temp_files, temp_bytes = store.sweep_temporaries(cutoff, dry_run=dry_run)
    freed += temp_bytes
    return GcReport(
        dry_run=dry_run,
        versions_deleted=[(k, v) for k, v, _ in pruned],
        artifacts_deleted=deleted,
        bytes_freed=freed,
        artifacts_kept_young=young,
        temp_files_deleted=max(temp_files - put_back, 0),
        artifacts_put_back=put_back,
        kept_for_run=training[0] if training is not None and cutoff < grace_cutoff else None,
        holiday_sets_deleted=sets_deleted,
        versions_kept_alias_grace=spared,
    )
