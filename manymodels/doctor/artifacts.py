"""Doctor's checks of a registry's bytes: every artifact against its sha256, each model's
format against what the registry trusts, and every signature against its row. Each distinct
artifact is read once (a global model shared by every partition, too)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from manymodels.doctor.findings import Problem
from manymodels.exceptions import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactStoreUnavailable,
    BadSignature,
    first_line,
)
from manymodels.registry.checks import VersionDigests
from manymodels.registry.client import Registry
from manymodels.serialization import describe, format_of
from manymodels.signing import OLD_SCHEME, Signer, key_id_of

UNCHECKED = "unchecked: the artifact store does not answer"
NOT_ITS_STORE = "unchecked: the artifact store holds none of this registry's models"


def verify(
    registry: Registry, digests: Iterable[tuple[str, str | None]]
) -> tuple[dict[str, str | None], dict[str, str], ArtifactStoreUnavailable | None]:
    """``{digest: None if intact, else what is wrong}``, each distinct digest read once, the
    format of each intact model (``serialization.format_of``), by digest, and the error of a
    store that did not answer: the first such read ends the reading (each waited out the
    client's retries: 8 s an artifact, minutes in all), and the digests left are
    ``UNCHECKED``."""
    verdicts: dict[str, str | None] = {}
    formats: dict[str, str] = {}
    down: ArtifactStoreUnavailable | None = None
    for role, digest in digests:
        if digest is None or digest in verdicts:
            continue
        if down is not None:
            verdicts[digest] = UNCHECKED
            continue
        try:
            data = registry.artifacts.get(digest)
            verdicts[digest] = None
            if role != "rows":
                formats[digest] = format_of(data)
        except ArtifactStoreUnavailable as e:
            down, verdicts[digest] = e, UNCHECKED
        except ArtifactNotFound:
            verdicts[digest] = "missing"
        except ArtifactCorrupted:
            verdicts[digest] = "corrupted"
        except ArtifactError as e:
            verdicts[digest] = f"unreadable: {first_line(e)}"
    return verdicts, formats, down


def wrong_store(registry: Registry) -> Problem | None:
    """One problem for a store that holds none of the registry's models (a misspelt bucket or
    prefix: ``registry.ownership.check_store``, which serve, score, train and gc refuse it
    by). Read artifact by artifact, each was "missing" and advised a restore or a retrain —
    one line per version, 100,000 at 100,000 partitions — where the fix is the URL. A store
    that does not answer is left to ``verify``, which says so."""
    from manymodels.registry.ownership import check_store, own_directory

    try:
        check_store(registry)
    except ArtifactStoreUnavailable:
        return None
    except ArtifactError as e:
        again = "" if own_directory(registry) else ": run doctor with that store"
        said = f"{first_line(e)} (its artifacts were not checked{again})"
        return Problem(kind="artifact_store_wrong", message=said)
    return None


def unreachable_store(down: ArtifactStoreUnavailable, verdicts: dict[str, str | None]) -> Problem:
    """One problem for a store that did not answer, not one per artifact it holds."""
    unchecked = sum(v == UNCHECKED for v in verdicts.values())
    return Problem(
        kind="artifact_store_unreachable",
        message=f"the artifact store does not answer ({first_line(down)}): {unchecked} of "
        f"{len(verdicts)} artifact(s) not checked (check that it is up and reachable from "
        "here, then run doctor again)",
    )


def untrusted(
    registry: Registry, rows: list[VersionDigests], formats: dict[str, str]
) -> list[Problem]:
    """One problem when production versions hold a model (or a global member) in a format the
    registry no longer trusts: every reader refuses them, and doctor said "no problems" after
    ``trust --trusted-formats skops`` on a registry of pickles. Older versions in that format
    are counted beside them, not a problem of their own: retraining cannot change a version,
    so they would keep doctor failing until ``gc`` prunes them."""
    trusted = registry.trusted_formats
    bad = {digest for digest, found in formats.items() if found not in trusted}
    refused = [r for r in rows if any(d in bad for role, d in digests_of(r) if role != "rows")]
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


def digests_of(r: VersionDigests) -> list[tuple[str, str | None]]:
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


def bad_artifacts(rows: Iterable[VersionDigests], verdicts: dict[str, str | None]) -> list[Problem]:
    """One problem per bad artifact (a shared one is named once, with its version count)."""
    found: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for r in rows:
        for role, digest in digests_of(r):
            if digest is not None and verdicts[digest] is not None:
                found.setdefault((role, digest), []).append((r.key, r.version))
    problems = []
    for (role, digest), versions in found.items():
        verdict = verdicts[digest] or ""
        if verdict in (UNCHECKED, NOT_ITS_STORE):  # the store's one problem says so
            continue
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


def bad_signatures(rows: list[VersionDigests], signer: Signer, where: str) -> list[Problem]:
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


def bad_global_signatures(registry: Registry, signer: Signer, where: str) -> list[Problem]:
    """The global model records of runs (those a retrain of some partitions loads) that carry
    no signature, one problem for all, as for versions; and one per signature that does not
    verify. A retrain leaves such a model out (``signing.global_refusal``): the operator
    learned it only from a retrain's record."""
    unsigned: list[tuple[str, dict[str, Any]]] = []
    problems: list[Problem] = []
    for run_id, record in registry.store.global_model_records():
        if record.get("signature") is None:
            unsigned.append((run_id, record))
            continue
        try:
            signer.verify_global(record["signature"], str(record["sha256"]))
        except BadSignature as e:
            problems.append(
                Problem(
                    "global_signature_invalid",
                    f"run {run_id}: {e} (a retrain of some partitions leaves it out; a full "
                    "training run fits and signs it again)",
                    run_id=run_id,
                    sha256=str(record["sha256"]),
                )
            )
    if unsigned:
        run_id, first = unsigned[0]
        problems.insert(
            0,
            Problem(
                "global_signature_missing",
                f"{len(unsigned)} global model record(s) of runs (the first: run {run_id}, "
                f"model {str(first['sha256'])[:12]}) are not signed, so a retrain of some "
                "partitions leaves them out while a signing key is set; once you trust them, "
                f"sign them with: manymodels sign{where}",
                run_id=run_id,
                sha256=str(first["sha256"]),
            ),
        )
    return problems
