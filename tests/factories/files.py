"""Files as a test forges or watches them: backups (good and hostile), fsync calls, pickled
payloads that prove they were unpickled.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pytest

from .frames import linear_frame
from .specs import spec_dict


def small_backup(tmp_path: Path) -> Path:
    """``tmp_path/good.tar``: the backup of a registry (``tmp_path/reg``) trained on two
    partitions of ``linear_frame``."""
    from manymodels.backup import export_registry
    from manymodels.pipeline import train
    from manymodels.registry import Registry

    root = tmp_path / "reg"
    train(spec_dict(), linear_frame(2, 30), root, backend="local")
    good = tmp_path / "good.tar"
    with Registry.open(root) as reg:
        export_registry(reg, good)
    return good


def backup_plus_member(
    good: Path,
    out: Path,
    member: tuple[tarfile.TarInfo, bytes],
    *,
    listed: tuple[str, str, int],
    mode: Literal["w", "w:gz"] = "w",
    tar_format: int = tarfile.DEFAULT_FORMAT,
) -> None:
    """The backup ``good`` written again to ``out`` (``mode``: ``"w:gz"`` compresses) with
    ``member`` last, its manifest listing ``listed`` (name, sha256, size): a hostile backup
    whose every other member is true."""
    from manymodels.backup import MANIFEST

    name, digest, size = listed
    with tarfile.open(good) as old, tarfile.open(out, mode, format=tar_format) as new:
        for info in old.getmembers():
            data = old.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == MANIFEST:
                manifest = json.loads(data)
                manifest["members"][name] = {"sha256": digest, "size": size}
                data = json.dumps(manifest).encode()
                info.size = len(data)
            new.addfile(info, io.BytesIO(data))
        new.addfile(member[0], io.BytesIO(member[1]))


def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the files and directories ``os.fsync`` is called on from now on (the
    calls still happen; the paths are read through ``/proc/self/fd``)."""
    import os

    seen: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return seen


def directories_refuse_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.fsync`` of a directory fails with EINVAL until ``monkeypatch`` undoes it, as on
    some network and FUSE filesystems; files still sync."""
    import errno
    import os
    import stat

    real = os.fsync

    def no_directories(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real(fd)

    monkeypatch.setattr(os, "fsync", no_directories)


class Tripwire:
    """Unpickling this creates the file ``path``: proof that bytes were (or were not)
    unpickled — a forged artifact, an upload — wherever that happens, another process too."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.path,))
