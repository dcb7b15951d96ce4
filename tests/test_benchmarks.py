"""Every benchmark script runs in ``--smoke`` mode and prints its table and ``ratio:`` line.

The scripts run a few at a time (they are mostly waiting on subprocesses and servers), so
the whole file takes a few minutes; each test then checks one script's output. Not all at
once: ten scripts starting PostgreSQL, SeaweedFS, Ray clusters and servers together on two
cores left a Ray head unreachable for five minutes in CI.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# the longest first, so the short ones fill in beside them (alone, load 4-10: cluster.py 69 s,
# memory.py 64, serve.py 61, serve_global.py 50, forecast_memory.py 30, router_start.py 29 …
# local_hours.py 8); serve.py beside cluster.py, not memory.py, whose driver starts a Ray too
SCRIPTS = [
    "cluster.py",
    "serve.py",
    "memory.py",
    "serve_global.py",
    "forecast_memory.py",
    "router_start.py",
    "train.py",
    "monitoring.py",
    "retrain.py",
    "monitor_pages.py",
    "registry.py",
    "batch_path.py",
    "classification.py",
    "train_text.py",  # its two processes at once: ~20 s at load 8
    "cli.py",
    "chunk_overhead.py",
    "local_hours.py",
]
AT_ONCE = 2  # beside another test process (pytest-xdist): three took memory.py from 1 to 3 min
TIMEOUT = 420  # seconds; a bound on a hung script, not the expected time (10-100 s alone)
# cluster.py starts PostgreSQL, SeaweedFS, a two-node Ray cluster and embedded Ray: ~1.5 min
# quiet, 3-5 min on a loaded machine
TIMEOUTS = {"cluster.py": 600}
# the module's fixture runs every script in the first test's set-up: more than the 600 s a test
# gets by default on a loaded machine
pytestmark = pytest.mark.timeout(1800)


def _start(name: str, logs: Path) -> subprocess.Popen[bytes]:
    """The script in smoke mode, its output in files (a pipe nobody reads while it runs
    would stop a script that writes more than the pipe holds)."""
    with (logs / f"{name}.out").open("wb") as out, (logs / f"{name}.err").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, str(BENCHMARKS / name), "--smoke"],
            cwd=BENCHMARKS.parent, stdout=out, stderr=err,
        )  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM first: the scripts stop the servers and Ray nodes they started on it."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def outputs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    logs = tmp_path_factory.mktemp("benchmark-smoke")
    waiting = list(SCRIPTS)
    running: dict[str, tuple[subprocess.Popen[bytes], float]] = {}
    done: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        while waiting or running:
            while waiting and len(running) < AT_ONCE:
                name = waiting.pop(0)
                deadline = time.monotonic() + TIMEOUTS.get(name, TIMEOUT)
                running[name] = (_start(name, logs), deadline)
            for name, (proc, deadline) in list(running.items()):
                if proc.poll() is None and time.monotonic() < deadline:
                    continue
                del running[name]
                if proc.poll() is None:  # hung: its output so far says where
                    _stop(proc)
                out, err = ((logs / f"{name}.{k}").read_text(errors="replace")
                            for k in ("out", "err"))  # fmt: skip
                done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
            time.sleep(0.2)
    finally:
        for proc, _ in running.values():
            _stop(proc)
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
