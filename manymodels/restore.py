"""Restoring a registry backup (``manymodels.backup`` writes them and describes the format).

``import_registry`` restores into a directory that does not exist or is empty, never over a
registry. It stages the restore in a hidden sibling directory, checks every member's sha256
and size against the manifest (and refuses a member the manifest does not list, or any name
other than those an export writes — members are never extracted by their own path), opens
the staged registry through the usual open path (so an older schema is upgraded there), checks
its counts against the manifest and that every artifact it references arrived, and only then
renames the staged directory into place: ``rename`` replaces nothing but a missing or empty
directory. Any failure removes the staging directory. Reading the tar, where a hostile file
meets its limits, is ``restore_archive``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from manymodels.backup import (
    ARTIFACT_PREFIX,
    COUNTED,
    DB_MEMBER,
    BackupSummary,
    BadBackup,
)
from manymodels.durable_files import fsync_dir
from manymodels.exceptions import RegistryError
from manymodels.registry.client import DB_FILE, Registry
from manymodels.registry.engine import now
from manymodels.registry.migrations import HEAD, VERSIONS
from manymodels.registry.ownership import ID_META
from manymodels.restore_archive import Room, extract_member, listed_members, open_tar, read_manifest
from manymodels.tempnames import remove_dead_leftovers, writer_tag


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
        with open_tar(backup) as tar:
            room = Room(backup, target, shutil.disk_usage(staging).free)
            manifest = read_manifest(tar, backup, room)
        with open_tar(backup) as tar:  # again from the start: each member as it comes
            for info in listed_members(tar, manifest["members"], backup):
                extract_member(tar, info, manifest["members"][info.name]["sha256"], staging, backup)
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
