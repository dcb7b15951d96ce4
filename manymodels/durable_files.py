"""Files written once and made durable: the system calls under ``LocalArtifactStore``.

A file is written under a temp name of our own (``O_EXCL``: never into a file someone else
created), flushed, renamed onto its final name, and its directory flushed, because a rename
lives in the directory and a crash could otherwise lose a name a registry already points at.
Kept apart from ``manymodels.artifacts`` so that module says what an artifact store promises,
and this one how a directory keeps it.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import itertools
import os
from pathlib import Path
from typing import Any

from manymodels.tempnames import writer_tag

TMP_PREFIX = ".tmp-"
"""Every temp name starts so; never a digest, so readers and a store's listing ignore them."""

# O_EXCL: never write into a file someone else created. Mode 0o666 lets the umask (and default
# ACLs) decide, as a plain open() would, so a router running as another user can read the file.
TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)

# Temp names must never collide, or O_EXCL refuses the write: not between threads (the counter),
# forked processes (the pid), nor hosts sharing a network directory (the random part); and they
# name their writer, so a sweep can tell a dead writer's leftover from a live one's file
# (``manymodels.tempnames``).
_TMP_COUNTER = itertools.count()


def _tmp_tag() -> str:
    return f"{writer_tag()}-{os.urandom(6).hex()}"


_TMP_TAG = _tmp_tag()


def _retag_after_fork() -> None:
    global _TMP_TAG
    _TMP_TAG = _tmp_tag()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_retag_after_fork)


def temp_name(parent: str, stem: str) -> str:
    """A new temp path in ``parent`` for ``stem`` (an artifact's digest, ``gc-<digest>``…),
    naming this process as its writer."""
    return os.path.join(parent, f"{TMP_PREFIX}{stem}-{_TMP_TAG}-{next(_TMP_COUNTER)}")


@functools.cache
def _libc() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc if hasattr(libc, "syncfs") else None
    except OSError:
        return None


def syncfs(path: Path) -> None:
    """Flush only the filesystem holding ``path`` (Linux ``syncfs``); elsewhere, ``os.sync``."""
    libc = _libc()
    if libc is not None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


def make_dirs(path: str) -> list[str]:
    """``mkdir`` that tolerates a racing writer making it first, and makes missing parents;
    returns the directories it created, outermost first (their entries need flushing too)."""
    try:
        os.mkdir(path)
        return [path]
    except FileExistsError:
        return []  # a file in its place fails the open that follows, with a clear error
    except FileNotFoundError:
        pass
    missing = []
    while not os.path.isdir(path) and path != os.path.dirname(path):
        missing.append(path)
        path = os.path.dirname(path)
    created = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
            created.append(directory)
        except FileExistsError:
            pass
    return created


def fsync_dir(path: str) -> None:
    """Flush a directory's entries: a renamed or created name is durable only once its
    directory is (POSIX leaves it to the directory's own fsync). A filesystem that cannot
    fsync a directory at all (``EINVAL``, ``EBADF``: some network and FUSE filesystems) has
    nothing more to offer, and the write stands, as PostgreSQL's ``fsync_fname_ext`` does:
    failing there reported a failure for a file already in place under its name."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def fsync_file(path: str | Path) -> None:
    """Flush a file already written and closed through another handle (a gzip stream, a
    Parquet writer): ``fsync`` of any descriptor of the inode writes back its dirty pages."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """``fsync_file`` of every file under ``root``, then ``fsync_dir`` of every directory,
    deepest first: a small tree another library wrote (an MLflow model's half-dozen files)
    made durable before it is renamed into place."""
    directories = []
    for parent, _, files in os.walk(root):
        directories.append(parent)
        for name in files:
            fsync_file(os.path.join(parent, name))
    for directory in reversed(directories):
        fsync_dir(directory)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is out: one call in practice, a loop if it is short."""
    written = os.write(fd, data)
    if written < len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]


def holds(path: str, digest: str, *, flush: bool) -> bool:
    """True when ``path`` already holds the bytes of ``digest`` (a sha256); its modification
    time is then renewed, and with ``flush`` the file and its name are made durable (a write
    that flushed nothing may not have been synced yet). A file that vanishes meanwhile (gc
    moved it aside) is written again by the caller.
    """
    try:
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != digest:
                return False
            if flush:
                os.fsync(f.fileno())
        os.utime(path)
        if flush:
            fsync_dir(os.path.dirname(path))
    except OSError:  # missing (the usual case), or unreadable: write it
        return False
    return True
