"""Every benchmark script runs in ``--smoke`` mode and prints its table and ``ratio:`` line.

The scripts are started together (they are mostly waiting on subprocesses and servers); each
test then waits for and checks one script's output, so its duration is that script's.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = [
    "train.py",
    "serve.py",
    "memory.py",
    "registry.py",
    "retrain.py",
    "cli.py",
    "classification.py",
]
TIMEOUT = 170  # seconds; a bound on a hung script, not the expected time (~30 s together)


@pytest.fixture(scope="module")
def started() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Every script, started together; each test then waits for its own only, so a test's
    time is its script's, not the slowest one's."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(BENCHMARKS / name), "--smoke"],
            cwd=BENCHMARKS.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in SCRIPTS
    }
    try:
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_smoke_prints_table_and_ratio(
    started: dict[str, subprocess.Popen[str]], script: str
) -> None:
    proc = started[script]
    out, err = proc.communicate(timeout=TIMEOUT)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert any(line.startswith("|--") or line.startswith("|-") for line in lines), result.stdout
    assert any(line.startswith("| ") for line in lines), result.stdout
    assert lines[-1].startswith("ratio: "), result.stdout[-2000:]
    assert "=" in lines[-1]
