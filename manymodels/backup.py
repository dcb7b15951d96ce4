"""Registry backups: one tar holding a consistent snapshot of the database and its artifacts.

    export_registry(Registry.open("mmregistry"), "backup.tar")   # while the router serves
    import_registry("backup.tar", "restored")                    # manymodels.restore

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

**Import** (``manymodels.restore``) restores into a new or empty directory only, checking every
member against the manifest before the registry becomes visible there.

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
import sqlite3
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from manymodels.durable_files import fsync_dir
from manymodels.exceptions import (
    ArtifactError,
    ArtifactNotFound,
    ManyModelsError,
    RegistryError,
)
from manymodels.parent_dirs import missing_parent
from manymodels.registry import schema as t
from manymodels.registry.client import Registry
from manymodels.registry.engine import now, sqlite_file
from manymodels.registry.location import sqlite_url
from manymodels.registry.ownership import check_store
from manymodels.registry.store import SqlStore, describe_url
from manymodels.tempnames import remove_dead_leftovers, writer_tag

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
    said = missing_parent(out)
    if said is not None:
        raise BadBackup(said)
    _check_format(out)
    _check_target(out, [Path(source).parent, *([registry.root] if registry.root else [])])
    # a misspelt --artifacts: not "artifact … is missing" of the first one, as if lost
    check_store(registry)
    remove_dead_leftovers(out.parent, ".tmp-export-")  # of an export killed before this one
    tmp = out.parent / f".tmp-export-{writer_tag()}-{os.urandom(4).hex()}-{out.name}"
    snapshot = tmp.with_name(tmp.name + ".db")
    try:
        _snapshot(registry, snapshot)
        schema_version, counts, required, optional = _describe(snapshot)
        db_sha, db_size = _file_digest(snapshot)
        members: dict[str, dict[str, Any]] = {DB_MEMBER: {"sha256": db_sha, "size": db_size}}
        digests: list[str] = []
        mode = _write_mode(out)
        with open(tmp, "xb") as f:
            with tarfile.open(fileobj=f, mode=mode, format=_TAR_FORMAT) as tar:
                tar.add(snapshot, arcname=DB_MEMBER, recursive=False, filter=_plain)
                for digest in sorted(required | optional):  # one in memory at a time, read verified
                    try:
                        data = _read_artifact(registry, digest, snapshot)
                    except ArtifactNotFound:
                        if digest in required:
                            raise
                        continue  # a run's global model an older gc deleted: retraining goes on
                    _add_bytes(tar, ARTIFACT_PREFIX + digest, data)
                    members[ARTIFACT_PREFIX + digest] = {"sha256": digest, "size": len(data)}
                    digests.append(digest)
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
            # after the tar is closed: its end blocks, and a compressor's last bytes and
            # trailer, are written only then (fsynced before, a power cut after the rename
            # could leave a backup.tar.gz cut short under its name)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
        fsync_dir(str(out.parent))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        snapshot.unlink(missing_ok=True)
    total = sum(m["size"] for m in members.values())
    return BackupSummary(str(out), schema_version, counts, len(digests), total)


_TAR_FORMAT = tarfile.PAX_FORMAT
_COMPRESSED = {".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.bz2": "w:bz2", ".tbz2": "w:bz2",
               ".tar.xz": "w:xz", ".txz": "w:xz"}  # fmt: skip


def _write_mode(out: Path) -> Any:
    """``backup.tar.gz`` is compressed as its name says, as ``tar -caf`` does: written as a
    plain tar under that name it was 1.1x the bytes a user expected to have saved, and a
    ``tar xzf`` of it failed ("not in gzip format"). import-registry reads all of these."""
    name = out.name.lower()
    return next((m for suffix, m in _COMPRESSED.items() if name.endswith(suffix)), "w")


# names that promise another format: ``backup.zip`` or ``backup.gz`` was written as a plain tar
# under that name, which ``unzip`` / ``gunzip`` then refused, and no larger a file than .tar
_OTHER_FORMATS = (".zip", ".gz", ".bz2", ".xz", ".zst", ".zstd", ".tzst", ".lz4", ".lzma",
                  ".7z", ".rar")  # fmt: skip


def _check_format(out: Path) -> None:
    """Refuse a name whose suffix says a format the backup would not be in (it is a tar)."""
    name = out.name.lower()
    if not any(name.endswith(s) for s in _COMPRESSED) and name.endswith(_OTHER_FORMATS):
        raise BadBackup(
            f"cannot write {out}: a backup is a tar, not {out.suffix}: name it .tar, or "
            ".tar.gz (.tgz), .tar.bz2 or .tar.xz to compress it"
        )


def _check_target(out: Path, roots: list[Path]) -> None:
    """Refuse an ``out`` the final rename would wrongly replace: a path inside the registry
    (its own ``registry.db`` would be overwritten by the tar) or an existing non-regular file
    (a device, a FIFO: replaced by a regular file, not written to)."""
    where = out.resolve()
    for root in roots:
        if where.is_relative_to(root.resolve()):
            raise BadBackup(f"cannot write {out}: it is inside the registry at {root}; "
                            "write the backup elsewhere")  # fmt: skip
    if out.exists() and not out.is_file():
        raise BadBackup(f"cannot write {out}: it exists and is not a regular file")


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


def _describe(snapshot: Path) -> tuple[str, dict[str, int], set[str], set[str]]:
    """The snapshot's schema version, row counts and referenced artifacts (what ``gc``
    keeps: ``SqlStore.referenced_digests``) — those versions and runs' data need, and the
    runs' global models, written when present — read through the usual open path; then it
    is switched to journal mode DELETE, so the member is one self-contained file."""
    store = SqlStore(sqlite_url(snapshot), create=False)
    try:
        digests = store.referenced_digests(global_models=False)
        optional = store.referenced_digests() - digests
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
    return str(version), counts, digests, optional


def _read_artifact(registry: Registry, digest: str, snapshot: Path) -> bytes:
    """The artifact's bytes, verified by the store; a missing or corrupted one is an error
    of its own type naming a version (or run) that references it. One whose version ``gc``
    deleted while the export ran (after the snapshot) is said so: ``doctor`` then finds
    nothing wrong, and the export only needs running again."""
    try:
        return registry.artifacts.get(digest)
    except ArtifactError as e:
        who, version = _used_by(snapshot, digest)
        if isinstance(e, ArtifactNotFound) and version is not None and _gone(registry, version):
            raise RegistryError(
                f"{who} was deleted from the registry while the export ran (by gc?), and its "
                f"artifact {digest[:12]} with it; no backup was written: run the export again"
            ) from e
        raise type(e)(
            f"{e} — it is referenced by {who}; no backup was written "
            "(manymodels doctor lists every such problem)"
        ) from e


def _gone(registry: Registry, version: tuple[str, int]) -> bool:
    try:
        registry.store.get_version(*version)
    except LookupError:
        return True
    return False


def _used_by(snapshot: Path, digest: str) -> tuple[str, tuple[str, int] | None]:
    """Who references ``digest`` in the snapshot, as words, and the version if one does."""
    with contextlib.closing(sqlite3.connect(snapshot)) as conn:
        row = conn.execute(
            "SELECT key, version FROM model_versions WHERE artifact_sha256 = ? "
            "OR data_sha256 = ? OR members_json LIKE ? ORDER BY key, version LIMIT 1",
            (digest, digest, f'%"{digest}"%'),
        ).fetchone()
        if row is not None:
            return f"partition '{row[0]}' v{row[1]}", (str(row[0]), int(row[1]))
        row = conn.execute(
            "SELECT run_id FROM runs WHERE data_source = ? LIMIT 1", (f"artifact:{digest}",)
        ).fetchone()
    return (f"run {row[0]}" if row is not None else "the registry"), None


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
