"""Checking a registry: can every version be loaded, every alias served, every run finished?

``check(registry)`` verifies every artifact a version references (its model and, when kept,
its training rows) against its sha256, looks for aliases pointing at versions that no longer
exist, lists the runs a ``--resume`` would finish, and counts half-written temp files of
killed writers. ``repair=True`` fixes only what needs no data it does not have:

- temp files of writers that died on this machine, and others older than the grace period,
  are removed (as ``gc`` would: ``manymodels.tempnames`` says how a writer is known dead);
- an alias pointing at a missing version is moved back along its history to the newest
  version that still exists, if that version's artifact verifies (recorded as a rollback, and
  only if nobody moved the alias meanwhile).

With a signing key, every version's signature is checked too: unsigned versions are one
problem (``manymodels sign`` signs them: a deliberate act of whoever holds the key, never a
repair, since it vouches for rows nobody has checked), and each signature that does not
verify is one (an altered row or another key's: nothing here can tell which bytes to trust).

Nothing else is touched: no version row is deleted, no artifact rewritten, no run resumed —
those need the bytes or the data, and each problem says what to do instead.

Cost: five queries over whole tables, and one read and sha256 of each *distinct* artifact (a
global model shared by every partition is read once): O(versions + bytes stored).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from manymodels.exceptions import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    BadSignature,
    VersionNotFound,
    first_line,
)
from manymodels.heartbeat import spoken
from manymodels.registry.checks import VersionDigests
from manymodels.registry.client import Registry
from manymodels.registry.entities import Run
from manymodels.serialization import describe, format_of
from manymodels.signing import OLD_SCHEME, Signer, key_id_of
from manymodels.tempnames import owner_pid

TEMP_GRACE_SECONDS = 3600.0  # as gc's: a live writer's temp file lives for milliseconds


@dataclass(frozen=True)
class Problem:
    """One thing wrong; ``key``/``version``/``alias``/``run_id``/``sha256`` say where."""

    kind: str  # model_missing | model_corrupted | model_unreadable | member_… | rows_…
    #            | dangling_alias | unfinished_run | temp_files | signature_missing
    #            | signature_invalid | signature_other_key
    message: str
    repairable: bool = False
    repaired: bool = False
    key: str | None = None
    version: int | None = None
    alias: str | None = None
    run_id: str | None = None
    sha256: str | None = None
    versions: int = 0  # how many versions reference a bad artifact

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Checkup:
    """What ``check`` looked at and what it found."""

    registry: str
    versions: int
    artifacts: int
    aliases: int
    runs: int
    problems: list[Problem] = field(default_factory=list)
    signed: bool = False  # whether signatures were checked (a signing key was set)

    @property
    def unresolved(self) -> list[Problem]:
        return [p for p in self.problems if not p.repaired]

    @property
    def ok(self) -> bool:
        return not self.unresolved

    def counts(self) -> str:
        """What was checked; artifacts are "verified" only when none had a problem (it said
        so beside a missing one)."""
        bad = any(p.sha256 for p in self.problems)
        return (
            f"{self.versions} version(s), {self.artifacts} artifact(s)"
            f"{'' if bad else ' verified'}, "
            f"{self.aliases} alias(es), {self.runs} run(s)"
            + (", signatures checked" if self.signed else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "registry": self.registry,
            "checked": {
                "versions": self.versions,
                "artifacts": self.artifacts,
                "aliases": self.aliases,
                "runs": self.runs,
            },
            "signatures_checked": self.signed,
            "problems": [p.to_dict() for p in self.problems],
            "repaired": sum(p.repaired for p in self.problems),
        }


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
    verdicts, formats = _verify(registry, (pair for r in rows for pair in _digests(r)))
    problems = _bad_artifacts(rows, verdicts)
    problems += _untrusted(registry, rows, formats)
    if registry.signer is not None:
        problems += _bad_signatures(rows, registry.signer, where)
    for key, alias, version in registry.dangling_aliases():
        problems.append(_dangling(registry, key, alias, version, verdicts, repair=repair))
    unfinished = registry.unfinished_runs()
    done_again = _done_again(registry, [run for run, _ in unfinished])
    problems += [
        _unfinished(run, lost, where) for run, lost in unfinished if run.run_id not in done_again
    ]
    temp = _temp_files(registry, grace_seconds, repair=repair)
    problems += [temp] if temp is not None else []
    return Checkup(
        registry=registry.location,
        versions=len(rows),
        artifacts=len(verdicts),
        aliases=registry.count_aliases(),
        runs=registry.count_runs(),
        problems=problems,
        signed=registry.signer is not None,
    )


def _verify(
    registry: Registry, digests: Iterable[tuple[str, str | None]]
) -> tuple[dict[str, str | None], dict[str, str]]:
    """``{digest: None if intact, else what is wrong}``, each distinct digest read once, and
    the format of each intact model (``serialization.format_of``), by digest."""
    verdicts: dict[str, str | None] = {}
    formats: dict[str, str] = {}
    for role, digest in digests:
        if digest is None or digest in verdicts:
            continue
        try:
            data = registry.artifacts.get(digest)
            verdicts[digest] = None
            if role != "rows":
                formats[digest] = format_of(data)
        except ArtifactNotFound:
            verdicts[digest] = "missing"
        except ArtifactCorrupted:
            verdicts[digest] = "corrupted"
        except ArtifactError as e:
            verdicts[digest] = f"unreadable: {first_line(e)}"
    return verdicts, formats


def _untrusted(
    registry: Registry, rows: list[VersionDigests], formats: dict[str, str]
) -> list[Problem]:
    """One problem when production versions hold a model (or a global member) in a format the
    registry no longer trusts: every reader refuses them, and doctor said "no problems" after
    ``trust --trusted-formats skops`` on a registry of pickles. Older versions in that format
    are counted beside them, not a problem of their own: retraining cannot change a version,
    so they would keep doctor failing until ``gc`` prunes them."""
    trusted = registry.trusted_formats
    bad = {digest for digest, found in formats.items() if found not in trusted}
    refused = [r for r in rows if any(d in bad for role, d in _digests(r) if role != "rows")]
    production = registry.store.alias_table("production")
    serving = [r for r in refused if production.get(r.key) == r.version]
    if not serving:
        return []
    kinds = sorted({formats[d] for d in bad})
    first = serving[0]
    older = len(refused) - len(serving)
    return [
        Problem(
            kind="untrusted_format",
            message=(
                f"{len(serving)} production version(s) hold {' and '.join(kinds)} artifacts, "
                f"which this registry no longer trusts (it loads {describe(trusted)}): every "
                f"reader refuses them, e.g. {first.key} v{first.version} (retrain them with "
                f"[artifacts] format = '{sorted(trusted)[0]}', or trust them again: manymodels "
                f"trust --trusted-formats {','.join(sorted(trusted | set(kinds)))})"
                + (f"; {older} older version(s) too, which gc prunes" if older else "")
            ),
            key=first.key,
            version=first.version,
            versions=len(serving),
        )
    ]


def _digests(r: VersionDigests) -> list[tuple[str, str | None]]:
    """A version's artifacts by role: its model, the global models that model names (an
    ensemble's members), its training rows."""
    return [
        ("model", r.artifact_sha256),
        *(("member", m) for m in r.members),
        ("rows", r.data_sha256),
    ]


_WHAT = {
    "model": "the model artifact",
    "member": "a global model (an ensemble member) in the model",
    "rows": "the training-rows artifact",
}

_RESTORE = "restore the file from a backup, or train the partition again"
_ADVICE = {  # a store that refuses to be read has lost nothing (a wrong secret, no network)
    "unreadable": "check the artifact store's address and credentials, then run doctor again",
}

_SAYS = {
    "missing": "is missing from the artifact store",
    "corrupted": "fails its sha256 check: corrupted or tampered with",
}


def _bad_artifacts(
    rows: Iterable[VersionDigests], verdicts: dict[str, str | None]
) -> list[Problem]:
    """One problem per bad artifact (a shared one is named once, with its version count)."""
    found: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for r in rows:
        for role, digest in _digests(r):
            if digest is not None and verdicts[digest] is not None:
                found.setdefault((role, digest), []).append((r.key, r.version))
    problems = []
    for (role, digest), versions in found.items():
        verdict = verdicts[digest] or ""
        kind = verdict.split(":")[0]
        key, version = versions[0]
        what = _WHAT[role]
        others = f" (and of {len(versions) - 1} other version(s))" if len(versions) > 1 else ""
        says = _SAYS.get(kind, f"is {verdict}")
        problems.append(
            Problem(
                kind=f"{role}_{kind}",
                message=f"{what} of {key} v{version}{others}, sha256 {digest[:12]}…, {says} "
                f"({_ADVICE.get(kind, _RESTORE)})",
                key=key,
                version=version,
                sha256=digest,
                versions=len(versions),
            )
        )
    return problems


def _bad_signatures(rows: list[VersionDigests], signer: Signer, where: str) -> list[Problem]:
    """One problem per signature that does not match its row; versions signed with another
    key are one problem per key, and unsigned versions one (a registry of 100,000 versions
    and a wrong key is one line, not 100,000)."""
    problems: list[Problem] = []
    groups: dict[str | None, list[VersionDigests]] = {}  # key id (None: unsigned) → versions
    old: list[VersionDigests] = []  # signed in the first format, which skips the schema
    for r in rows:
        if r.signature is not None and r.signature.startswith(f"{OLD_SCHEME}:"):
            old.append(r)
            continue
        other = key_id_of(r.signature)
        if r.signature is None or (other is not None and other != signer.key_id):
            groups.setdefault(other, []).append(r)
            continue
        try:
            signer.verify(
                r.signature, r.key, r.version, r.artifact_sha256, r.data_sha256,
                r.feature_schema_json,
            )  # fmt: skip
        except BadSignature as e:
            problems.append(
                Problem(
                    "signature_invalid",
                    f"{e} (restore the database from a backup, or train the partition again; "
                    "`manymodels sign` never replaces a signature)",
                    key=r.key,
                    version=r.version,
                    sha256=r.artifact_sha256,
                    versions=1,
                )
            )
    for key_id, versions in groups.items():
        first = versions[0]
        said = f"{len(versions)} version(s) (the first: {first.key} v{first.version})"
        if key_id is None:
            kind = "signature_missing"
            message = (
                f"{said} are not signed, so they are never loaded while a signing key is set; "
                f"once you trust them, sign them with: manymodels sign{where}"
            )
        else:
            kind = "signature_other_key"
            message = (
                f"{said} are signed with another key (id {key_id}; this key's is "
                f"{signer.key_id}), so they are never loaded with this one: set the key they "
                "were signed with (keys cannot be rotated yet)"
            )
        problems.append(
            Problem(kind, message, key=first.key, version=first.version, versions=len(versions))
        )
    if old:
        first = old[0]
        problems.append(
            Problem(
                "signature_old_format",
                f"{len(old)} version(s) (the first: {first.key} v{first.version}) carry a "
                "signature in the old format, which does not cover the feature schema, so they "
                "are never loaded: re-sign them (those whose old signature verifies) with: "
                f"manymodels sign{where}",
                key=first.key,
                version=first.version,
                versions=len(old),
            )
        )
    return problems


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


def _unfinished(run: Run, lost: int, where: str) -> Problem:
    pid = owner_pid(run.options.get("owner"))
    named = run.options.get("only")
    also = (
        " with the same --append data" if run.options.get("append")
        else f" with the same --partitions ({named})" if named is not None
        else " --changed-only" if run.options.get("changed_only") else ""
    )  # fmt: skip
    advice = f"finish it with: manymodels train SPEC DATA{where} --resume {run.run_id}" + also
    if run.killed:
        state = f"is still marked running, but its process (pid {pid}, on this machine) is gone"
    elif run.status == "running" and run.owner_alive:
        state = f"is running (process {pid} on this machine)"
        advice = "let it finish, or stop it and then " + advice
    elif run.silence is not None:
        state = (
            "is still marked running, but its process (on another machine, or before a "
            f"reboot) has sent no heartbeat for {spoken(run.silence)}"
        )
    elif run.beating:
        state = f"is running (its process elsewhere sent a heartbeat at {run.heartbeat_at})"
        advice = "let it finish, or stop it and then " + advice
    elif run.status == "running":
        state = "is still marked running (killed, unless it is training right now)"
    elif run.status == "interrupted":
        state = "was interrupted"
    else:
        state = f"{run.status} with {lost} partition(s) lost to infrastructure faults"
    return Problem(
        "unfinished_run",
        f"run {run.run_id} (spec '{run.spec_name}', data {run.data_source}) {state}: {advice}",
        run_id=run.run_id,
    )


SUPERSEDING_LOOKBACK = 200
"""Runs read, newest first, for one that did an unfinished run's work again."""


def _done_again(registry: Registry, unfinished: list[Run]) -> set[str]:
    """The unfinished runs whose work a later run did again, completely: the same spec and the
    same data (hash and fingerprint), every partition or the same ones (``_scope``: the same
    ``--partitions``, ``--append``, ``--changed-only``), completed with none failed. After
    Ctrl-C a user often runs the command again rather than ``--resume``: the interrupted run
    is then no problem to solve, and resuming it would only train every partition a second
    time. A run still training is never such."""
    stopped = [
        r for r in unfinished if not (r.status == "running" and (r.owner_alive or r.beating))
    ]
    if not stopped:
        return set()
    later = [
        r for r in registry.list_runs(limit=SUPERSEDING_LOOKBACK)
        if r.status == "completed" and r.n_failed == 0
        and r.n_trained + r.n_skipped == r.n_partitions
    ]  # fmt: skip
    return {
        run.run_id
        for run in stopped
        if any(
            r.spec_hash == run.spec_hash
            and r.data_fingerprint == run.data_fingerprint
            and r.started_at > run.started_at
            and (_scope(r) == ("all",) or _scope(r) == _scope(run))
            for r in later
        )
    }


def _scope(run: Run) -> tuple[Any, ...]:
    """Which partitions a run trains: all, or those it named (``--partitions``, a router's
    retrain of one partition: by their digest) or appended to, or the changed ones. A
    router's retrain killed with its router, its rows posted again and trained, stayed a
    problem for ever: only a full run could do its work again."""
    o = run.options
    if not {"only", "append", "changed_only"} & set(o):
        return ("all",)
    return (o.get("only_sha256"), bool(o.get("append")), bool(o.get("changed_only")))


def _temp_files(registry: Registry, grace_seconds: float, *, repair: bool) -> Problem | None:
    cutoff = time.time() - grace_seconds
    files, size = registry.artifacts.sweep_temporaries(cutoff, dry_run=True)
    if not files:
        return None
    said = (
        f"{files} half-written temp file(s) of killed writers ({size:,} bytes) in the "
        f"artifact store: their writers died on this machine, or they are older than "
        f"{grace_seconds:g}s"
    )
    if repair:
        registry.artifacts.sweep_temporaries(cutoff)
        return Problem("temp_files", f"{said}: removed", repairable=True, repaired=True)
    return Problem("temp_files", f"{said}; --repair removes them", repairable=True)
