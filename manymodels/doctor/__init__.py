"""Checking a registry: can every version be loaded, every alias served, every run finished?

``check(registry)`` verifies every artifact a version references (its model and, when kept,
its training rows) against its sha256, looks for aliases pointing at versions that no longer
exist, names a spec whose production predicts two targets (``doctor.targets``), lists the
runs a ``--resume`` would finish, and counts half-written temp files of killed writers.
``repair=True`` fixes only what needs no data it does not have:

- temp files of writers that died on this machine, and others older than the grace period,
  are removed (as ``gc`` would: ``manymodels.tempnames`` says how a writer is known dead);
- an alias pointing at a missing version is moved back along its history to the newest
  version that still exists, if that version's artifact verifies (recorded as a rollback, and
  only if nobody moved the alias meanwhile).

With a signing key, every version's signature is checked too: unsigned versions are one
problem (``manymodels sign`` signs them: a deliberate act of whoever holds the key, never a
repair, since it vouches for rows nobody has checked), and each signature that does not
verify is one (an altered row or another key's: nothing here can tell which bytes to trust);
so are the global model records of runs (which ``manymodels sign`` signs too).

Nothing else is touched: no version row is deleted, no artifact rewritten, no run resumed —
those need the bytes or the data, and each problem says what to do instead.

Cost: six queries over whole tables (the production versions' schemas parsed), and one read
and sha256 of each *distinct* artifact (a global model shared by every partition is read
once): O(versions + bytes stored). An artifact store that does not answer is one problem,
found at the first read: the rest are not tried.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from dataclasses import replace

from manymodels.artifacts import LocalArtifactStore
from manymodels.doctor.artifacts import (
    NOT_ITS_STORE,
    bad_artifacts,
    bad_global_signatures,
    bad_signatures,
    digests_of,
    unreachable_store,
    untrusted,
    verify,
    wrong_store,
)
from manymodels.doctor.findings import Checkup, Problem
from manymodels.doctor.runs import unfinished_runs
from manymodels.doctor.targets import mixed_targets
from manymodels.exceptions import VersionNotFound
from manymodels.registry import pg_silence
from manymodels.registry.client import Registry

__all__ = ["TEMP_GRACE_SECONDS", "Checkup", "Problem", "check"]

TEMP_GRACE_SECONDS = 3600.0  # as gc's: a live writer's temp file lives for milliseconds


@pg_silence.long_statements()  # six queries over whole tables, silent until their answer
def check(
    registry: Registry,
    *,
    repair: bool = False,
    grace_seconds: float = TEMP_GRACE_SECONDS,
    flags: Sequence[str] | None = None,
) -> Checkup:
    """Check ``registry`` and, with ``repair``, fix what can be fixed without losing data.
    ``flags`` name the registry in the commands the problems advise (the CLI's own, as
    given: a database URL and an artifact store too), ``--registry LOCATION`` by default."""
    if repair:
        registry.require_writable("--repair writes to it (a check without it only reads)")
    rows = registry.version_digests()
    named = shlex.join(["--registry", registry.location] if flags is None else flags)
    where = f" {named}" if named else ""  # the default registry: no flag to repeat
    pairs = (pair for r in rows for pair in digests_of(r))
    wrong = wrong_store(registry)
    if wrong is None:
        verdicts, formats, down = verify(registry, pairs)
    else:  # nothing read: none of it is there, and nothing is moved onto it by --repair
        verdicts, formats, down = dict.fromkeys((d for _, d in pairs if d), NOT_ITS_STORE), {}, None
    problems = [wrong] if wrong is not None else []
    problems += bad_artifacts(rows, verdicts)
    problems += [unreachable_store(down, verdicts)] if down is not None else []
    problems += untrusted(registry, rows, formats)
    if registry.signer is not None:
        problems += bad_signatures(rows, registry.signer, where)
        problems += bad_global_signatures(registry, registry.signer, where)
    for key, alias, version in registry.dangling_aliases():
        problems.append(_dangling(registry, key, alias, version, verdicts, repair=repair))
    problems += mixed_targets(registry)  # before the runs: one of them may be the cause
    problems += unfinished_runs(registry, where)
    temp = _temp_files(registry, grace_seconds, repair=repair)
    problems += [temp] if temp is not None else []
    aliases, retired = registry.count_aliases()
    return Checkup(
        registry=registry.location,
        versions=len(rows),
        artifacts=len(verdicts),
        aliases=aliases,
        retired=retired,
        runs=registry.count_runs(),
        problems=problems,
        signed=registry.signer is not None,
    )


def _dangling(
    registry: Registry,
    key: str,
    alias: str,
    version: int,
    verdicts: dict[str, str | None],
    *,
    repair: bool,
) -> Problem:
    said = f"alias '{alias}' of {key} points at v{version}, which does not exist"
    existing = {v.version: v for v in registry.list_versions(key)}
    earlier = [m.to_version for m in reversed(registry.alias_history(key, alias))]
    target = next((v for v in earlier if v is not None and v != version and v in existing), None)
    problem = Problem("dangling_alias", said, key=key, version=version, alias=alias)
    if target is None:
        return replace(problem, message=f"{said}; none of the versions it pointed at before exists")
    found = existing[target]
    verdict = next(
        (v for v in map(verdicts.get, (found.artifact_sha256, *found.members)) if v), None
    )
    if verdict is not None:
        return replace(
            problem,
            message=f"{said}; v{target}, the newest it pointed at before, has an artifact "
            f"that is {verdict}: not moved",
        )
    if not repair:
        return replace(
            problem, message=f"{said}; --repair moves it back to v{target}", repairable=True
        )
    try:
        move = registry.restore_alias(
            key, alias, version, target, reason=f"doctor: v{version} no longer exists"
        )
    except VersionNotFound:  # deleted since we looked
        move = None
    if move is None:
        return replace(problem, message=f"{said}; it moved or v{target} went meanwhile: run again")
    return replace(
        problem, message=f"{said}: moved back to v{target}", repairable=True, repaired=True
    )


def _temp_files(registry: Registry, grace_seconds: float, *, repair: bool) -> Problem | None:
    cutoff = time.time() - grace_seconds
    files, size = registry.artifacts.sweep_temporaries(cutoff, dry_run=True)
    if not files:
        return None
    store = registry.artifacts
    aside = store.moved_aside(cutoff) if isinstance(store, LocalArtifactStore) else []
    said, done, todo = [], [], []
    if aside:  # whole artifacts, not temp files: a gc was killed before moving them back
        shown = ", ".join(d[:12] for d in aside[:3]) + ", …" * (len(aside) > 3)
        said.append(
            f"{len(aside)} artifact(s) a gc killed mid-way left moved aside under a temp name "
            f"({shown}; loads read them there meanwhile)"
        )
        done.append("put back under their names")
        todo.append("puts them back under their names (as does the next gc)")
    if files > len(aside):
        said.append(
            f"{files - len(aside)} half-written temp file(s) of killed writers ({size:,} bytes) "
            f"in the artifact store: their writers died on this machine, or they are older "
            f"than {grace_seconds:g}s"
        )
        done.append("removed")
        todo.append("removes them")
    if repair:
        registry.artifacts.sweep_temporaries(cutoff)
        message = f"{'; '.join(said)}: {' and '.join(done)}"
        return Problem("temp_files", message, repairable=True, repaired=True)
    return Problem(
        "temp_files", f"{'; '.join(said)}; --repair {' and '.join(todo)}", repairable=True
    )
