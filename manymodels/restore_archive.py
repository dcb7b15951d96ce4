"""Reading a backup tar for ``restore``: its manifest and members, each checked as it is read
and never trusted — a member is refused unless the manifest lists it, once, as a regular file
of the listed size, and copied only under the name an export writes, hashed as it goes. Apart
from the restore's staging and checks, because a hostile file meets these first: every limit
(members, manifest size, disk room) is here, where the headers are read."""

from __future__ import annotations

import contextlib
import hashlib
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from manymodels.backup import (
    ARTIFACT_PREFIX,
    DB_MEMBER,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    BadBackup,
)
from manymodels.exceptions import first_line
from manymodels.registry.client import ARTIFACTS_DIR, DB_FILE

_CHUNK = 1 << 20

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
class Room:
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


@contextlib.contextmanager
def open_tar(backup: Path) -> Iterator[tarfile.TarFile]:
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


def read_manifest(tar: tarfile.TarFile, backup: Path, room: Room) -> dict[str, Any]:
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


def listed_members(
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


def extract_member(
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
