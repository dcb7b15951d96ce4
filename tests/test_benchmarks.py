"""Every benchmark script runs in ``--smoke`` mode and prints its table and ``ratio:`` line.

The scripts are started together (they are mostly waiting on subprocesses and servers), so
the whole file takes well under a minute; each test then checks one script's output.
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
    "monitoring.py",
    "cluster.py",
    "monitor_pages.py",
]
TIMEOUT = 170  # seconds; a bound on a hung script, not the expected time (~30 s together)
# cluster.py starts PostgreSQL, SeaweedFS, a two-node Ray cluster and embedded Ray: ~1 min
# quiet, 3-4 min on a loaded machine; classification.py ~2 min on a loaded machine
TIMEOUTS = {"cluster.py": 420, "classification.py": 420}


@pytest.fixture(scope="module")
def outputs() -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
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
    done: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=TIMEOUTS.get(name, TIMEOUT))
            done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    yield done


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_smoke_prints_table_and_ratio(
    outputs: dict[str, subprocess.CompletedProcess[str]], script: str
) -> None:
    result = outputs[script]
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert any(line.startswith("|--") or line.startswith("|-") for line in lines), result.stdout
    assert any(line.startswith("| ") for line in lines), result.stdout
    assert lines[-1].startswith("ratio: "), result.stdout[-2000:]
    assert "=" in lines[-1]
