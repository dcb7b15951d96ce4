"""kill -9 of ``manymodels train --new-target`` mid-run, then ``score``: one prediction column
cannot hold two quantities.

A run replacing the target commits partition by partition, so a kill leaves the partitions it
reached on the new target's models and the rest on the old one's. ``score`` then wrote both
into its ``prediction`` column and exited 0 (a trial: 10 partitions predicting a price beside
25 predicting units sold, nothing saying so). Now it refuses in one line naming both targets
and writes nothing; once the run is resumed as ``doctor`` says, it scores. The kill lands at
a point reached deterministically (``factories.SLOW_FIT_MODULE``: past ``SLOWFIT_AFTER``
fits the estimator writes a file and sleeps; the test kills it once the file is there).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import killed_in_a_fit, slowfit_env, versions_numbered
from factories import run_manymodels as _run

from manymodels.samples import synthetic

pytestmark = pytest.mark.slow

PARTITIONS = 200
OLD = """
name = "targets"
partition_by = ["pid"]
target = "y"
features = ["x1", "x2"]
[[candidates]]
estimator = "sklearn.linear_model.Ridge"
params = { alpha = [1.0] }
"""
NEW = """
name = "targets"
partition_by = ["pid"]
target = "x0"
features = ["x1", "x2"]
[[candidates]]
estimator = "slowfit:make"
params = { alpha = [1.0] }
"""


def test_score_refuses_two_targets_a_killed_new_target_run_left(tmp_path: Path) -> None:
    env = slowfit_env(tmp_path)
    (tmp_path / "old.toml").write_text(OLD)
    (tmp_path / "new.toml").write_text(NEW)
    data = tmp_path / "data.csv"
    synthetic(PARTITIONS, 30).to_csv(data, index=False)
    reg = tmp_path / "reg"
    first = _run(env, "train", tmp_path / "old.toml", data, "--registry", reg, "--backend", "local")
    assert first.returncode == 0, first.stderr

    killed_in_a_fit(env, tmp_path / "blocked", PARTITIONS // 2 * 3, "train", tmp_path / "new.toml",
                    data, "--registry", reg, "--backend", "local", "--new-target")  # fmt: skip
    n = versions_numbered(reg, 2)
    assert 0 < n < PARTITIONS, n  # killed mid-run: some partitions moved, some not

    out = tmp_path / "scored.csv"
    scored = _run(env, "score", data, "--registry", reg, "--out", out)
    assert scored.returncode == 1, scored.stdout  # before: 0, both targets in one column
    lines = scored.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), scored.stderr
    assert "predict 2 targets of spec 'targets'" in lines[0], lines
    assert "'y'" in lines[0] and "'x0'" in lines[0], lines
    assert "--new-target" in lines[0] and "doctor" in lines[0], lines
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    doctor = _run(env, "doctor", "--registry", reg)
    assert doctor.returncode == 1
    advice = doctor.stdout.split("finish it with: ")[1].split("\n")[0]
    words = advice.split()[4:]  # manymodels train SPEC DATA <flags>
    resumed = _run(env, "train", tmp_path / "new.toml", data, *words, "--backend", "local")
    assert resumed.returncode == 0, resumed.stderr
    scored = _run(env, "score", data, "--registry", reg, "--out", out)
    assert scored.returncode == 0, scored.stderr
    assert out.exists()
