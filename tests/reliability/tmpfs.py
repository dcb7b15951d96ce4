"""A small real tmpfs for the full-disk tests: mounted under a test's directory, so that
writes fail with a real ENOSPC (or SQLite's SQLITE_FULL) once it fills. Mounting needs root:
elsewhere the test skips, and fails in CI, which runs as root."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def mounted(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``mount -o size=``: "96k", "16m") at ``where``, unmounted after."""
    where.mkdir()
    if os.geteuid() != 0:
        _unavailable("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        _unavailable(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test: {why}")
    pytest.skip(why)
