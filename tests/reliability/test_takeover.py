"""A ``manymodels train`` frozen mid-run (SIGSTOP: a suspended laptop, a paused VM) while
another process resumes its run, then woken (SIGCONT): it writes nothing more to the run and
stops with one line; the run completes once, every partition trained exactly once.

"Another machine" is what the resuming process must take the frozen one for: a frozen process
on this machine still has its pid, and a resume here refuses it. So, while it is frozen, the
run's record is made to read as one started on another machine and silent for hours (the
owner tag and heartbeat such a run has) — the only thing not real in the experiment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from factories import other_machine_tag, synthetic_ridge_toml
from sqlalchemy import update

from manymodels.registry import Registry
from manymodels.registry import schema as t

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
PARTITIONS = 400
SPEC = synthetic_ridge_toml("takeover")


def _ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def _committed(reg: Path) -> tuple[str, int] | None:
    """The run's id and how many partitions it has committed, once it has some."""
    if not (reg / "registry.db").exists():
        return None
    try:
        with Registry.open(reg) as r:
            runs = r.list_runs()
    except Exception:  # not created yet, or mid-creation
        return None
    return (runs[0].run_id, runs[0].n_trained) if runs and runs[0].n_trained else None


def test_a_frozen_run_taken_over_writes_nothing_when_it_wakes(tmp_path: Path) -> None:
    from manymodels.samples import synthetic

    data, spec, reg = tmp_path / "data.parquet", tmp_path / "spec.toml", tmp_path / "reg"
    synthetic(PARTITIONS, 40).to_parquet(data)
    spec.write_text(SPEC)
    command = [BIN / "manymodels", "train", spec, data, "--registry", reg, "--backend", "local"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = time.monotonic()
        while (found := _committed(reg)) is None:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() - started < 120, "the run never committed"
            time.sleep(0.005)
        os.kill(first.pid, signal.SIGSTOP)
        run_id = found[0]
        with Registry.open(reg) as r:
            frozen_at = r.get_run(run_id).n_trained
            assert frozen_at < PARTITIONS, "the run ended before it was frozen"
            options = {**r.get_run(run_id).options, "owner": other_machine_tag()}
            with r.store.engine.begin() as conn:  # as a run of another machine, silent for 3 h
                conn.execute(
                    update(t.runs)
                    .where(t.runs.c.run_id == run_id)
                    .values(options_json=json.dumps(options), heartbeat_at=_ago(3 * 3600))
                )
        second = subprocess.run(
            [*command, "--resume", run_id, "--json"], capture_output=True, text=True, timeout=600
        )
        assert second.returncode == 0, second.stderr[-2000:]
        assert json.loads(second.stdout)["run"]["status"] == "completed"
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=120)

    assert first.returncode == 1, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # one line, saying what happened and where to look
    assert lines[0].startswith(f"error: run {run_id} was resumed by process "), lines
    assert f"manymodels runs show {run_id}" in lines[0]
    with Registry.open(reg) as r:
        run = r.get_run(run_id)
        assert run.status == "completed" and run.n_trained == PARTITIONS, run
        partitions = r.list_partitions(limit=PARTITIONS + 10)
        assert {p.key for p in partitions} == {f"pid={i}" for i in range(PARTITIONS)} | {
            "__fallback__"
        }
        assert all(p.latest_version == 1 for p in partitions)  # none trained twice
        outcomes = r.store.run_outcomes(run_id, limit=PARTITIONS + 10)
        assert len(outcomes) == PARTITIONS + 1  # one each, and the fallback's
