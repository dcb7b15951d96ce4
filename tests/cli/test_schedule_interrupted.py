"""Ctrl-C of ``manymodels scheduler`` before it runs (manymodels.cli.schedule_start)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from factories import interruptible

from manymodels.cli.schedule_start import INTERRUPTED_AT_START


@pytest.mark.slow  # a CLI process of its own: ~2.5 s on a shared machine
def test_ctrl_c_while_the_scheduler_reads_its_spec_says_nothing_had_started(
    tmp_path: Path,
) -> None:
    """Ctrl-C before any firing or run said "an interrupted training run can be finished
    with --resume RUN_ID", a run that does not exist. The spec is a FIFO: the scheduler is
    held reading it, at start, until the test has sent SIGINT (no sleep decides when)."""
    spec = tmp_path / "spec.toml"
    os.mkfifo(spec)
    registry = tmp_path / "reg"
    with interruptible():  # a test worker may have SIGINT ignored: the child inherits it
        proc = subprocess.Popen(
            [sys.executable, "-m", "manymodels.cli", "scheduler", spec, tmp_path / "d.csv",
             "--registry", registry],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    writer = -1
    try:
        deadline = time.monotonic() + 60
        while writer < 0:  # opens once the scheduler has opened the spec to read it
            try:
                writer = os.open(spec, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                assert e.errno == errno.ENXIO, e  # no reader yet
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the scheduler never read its spec"
                time.sleep(0.02)
        proc.send_signal(signal.SIGINT)  # it waits for the spec's text, which never comes
        out, err = proc.communicate(timeout=60)
    finally:
        if writer >= 0:
            os.close(writer)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert err.splitlines() == [INTERRUPTED_AT_START], err
    assert out == ""
    assert not registry.exists()
