"""Restoring a registry backup (``manymodels.backup`` writes them and describes the format).

``import_registry`` restores into a directory that does not exist or is empty, never over a
registry. It stages the restore in a hidden sibling directory, checks every member's sha256
and size against the manifest (and refuses a member the manifest does not list, or any name
other than those an export writes — members are never extracted by their own path), opens
the staged registry through the usual open path (so an older schema is upgraded there), checks
its counts against the manifest and that every artifact it references arrived, and only then
renames the staged directory into place: ``rename`` replaces nothing but a missing or empty
directory. Any failure removes the staging directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select

from manymodels.backup import (
    ARTIFACT_PREFIX,
    COUNTED,
    DB_MEMBER,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    BackupSummary,
    BadBackup,
)
from manymodels.durable_files import fsync_dir
from manymodels.exceptions import RegistryError, first_line
from manymodels.registry.client import ARTIFACTS_DIR, DB_FILE, Registry
from manymodels.registry.engine import now
from manymodels.registry.migrations import HEAD, VERSIONS
from manymodels.registry.ownership import ID_META
from manymodels.tempnames import remove_dead_leftovers, writer_tag

_CHUNK = 1 << 20


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
    made = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    remove_dead_leftovers(target.parent, ".tmp-import-")  # of an import killed before this
    staging = target.parent / f".tmp-import-{writer_tag()}-{os.urandom(4).hex()}-{target.name}"
    try:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.mkdir()
        except OSError as e:
            raise RegistryError(f"cannot create a registry at {target}: {e}") from e
        with _open_tar(backup) as tar:
            room = _Room(backup, target, shutil.disk_usage(staging).free)
            manifest = _read_manifest(tar, backup, room)
        with _open_tar(backup) as tar:  # again from the start: each member as it comes
            for info in _listed(tar, manifest["members"], backup):
                _extract(tar, info, manifest["members"][info.name]["sha256"], staging, backup)
        _sync(staging)
        summary = _check_restored(staging, manifest, backup)
        _new_identity(staging)
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for directory in made:  # the parents it made, innermost first: nothing left behind
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    return BackupSummary(str(target), *summary)


# The member types an export writes (tarfile's regular file, never sparse). ``TarInfo.isreg``
# also accepts GNU sparse and contiguous files, and a pax sparse file is a regular one with a
# sparse map: a sparse member of 1 MB in the tar made the import write 2 GiB of zeros before
# its sha256 could be checked.
_PLAIN = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE})
_KINDS = {tarfile.GNUTYPE_SPARSE: "sparse", tarfile.CONTTYPE: "contiguous"}
_MAX_MANIFEST = 256 * 1024 * 1024  # ~150 bytes per artifact: far beyond 100,000 partitions
# The members a manifest within that size can list (each entry takes ~170 bytes), with room.
# Headers are read twice (to find the manifest, then to check and extract each member), kept
# never: this bounds the time of reading them.
_MAX_MEMBERS = _MAX_MANIFEST // 128


# Room kept free beyond the members' bytes: the staged database's upgrade and journal, the
# directories, and whatever else writes to the disk meanwhile.
_ROOM_MARGIN = 1 << 20


@dataclass(frozen=True)
class _Room:
    """The free bytes of the disk that holds ``target``, against which the members are
    counted as their headers are read: a compressed backup claims what it holds only in its
    tar headers (checked against the manifest, never against the disk). A tar.gz of 64 KB
    holds 64 MB of zeros, a tar.bz2 or tar.xz far more: the import filled the disk, then
    stopped with an ``OSError`` traceback (every other process writing there failing
    meanwhile); and listing the members decompressed each one to skip it, minutes of CPU
    for a member of 100 GB, before anything was compared."""

    backup: Path
    target: Path
    free: int

    def check(self, held: int) -> None:
        """Refuse, before a byte is written or the member after is read, members of
        ``held`` bytes so far that would not fit with a margin."""
        need = held + held // 10 + _ROOM_MARGIN
        if need > self.free:
            raise BadBackup(
                f"{self.backup} holds at least {_mib(held)} once unpacked; restoring it at "
                f"{self.target} needs {_mib(need)} with a margin, and that disk has "
                f"{_mib(self.free)} free: nothing was written (free some room, or restore "
                "elsewhere)"
            )


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB"


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


def _headers(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members' headers in tar order, none kept: ``tarfile`` keeps every header it reads
    (``TarFile.members``), ~750 bytes each."""
    while (info := tar.next()) is not None:  # the next call skips (reads) its data
        tar.members.clear()  # type: ignore[attr-defined]  # (typeshed omits it)
        yield info


def _read_manifest(tar: tarfile.TarFile, backup: Path, room: _Room) -> dict[str, Any]:
    """The manifest, checked; every header read to find it (an export writes it last) and
    counted, none kept: no more members than ``_MAX_MEMBERS``, nor more bytes than ``room``,
    refused as soon as they are read."""
    found: tarfile.TarInfo | None = None
    count = held = 0
    try:
        for info in _headers(tar):
            count += 1
            held += info.size
            room.check(held)
            if count > _MAX_MEMBERS:
                raise BadBackup(
                    f"{backup} holds more than {_MAX_MEMBERS:,} members, more than any "
                    "manifest lists: refusing it unread (not a backup manymodels wrote)"
                )
            if info.name == MANIFEST:
                if found is not None:
                    raise BadBackup(
                        f"{backup}: member {MANIFEST} appears twice; refusing an ambiguous backup"
                    )
                found = info
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BadBackup(f"{backup} is truncated or damaged: {first_line(e)}") from e
    if found is None or not found.isreg() or found.size > _MAX_MANIFEST:
        raise BadBackup(f"{backup} is not a manymodels registry backup (no {MANIFEST})")
    return _parse_manifest(_member_bytes(tar, found), backup)


def _listed(
    tar: tarfile.TarFile, members: dict[str, Any], backup: Path
) -> Iterator[tarfile.TarInfo]:
    """The members other than the manifest, in tar order, each checked as it is read: one
    the manifest lists, once, a regular file of the listed size; then that none is missing.
    Only the names listed are remembered: a backup of millions of headers kept them all
    (~1.5 GB for the 2 million ``_MAX_MEMBERS`` allows) before any was compared."""
    seen: set[str] = set()
    try:
        for found in _headers(tar):
            name = found.name
            if name == MANIFEST:
                continue  # the one read already (a second was refused)
            if name not in members:
                raise BadBackup(f"{backup}: member {name} is not in its manifest (tampered with?)")
            if name in seen:
                raise BadBackup(
                    f"{backup}: member {name} appears twice; refusing an ambiguous backup"
                )
            seen.add(name)
            if found.isreg() and (found.type not in _PLAIN or found.issparse()):
                kind = "sparse" if found.issparse() else _KINDS.get(found.type, "special")
                raise BadBackup(
                    f"{backup}: member {name} is a {kind} file, "
                    "which an export never writes: refusing it unread (a sparse member of a "
                    "few bytes in the tar can claim terabytes of zeros)"
                )
            entry = members[name]
            if not found.isreg() or found.size != entry["size"]:
                raise BadBackup(
                    f"{backup}: member {name} is not the file its manifest lists (size "
                    f"{found.size}, listed {entry['size']}): corrupted or tampered with"
                )
            yield found
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BadBackup(f"{backup} is truncated or damaged: {first_line(e)}") from e
    for name in members:
        if name not in seen:
            raise BadBackup(f"{backup}: member {name} is missing (the file is incomplete)")


def _parse_manifest(data: bytes, backup: Path) -> dict[str, Any]:
    def bad(why: str) -> BadBackup:
        return BadBackup(f"{backup}: {MANIFEST} {why}")

    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad(f"is not JSON ({e})") from e
    except RecursionError:  # "[[[[…": json.loads recurses once per level
        raise bad("is not JSON (it is nested too deeply)") from None
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
    if str(found[0]) not in VERSIONS:  # said here: the open's error named the staging dir
        version = str(found[0])
        newer = version.isascii() and version.isdigit() and int(version) > int(HEAD)
        raise BadBackup(
            f"{backup} holds a registry of schema version {version[:20]}, "
            + (
                f"newer than this manymodels reads (version {HEAD}): it was exported by a "
                "newer manymodels — upgrade manymodels to import it"
                if newer
                else f"which no manymodels writes (this one reads version {HEAD})"
            )
            + "; nothing was imported"
        )
    with Registry.open(staging) as reg:
        # not a run's global models: a backup made before gc kept the newest full run's (when
        # no version chose them) does not hold them, and retraining only scores them if found
        referenced = reg.store.referenced_digests(global_models=False)
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


def _new_identity(staging: Path) -> None:
    """The restored copy is a registry of its own: its id (``registry.ownership``) is dropped,
    to be made anew on first use, and its runs still going are interrupted. With the
    original's id, the copy's ``gc`` read the marks the original leaves on its store as its
    own, and deleted the original's newer models when pointed at that store."""
    with contextlib.closing(sqlite3.connect(staging / DB_FILE)) as conn:
        conn.execute("DELETE FROM meta WHERE name = ?", (ID_META,))
        # a run going when the backup was taken goes on in the original only: here it is
        # interrupted, and resumable at once (marked running, it named the original's live
        # process, and ``--resume`` refused to take it over while that one ran)
        conn.execute(
            "UPDATE runs SET status = 'interrupted', error = ?, ended_at = ? "
            "WHERE status = 'running'",  # ended here, for this copy: its elapsed time stops
            ("running when the backup was taken", now()),
        )
        conn.commit()


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
    fsync_dir(str(target.parent))
