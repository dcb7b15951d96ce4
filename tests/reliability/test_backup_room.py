"""A compressed backup that would not fit on the disk it is restored to is refused before a
byte is written (``manymodels.restore``).

A tar.gz member's size is claimed by its header and checked against the manifest, never
against the disk: a backup of 70 KB holding 64 MiB of zeros filled a 16 MiB disk and
stopped with an ``OSError`` (ENOSPC) traceback rather than an ``error:`` line. The disk is
real: a small tmpfs (root only; elsewhere the test skips, CI runs it).
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest
from factories import backup_plus_member, small_backup
from tmpfs import mounted
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.registry import Registry

pytestmark = pytest.mark.slow

CLAIMED = 64 << 20  # bytes of zeros in the member; gzip packs them into ~64 KB


def test_a_compressed_backup_larger_than_the_free_disk_is_refused_unwritten(
    tmp_path: Path,
) -> None:
    good = small_backup(tmp_path)
    zeros = bytes(CLAIMED)
    digest = hashlib.sha256(zeros).hexdigest()  # a true member: only its size is the trouble
    name = f"artifacts/{digest}"
    bomb = tmp_path / "bomb.tar.gz"
    info = tarfile.TarInfo(name)
    info.size = CLAIMED
    backup_plus_member(good, bomb, (info, zeros), listed=(name, digest, CLAIMED), mode="w:gz")
    assert bomb.stat().st_size < CLAIMED // 500

    # the same, its end lost: refused at the member's header, before its data is read (a
    # member of 100 GB took minutes to decompress only to be skipped while listing)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(bomb.read_bytes()[:-1024])

    with mounted(tmp_path / "disk", "16m") as disk:
        target = disk / "restored"
        for backup in (bomb, cut):
            argv = ["import-registry", str(backup), "--registry", str(target)]
            result = CliRunner().invoke(app, argv)
            lines = result.output.strip().splitlines()
            assert result.exit_code == 1 and len(lines) == 1, result.output
            said = f"error: {backup} holds at least 64.2 MiB once unpacked"
            assert lines[0].startswith(said), lines[0]
            assert "MiB free: nothing was written" in lines[0], lines[0]
            assert list(disk.iterdir()) == []  # no staging directory left, no target

        # the backup itself restores where it fits
        ok = CliRunner().invoke(app, ["import-registry", str(good), "--registry", str(target)])
        assert ok.exit_code == 0, ok.output
        with Registry.open(target) as reg:
            assert len(reg.list_partitions(limit=10)) == 3  # two and the fallback
