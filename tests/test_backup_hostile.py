"""Hostile backups (``manymodels.restore``): a sparse member is refused unread, and a member
named twice among many is found in one pass.

``TarInfo.isreg`` accepts sparse members, and reading one yields its holes as zeros: a tar of
10 KB holding a pax sparse member that claims 64 MiB made ``import-registry`` write 64 MiB
(a GNU sparse member of 1.2 MB, 2 GiB in 27 s; a claim of terabytes fills the disk) before the
member's sha256 could be found wrong. An export never writes a sparse member.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from pathlib import Path

import pytest
from factories import backup_plus_member, small_backup
from typer.testing import CliRunner

from manymodels import restore, restore_archive
from manymodels.backup import MANIFEST
from manymodels.cli import app

# slow (CI; the default run's 10 minutes): hostile archives built at size
pytestmark = pytest.mark.slow

CLAIMED = 64 << 20  # bytes of zeros the member claims; the tar holds 1 KB of it


def sparse_member(name: str, size: int) -> tuple[tarfile.TarInfo, bytes]:
    """A GNU sparse file (pax format 1.0, as ``tar --sparse --format=pax`` writes it) of
    ``size`` bytes: one data byte at its end, a hole before it."""
    data = f"1\n{size - 1}\n1\n".encode().ljust(512, b"\0") + b"\0"
    info = tarfile.TarInfo("GNUSparseFile.0/member")
    info.size = len(data)
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(size),
    }
    return info, data


def test_a_sparse_member_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    good = small_backup(tmp_path)
    digest = "0" * 64  # the sha256 check would come only after the whole member was written
    name = f"artifacts/{digest}"
    bomb = tmp_path / "bomb.tar"
    backup_plus_member(good, bomb, sparse_member(name, CLAIMED), listed=(name, digest, CLAIMED),
                       tar_format=tarfile.PAX_FORMAT)  # fmt: skip
    assert bomb.stat().st_size < 2 * good.stat().st_size  # a few KB more than the backup

    target = tmp_path / "restored"
    result = CliRunner().invoke(app, ["import-registry", str(bomb), "--registry", str(target)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and f"member {name} is a sparse file" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.tar", "good.tar", "reg"]


def test_a_member_named_twice_among_many_is_refused_without_a_quadratic_search(
    tmp_path: Path,
) -> None:
    """The duplicate was found with ``names.count`` for each name in turn: over 20,000
    members named twice at the end, 5.5 s; a million (a tar.gz of a few MB) took hours. A
    backup of 100,000 partitions has as many members; one pass takes ~1 s for 80,000. Each
    member is now checked as it is read (after the manifest, found first), against the set
    of names seen: the second of a name is refused as it comes, the rest never read."""
    n = 80_000
    bomb = tmp_path / "twice.tar"
    held = {f"artifacts/{hashlib.sha256(b'%d' % i).hexdigest()}": b"%d" % i for i in range(n)}
    names = list(held)
    with bomb.open("wb") as tar:  # the rest is never read
        tar.writelines(_ustar(name, held[name]) for name in [names[0], names[0], *names[1:]])
        tar.write(_ustar(MANIFEST, _manifest(held)))  # checked against as they are read
        tar.write(b"\0" * 1024)  # the end of the archive
    started = time.monotonic()
    result = CliRunner().invoke(
        app, ["import-registry", str(bomb), "--registry", str(tmp_path / "restored")]
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert f"member {names[0]} appears twice" in result.output
    assert elapsed < 30, f"{elapsed:.0f} s: a generous bound for 'does not hang' (was ~120 s)"


def _ustar(name: str, data: bytes) -> bytes:
    """A tar member as ``tarfile`` writes it in ``USTAR_FORMAT`` (the same header bytes),
    made ~4x as fast as ``TarFile.addfile``: 80,000 of them took 2.4 s of the test's 5."""
    head = b"".join([
        name.encode().ljust(100, b"\0"), b"0000644\0", b"0000000\0", b"0000000\0",
        b"%011o\0" % len(data), b"00000000000\0", b" " * 8, b"0", b"\0" * 100, b"ustar\x0000",
    ]).ljust(512, b"\0")  # fmt: skip
    head = head[:148] + b"%06o\0 " % sum(head) + head[156:]  # the checksum, spaces counted
    return head + data.ljust(-(-len(data) // 512) * 512, b"\0")


def _add_manifest(tar: tarfile.TarFile, held: dict[str, bytes]) -> None:
    """A manifest listing the artifacts ``held`` (name: bytes) and a database, as an export
    writes it last: the members are refused for what they are, not for a missing manifest."""
    data = _manifest(held)
    info = tarfile.TarInfo(MANIFEST)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _manifest(held: dict[str, bytes]) -> bytes:
    """``_add_manifest``'s member's bytes."""
    members = {n: {"sha256": n.removeprefix("artifacts/"), "size": len(b)} for n, b in held.items()}
    members["registry.db"] = {"sha256": "0" * 64, "size": 0}
    manifest = {
        "format": "manymodels-registry-backup",
        "format_version": 1,
        "schema_version": "1",
        "counts": {},
        "members": members,
    }
    return json.dumps(manifest).encode()


def test_the_headers_of_a_backup_are_not_kept_while_it_is_listed(tmp_path: Path) -> None:
    """Every member header read was kept (by tarfile, and by the import) until the manifest,
    written last, was read: 300,000 empty members (a 475 KB tar.xz) took 224 MB, and the 2
    million ``_MAX_MEMBERS`` allows ~1.5 GB, before the first was compared. Now none is kept:
    the manifest is found in a first pass, then each member is checked as it is read. Shown
    by a tar of 10,000 members the manifest does not list: refused at the first, ~35 KB
    held (headers kept, as tarfile does: 4.8 MiB for these)."""
    import tracemalloc

    bomb = tmp_path / "many.tar"
    with tarfile.open(bomb, "w") as tar:
        for i in range(10_000):
            tar.addfile(tarfile.TarInfo(f"artifacts/{i:064x}"), io.BytesIO(b""))
        _add_manifest(tar, {})
    tracemalloc.start()
    try:
        with pytest.raises(restore.BadBackup, match="is not in its manifest"):
            restore.import_registry(bomb, tmp_path / "restored")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024, f"{peak / 2**20:.1f} MiB held while listing (4.8 if kept)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.tar"]


def test_a_backup_of_more_members_than_any_manifest_lists_is_refused_as_they_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every member header is kept while the tar is listed: a 475 KB tar.xz of 300,000 empty
    members took 8 s and 224 MB, and 10 million (16 MB) would take ~7 GB, before a member
    was found not in the manifest. The listing now stops past the members a manifest of the
    largest size read could list (~2 million); lowered here to 1,000 so that the tar stays
    small. Its end is damaged: it used to be read to there."""
    monkeypatch.setattr(restore_archive, "_MAX_MEMBERS", 1_000)
    bomb = tmp_path / "many.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:
        for i in range(1_500):
            tar.addfile(tarfile.TarInfo(f"artifacts/{i:064x}"), io.BytesIO(b""))
    bomb.write_bytes(bomb.read_bytes()[:-64])  # the gzip stream cut short
    result = CliRunner().invoke(
        app, ["import-registry", str(bomb), "--registry", str(tmp_path / "restored")]
    )
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0] == (
        f"error: {bomb} holds more than 1,000 members, more than any manifest lists: "
        "refusing it unread (not a backup manymodels wrote)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.tar.gz"]


def test_a_manifest_nested_too_deeply_is_one_error_line(tmp_path: Path) -> None:
    """``json.loads`` of 200,000 ``[`` raised RecursionError, which nothing caught: the
    import ended in a traceback instead of the ``error:`` line every bad backup gets."""
    data = b"[" * 200_000
    bomb = tmp_path / "deep.tar"
    with tarfile.open(bomb, "w") as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    result = CliRunner().invoke(
        app, ["import-registry", str(bomb), "--registry", str(tmp_path / "restored")]
    )
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0] == f"error: {bomb}: {MANIFEST} is not JSON (it is nested too deeply)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep.tar"]
