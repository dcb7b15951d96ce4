"""kill -9 of ``manymodels train`` at random points, then finish the run: nothing lost, nothing
dangling, nothing twice.

Each trial starts the installed command on a fresh registry, kills it with SIGKILL after a
random delay (which may land in start-up, planning, training, committing or after the end),
then resumes the run it left (or trains again when it died before creating one) and checks
every partition has exactly one version whose artifact verifies. The trials' figures are in
RELIABILITY.md; the seed makes a failing trial reproducible.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from factories import synthetic_ridge_toml

from manymodels.exceptions import NoRegistry
from manymodels.registry import Registry

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
TRIALS = 10
PARTITIONS = 400
SPEC = synthetic_ridge_toml("kill")


@dataclass(frozen=True)
class Trial:
    delay: float
    run_existed: bool
    committed_at_kill: int
    finished_before_kill: bool


def _committed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            row = conn.execute("select count(*) from model_versions").fetchone()
        return int(row[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def _one_trial(tmp: Path, spec: Path, data: Path, rng: random.Random, *, by_commits: bool) -> Trial:
    """Kill after a random delay (anywhere: start-up, planning, training, the end), or — with
    ``by_commits`` — once a random number of versions is committed (surely mid-run, however
    fast or slow the machine)."""
    tmp.mkdir()
    reg = tmp / "reg"
    delay = rng.uniform(0.3, 4.0)
    wanted = rng.randint(1, PARTITIONS // 2)
    proc = subprocess.Popen(
        [BIN / "manymodels", "train", spec, data, "--registry", reg, "--backend", "local"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    started = time.monotonic()
    if by_commits:
        while _committed(reg / "registry.db") < wanted and proc.poll() is None:
            assert time.monotonic() - started < 120, "the run never committed"
            time.sleep(0.01)
    else:
        time.sleep(delay)
    delay = time.monotonic() - started
    finished = proc.poll() is not None
    committed = _committed(reg / "registry.db")
    if not finished:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(60)

    status = None
    try:
        with Registry.open(reg) as r:
            runs = r.list_runs()
        status = runs[0].status if runs else None
    except NoRegistry:  # killed before the registry existed, or while its file was created
        pass
    if status != "completed":  # resume what it left, or train again if it left no run
        again = ["--resume", runs[0].run_id] if status else []
        done = subprocess.run(
            [BIN / "manymodels", "train", spec, data, "--registry", reg, "--backend", "local",
             *again, "--json"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout)["run"]["status"] == "completed"

    with Registry.open(reg) as r:
        partitions = r.list_partitions(limit=PARTITIONS + 10)
        keys = {p.key for p in partitions}
        assert keys == {f"pid={i}" for i in range(PARTITIONS)} | {"__fallback__"}  # none lost
        for p in partitions:
            assert p.latest_version == 1, (p.key, p.latest_version)  # never trained twice
            r.load_model(p.key)  # present and verified: no dangling version
        referenced = r.store.referenced_digests()
        assert all(r.artifacts.exists(d) for d in referenced)
    return Trial(delay, status is not None, committed, finished)


def test_kill_9_at_random_points_then_resume(tmp_path: Path) -> None:
    from manymodels.samples import synthetic

    data = tmp_path / "data.parquet"
    synthetic(PARTITIONS, 40).to_parquet(data)
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    seed = int(os.environ.get("MANYMODELS_KILL_SEED", "20261130"))
    rng = random.Random(seed)
    draws = [random.Random(rng.random()) for _ in range(TRIALS)]  # one stream per trial
    with ThreadPoolExecutor(2) as pool:  # two trials at a time: each mostly waits on processes
        trials = list(
            pool.map(
                lambda i: _one_trial(
                    tmp_path / f"t{i}", spec, data, draws[i], by_commits=i % 2 == 0
                ),
                range(TRIALS),
            )
        )
    # half the kills must land inside runs with work committed, or the test proves nothing
    mid_run = [t for t in trials if not t.finished_before_kill and t.committed_at_kill > 0]
    assert len(mid_run) >= TRIALS // 2, trials
    print(f"\nkill -9 trials (seed {seed}):")
    for t in trials:
        print(f"  delay {t.delay:4.1f}s run={t.run_existed} committed={t.committed_at_kill} "
              f"finished_first={t.finished_before_kill}")  # fmt: skip
