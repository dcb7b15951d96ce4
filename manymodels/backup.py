"""Registry backups: one tar holding a consistent snapshot of the database and its artifacts.

    export_registry(Registry.open("mmregistry"), "backup.tar")   # while the router serves
    import_registry("backup.tar", "restored")                    # into a new registry

**Export** copies the SQLite database with SQLite's online backup API, in one step: the copy is
one read transaction of the source, so it is consistent while a router reads and a training
run commits (WAL: that reader blocks no writer). The artifacts written into the tar are exactly
those the *snapshot* references — ``referenced_digests`` of the copy, the same set ``gc``
keeps: every version's model (a global model shared by many versions once), its training
rows, and runs' uploaded data. Each is read through the artifact store, so a missing or
corrupted one stops the export with its name before anything is written at ``FILE``. The tar
is written under a temp name beside ``FILE`` and renamed onto it only when complete and
flushed, so ``FILE`` is never half a backup.

A tar holds, in this order (the manifest last: it is written once every size is known, so
an artifact is held in memory only while it is written)::

    registry.db            the database snapshot (journal mode DELETE: one self-contained file)
    artifacts/<sha256>     one member per artifact, named by its digest
    manifest.json          format and schema versions, counts, sha256 and size of every member

**Import** restores into a registry directory that does not exist or is empty, never over a
registry: it stages everything in a hidden sibling directory, checks every member's sha256 and
size against the manifest (and no member the manifest does not list, no name other than those
above), opens the staged registry through the usual open path (an older schema is upgraded
there), checks that every artifact the database references arrived, and only then renames the
staged directory into place. Any failure removes the staging directory: nothing is left behind.

Signatures (``manymodels.signing``) are rows of the database and are copied byte for byte, so a
signed registry restored verifies with the same key. The manifest is a check against damage,
not an authentication: a registry that must resist tampering is signed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select

from manymodels.exceptions import ArtifactError, ManyModelsError, RegistryError, first_line
from manymodels.registry import schema as t
from manymodels.registry.client import ARTIFACTS_DIR, DB_FILE, Registry
from manymodels.registry.engine import now, sqlite_file
from manymodels.registry.store import SqlStore, describe_url
from manymodels.tempnames import writer_tag

FORMAT = "manymodels-registry-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DB_MEMBER = "registry.db"
ARTIFACT_PREFIX = "artifacts/"
_CHUNK = 1 << 20
COUNTED = {  # manifest counts: what a restore is compared against
    "runs": t.runs,
    "partitions": t.partitions,
    "versions": t.model_versions,
    "aliases": t.aliases,
}


class BadBackup(ManyModelsError, ValueError):
    """A backup file that is not one, is damaged or tampered with, or does not fit its
    manifest; or a target it may not be restored into."""


@dataclass(frozen=True)
class BackupSummary:
    """What an export wrote or an import restored."""

    path: str
    schema_version: str
    counts: dict[str, int]
    artifacts: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_registry(registry: Registry, out: str | Path) -> BackupSummary:
    """Write a backup of ``registry`` to ``out`` (a tar; replaced atomically if it exists).

    Safe while the registry is served and written: the database is copied in one read
    transaction, and only the artifacts that copy references are written. Raises
    ``ArtifactError`` (naming the artifact and a version using it) when one is missing or
    corrupted; ``out`` is then left as it was.
    """
    out = Path(out)
    source = sqlite_file(registry.db_url)
    if source is None:
        raise RegistryError(
            f"export-registry copies SQLite registries only; {describe_url(registry.db_url)} "
            "is another database (back it up with its own tools, and the artifact store beside)"
        )
    if out.is_dir():
        raise BadBackup(f"{out} is a directory: give the path of the tar file to write")
    if not out.parent.is_dir():
        raise BadBackup(f"cannot write {out}: directory {out.parent} does not exist")
    tmp = out.parent / f".tmp-export-{writer_tag()}-{os.urandom(4).hex()}-{out.name}"
    snapshot = tmp.with_name(tmp.name + ".db")
    try:
        _snapshot(registry, snapshot)
        schema_version, counts, digests = _describe(snapshot)
        db_sha, db_size = _file_digest(snapshot)
        members: dict[str, dict[str, Any]] = {DB_MEMBER: {"sha256": db_sha, "size": db_size}}
        with open(tmp, "xb") as f, tarfile.open(fileobj=f, mode="w", format=_TAR_FORMAT) as tar:
            tar.add(snapshot, arcname=DB_MEMBER, recursive=False, filter=_plain)
            for digest in sorted(digests):  # one artifact in memory at a time, read verified
                data = _read_artifact(registry, digest, snapshot)
                _add_bytes(tar, ARTIFACT_PREFIX + digest, data)
                members[ARTIFACT_PREFIX + digest] = {"sha256": digest, "size": len(data)}
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "schema_version": schema_version,
                "created_at": now(),
                "source": {
                    "database": describe_url(registry.db_url),
                    "artifacts": registry.artifacts.url,
                },
                "counts": {**counts, "artifacts": len(digests)},
                "members": members,
            }
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        snapshot.unlink(missing_ok=True)
    total = sum(m["size"] for m in members.values())
    return BackupSummary(str(out), schema_version, counts, len(digests), total)


def import_registry(backup: str | Path, target: str | Path) -> BackupSummary:
    """Restore the backup at ``backup`` as a new registry at ``target`` (a directory that
    does not exist, or is empty).

    Nothing is visible at ``target`` until every member has matched the manifest's sha256 and
    the staged registry has opened (and, if older, been upgraded) and references no artifact
    the backup lacks; any failure leaves ``target`` as it was and removes what was staged.
    Raises ``BadBackup`` for a file that is not a backup or does not fit its manifest, and
    for a ``target`` that already holds something.
    """
    backup, target = Path(backup), Path(target).absolute()
    _require_empty(target)
    if not backup.exists():
        raise BadBackup(f"no backup file at {backup}")
    if not backup.is_file():
        raise BadBackup(f"{backup} is not a file: give the path of a backup tar")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RegistryError(f"cannot create a registry at {target}: {e}") from e
    staging = target.parent / f".tmp-import-{writer_tag()}-{os.urandom(4).hex()}-{target.name}"
    try:
        staging.mkdir()
        with _open_tar(backup) as tar:
            manifest, listed = _read_manifest(tar, backup)
            for info in listed:
                _extract(tar, info, manifest["members"][info.name]["sha256"], staging, backup)
        _sync(staging)
        summary = _check_restored(staging, manifest, backup)
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BackupSummary(str(target), *summary)


# ---- export ---------------------------------------------------------------------------------

_TAR_FORMAT = tarfile.PAX_FORMAT


def _snapshot(registry: Registry, path: Path) -> None:
    """Copy the registry's database to ``path`` with SQLite's online backup API in one step
    (one read transaction of the source: a consistent state, whatever commits meanwhile),
    through the registry's own engine (a read-only registry is read as it reads it)."""
    raw = registry.store.engine.raw_connection()
    try:
        source = raw.driver_connection
        assert isinstance(source, sqlite3.Connection)
        copy = sqlite3.connect(path)
        try:
            source.backup(copy)  # pages=-1: every page in one step
        finally:
            copy.close()
    except sqlite3.Error as e:
        raise RegistryError(f"cannot copy registry database {registry.db_url}: {e}") from e
    finally:
        raw.close()


def _describe(snapshot: Path) -> tuple[str, dict[str, int], set[str]]:
    """The snapshot's schema version, row counts and referenced artifacts (what ``gc``
    keeps: ``SqlStore.referenced_digests``), read through the usual open path; then it is
    switched to journal mode DELETE, so the member is one self-contained file."""
    store = SqlStore(f"sqlite:///{snapshot}", create=False)
    try:
        digests = store.referenced_digests()
        with store.engine.connect() as conn:
            version = conn.execute(
                select(t.meta.c.value).where(t.meta.c.name == "schema_version")
            ).scalar_one()
            counts = {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in COUNTED.items()
            }
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(snapshot)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    return str(version), counts, digests


def _read_artifact(registry: Registry, digest: str, snapshot: Path) -> bytes:
    """The artifact's bytes, verified by the store; a missing or corrupted one is an error
    of its own type naming a version (or run) that references it."""
    try:
        return registry.artifacts.get(digest)
    except ArtifactError as e:
        raise type(e)(
            f"{e} — it is referenced by {_used_by(snapshot, digest)}; no backup was written "
            "(manymodels doctor lists every such problem)"
        ) from e


def _used_by(snapshot: Path, digest: str) -> str:
    with contextlib.closing(sqlite3.connect(snapshot)) as conn:
        row = conn.execute(
            "SELECT key, version FROM model_versions WHERE artifact_sha256 = ? "
            "OR data_sha256 = ? ORDER BY key, version LIMIT 1",
            (digest, digest),
        ).fetchone()
        if row is not None:
            return f"partition '{row[0]}' v{row[1]}"
        row = conn.execute(
            "SELECT run_id FROM runs WHERE data_source = ? LIMIT 1", (f"artifact:{digest}",)
        ).fetchone()
    return f"run {row[0]}" if row is not None else "the registry"


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """A member that says nothing about who wrote it: no owner, mode 0644."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = _plain(tarfile.TarInfo(name))
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _file_digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- import ---------------------------------------------------------------------------------

_MAX_MANIFEST = 256 * 1024 * 1024  # ~150 bytes per artifact: far beyond 100,000 partitions


def _require_empty(target: Path) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise BadBackup(f"{target} is a file: give a new or empty directory to restore into")
    held = sorted(p.name for p in target.iterdir())
    if held:
        shown = ", ".join(held[:3]) + (", …" if len(held) > 3 else "")
        raise BadBackup(
            f"registry {target} is not empty (it holds {shown}): import-registry restores "
            "only into a new or empty directory; give another --registry, or move this one "
            "aside first"
        )


@contextlib.contextmanager
def _open_tar(backup: Path) -> Iterator[tarfile.TarFile]:
    try:
        tar = tarfile.open(backup, "r:*")  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BadBackup(f"{backup} is not a manymodels registry backup (not a tar file)") from e
    with tar:
        yield tar


def _read_manifest(
    tar: tarfile.TarFile, backup: Path
) -> tuple[dict[str, Any], list[tarfile.TarInfo]]:
    """The manifest, checked, and the other members in tar order: exactly the members it
    lists, each a regular file of the listed size under a name we write."""
    try:
        infos = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BadBackup(f"{backup} is truncated or damaged: {first_line(e)}") from e
    names = [i.name for i in infos]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise BadBackup(f"{backup}: member {twice} appears twice; refusing an ambiguous backup")
    by_name = dict(zip(names, infos, strict=True))
    info = by_name.get(MANIFEST)
    if info is None or not info.isreg() or info.size > _MAX_MANIFEST:
        raise BadBackup(f"{backup} is not a manymodels registry backup (no {MANIFEST})")
    manifest = _parse_manifest(_member_bytes(tar, info), backup)
    members: dict[str, Any] = manifest["members"]
    for name in names:
        if name != MANIFEST and name not in members:
            raise BadBackup(f"{backup}: member {name} is not in its manifest (tampered with?)")
    for name, entry in members.items():
        found = by_name.get(name)
        if found is None:
            raise BadBackup(f"{backup}: member {name} is missing (the file is incomplete)")
        if not found.isreg() or found.size != entry["size"]:
            raise BadBackup(
                f"{backup}: member {name} is not the file its manifest lists (size "
                f"{found.size}, listed {entry['size']}): corrupted or tampered with"
            )
    return manifest, [i for i in infos if i.name != MANIFEST]


def _parse_manifest(data: bytes, backup: Path) -> dict[str, Any]:
    def bad(why: str) -> BadBackup:
        return BadBackup(f"{backup}: {MANIFEST} {why}")

    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad(f"is not JSON ({e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise bad(f"is not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise bad(
            f"has format version {version!r}; this manymodels reads version {FORMAT_VERSION} "
            "(restore it with the manymodels that wrote it, or a newer one)"
        )
    members, counts = manifest.get("members"), manifest.get("counts")
    if not isinstance(members, dict) or DB_MEMBER not in members or not isinstance(counts, dict):
        raise bad(f"lists no {DB_MEMBER}, or no counts")
    if not isinstance(manifest.get("schema_version"), str):
        raise bad("has no schema_version")
    for name, entry in members.items():
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        size = entry.get("size") if isinstance(entry, dict) else None
        ok_name = name == DB_MEMBER or (
            name.startswith(ARTIFACT_PREFIX) and name.removeprefix(ARTIFACT_PREFIX) == digest
        )
        if not (isinstance(digest, str) and _is_sha256(digest) and ok_name):
            raise bad(f"lists member {name[:100]} with no valid sha256, or under a wrong name")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad(f"lists member {name[:100]} without a valid size")
    return manifest


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _member_bytes(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(info)
    assert f is not None  # a regular file
    with f:
        return f.read()


def _extract(
    tar: tarfile.TarFile, info: tarfile.TarInfo, digest: str, staging: Path, backup: Path
) -> None:
    """Copy one member into the staged registry, hashing as it goes; a mismatch is refused
    with the member's name (the file is removed with the staging directory)."""
    if info.name == DB_MEMBER:
        dest = staging / DB_FILE
    else:
        dest = staging / ARTIFACTS_DIR / digest[:2] / digest[2:4] / digest
        dest.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(info)
    assert source is not None
    h = hashlib.sha256()
    with source, open(dest, "xb") as out:
        _copy(source, out, h)
    if h.hexdigest() != digest:
        raise BadBackup(
            f"{backup}: member {info.name} does not match its sha256 in the manifest "
            "(corrupted or tampered with); nothing was imported"
        )


def _copy(source: IO[bytes], out: IO[bytes], h: Any) -> None:
    while chunk := source.read(_CHUNK):
        h.update(chunk)
        out.write(chunk)


def _sync(staging: Path) -> None:
    """Make every staged file durable before it becomes visible: one ``syncfs`` (the
    artifact store's) for the whole filesystem rather than an fsync per file."""
    from manymodels.artifacts import LocalArtifactStore

    LocalArtifactStore(staging).sync()


def _check_restored(
    staging: Path, manifest: dict[str, Any], backup: Path
) -> tuple[str, dict[str, int], int, int]:
    """Open the staged registry the usual way (an older schema is upgraded here) and check it
    against the manifest: its counts, and every artifact it references present."""
    with contextlib.closing(sqlite3.connect(staging / DB_FILE)) as conn:
        try:
            found = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise BadBackup(f"{backup}: {DB_MEMBER} is not a registry database ({e})") from e
    if found is None or found[0] != manifest["schema_version"]:
        raise BadBackup(
            f"{backup}: {DB_MEMBER} has schema version {found and found[0]!r}, its manifest "
            f"says {manifest['schema_version']!r}"
        )
    with Registry.open(staging) as reg:
        referenced = reg.store.referenced_digests()
        with reg.store.engine.connect() as conn:
            counts = {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in COUNTED.items()
            }
    held = {n.removeprefix(ARTIFACT_PREFIX) for n in manifest["members"] if n != DB_MEMBER}
    missing = sorted(referenced - held)
    if missing:
        raise BadBackup(
            f"{backup}: {DB_MEMBER} references {len(missing)} artifact(s) the backup does not "
            f"hold (first artifacts/{missing[0]}); nothing was imported"
        )
    listed = manifest["counts"]
    for name, n in counts.items():
        if listed.get(name) != n:
            raise BadBackup(
                f"{backup}: its manifest counts {listed.get(name)!r} {name}, {DB_MEMBER} holds "
                f"{n}; nothing was imported"
            )
    total = sum(int(m["size"]) for m in manifest["members"].values())
    return manifest["schema_version"], counts, len(held), total


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename the staged registry onto ``target``: atomic, and it replaces only a missing or
    empty directory (``rename`` refuses a non-empty one), so a registry created there
    meanwhile is never overwritten."""
    try:
        os.rename(staging, target)
    except OSError as e:
        if target.is_dir() and any(target.iterdir()):
            _require_empty(target)  # raises with the usual message
        raise RegistryError(f"cannot move the restored registry to {target}: {e}") from e
    _fsync_dir(target.parent)
