"""kill -9 of ``manymodels retrain --when stale`` mid-run, then finish it: ``doctor`` names a
command that works, and the result is the uninterrupted retrain's.

The run trains the partitions the monitor flags, and records their count and digest, not the
keys; a resume had to name the same keys (``train --resume … --partitions …``) and nobody knew
them — the finished partitions are no longer stale, so the monitor flags fewer. The kill lands
at a point reached deterministically: the estimator (a factory on ``PYTHONPATH``) counts its
fits and, past ``SLOWFIT_AFTER`` of them in a process given ``SLOWFIT_DIR``, writes a file and
sleeps; the test kills the process once the file is there. The first versions are made a week
old in the database (what makes them stale): the only thing not real here.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from factories import interruptible, killed_in_a_fit, slowfit_env, versions_numbered, wait_for
from factories import run_manymodels as _run

from manymodels.samples import synthetic

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
PARTITIONS = 400
SPEC = """
name = "stale"
partition_by = ["pid"]
target = "y"
time_column = "t"
[[candidates]]
estimator = "slowfit:make"
params = { alpha = [1.0] }
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The spec, two versions of the data (``v1``, ``v2``) and the slow estimator in a
    directory the tests only read, the environment the commands run in, and ``trained``:
    every partition trained once on ``v1``, which each test copies (one ``train`` of 400
    partitions for the module, not one per registry)."""
    root = tmp_path_factory.mktemp("retrain-inputs")
    (root / "spec.toml").write_text(SPEC)
    synthetic(PARTITIONS, 40).to_parquet(root / "v1.parquet")
    synthetic(PARTITIONS, 40, seed=1).to_parquet(root / "v2.parquet")
    env = slowfit_env(root)
    done = _run(env, "train", root / "spec.toml", root / "v1.parquet",
                "--registry", root / "trained", "--backend", "local")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root, env


def _registry(inputs: tuple[Path, dict[str, str]], to: Path) -> Path:
    """A copy of the trained registry at ``to``, its versions made a week old: all stale."""
    shutil.copytree(inputs[0] / "trained", to)
    week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat(timespec="microseconds")
    with sqlite3.connect(to / "registry.db") as conn:
        conn.execute("update model_versions set created_at = ?", (week_ago,))
    conn.close()
    return to


def _production(env: dict[str, str], reg: Path) -> list[tuple[str, int, float]]:
    out = _run(env, "models", "list", "--registry", reg, "--json", "--limit", PARTITIONS + 10)
    items = json.loads(out.stdout)["items"]
    return sorted((i["key"], i["aliases"]["production"], i["production"]["score"]) for i in items)


def test_a_killed_retrain_of_flagged_partitions_is_finished_as_doctor_says(
    inputs: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, env = inputs
    retrain = ["retrain", root / "spec.toml", root / "v2.parquet", "--when", "stale",
               "--max-age-days", "1", "--backend", "local"]  # fmt: skip

    clean = _registry(inputs, tmp_path / "clean")
    done = _run(env, *retrain, "--registry", clean)
    assert done.returncode == 0, done.stderr

    reg = _registry(inputs, tmp_path / "killed")
    killed_in_a_fit(env, tmp_path / "blocked", PARTITIONS // 2 * 3, *retrain, "--registry", reg)
    n = versions_numbered(reg, 2)
    assert 0 < n < PARTITIONS, n  # killed mid-run: some committed, some not

    doctor = _run(env, "doctor", "--registry", reg)
    assert doctor.returncode == 1
    advice = doctor.stdout.split("finish it with: ")[1].split("\n")[0]
    assert advice.startswith("manymodels retrain SPEC DATA"), advice  # before: train … --partitions
    words = advice.split()[4:]  # the command's flags, as doctor gives them
    resumed = _run(env, "retrain", root / "spec.toml", root / "v2.parquet", *words,
                   "--backend", "local")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"{PARTITIONS} trained ({PARTITIONS - n} now)" in resumed.stdout, resumed.stdout
    assert _run(env, "doctor", "--registry", reg).returncode == 0
    assert _production(env, reg) == _production(env, clean)


def test_ctrl_c_of_a_retrain_prints_the_command_that_finishes_it(
    inputs: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """Before: "interrupted: work already committed is kept (an interrupted training run can
    be finished with --resume RUN_ID)", naming neither the run nor a command that works."""
    root, env = inputs
    reg = _registry(inputs, tmp_path / "reg")
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    slow = {**env, "SLOWFIT_DIR": str(blocked), "SLOWFIT_AFTER": "0"}
    with interruptible():  # CI's test worker may have SIGINT ignored: the child inherits it
        proc = subprocess.Popen(
            [BIN / "manymodels", "retrain", root / "spec.toml", root / "v2.parquet",
             "--when", "stale", "--max-age-days", "1", "--registry", reg, "--backend", "local"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=slow,
        )  # fmt: skip
    try:
        wait_for(blocked / "fitting", "the retrain held in a fit", timeout=300, process=proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("interrupted: run "), err
    assert "finish it with: manymodels retrain" in line and "--when stale --max-age-days 1" in line
    assert line.endswith(f"--resume {line.split()[2]}"), line
