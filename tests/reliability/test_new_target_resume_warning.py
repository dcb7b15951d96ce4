"""A ``--new-target`` run killed mid-run, then resumed: the resume's line (and ``--json``'s
``old_target``) counts the partitions the run left on the old target — those whose new
target is all missing, skipped before or after the kill — and none it moved, before the
kill or in the resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from factories import killed_in_a_fit, slowfit_env, versions_numbered
from factories import run_manymodels as _run
from test_new_target_kill import NEW, OLD

from manymodels.samples import synthetic

pytestmark = pytest.mark.slow

PARTITIONS = 40
EMPTY = [0, 1, 38, 39]  # the new target all missing: skipped, left on the old one


def test_a_resumed_new_target_run_counts_what_it_left_on_the_old_target(tmp_path: Path) -> None:
    env = slowfit_env(tmp_path)
    (tmp_path / "old.toml").write_text(OLD)
    (tmp_path / "new.toml").write_text(NEW)
    data = tmp_path / "data.csv"
    frame = synthetic(PARTITIONS, 30)
    frame.loc[frame["pid"].isin(EMPTY), "x0"] = np.nan
    frame.to_csv(data, index=False)
    reg = tmp_path / "reg"
    first = _run(env, "train", tmp_path / "old.toml", data, "--registry", reg, "--backend", "local")
    assert first.returncode == 0, first.stderr

    killed_in_a_fit(env, tmp_path / "blocked", PARTITIONS // 2 * 3, "train", tmp_path / "new.toml",
                    data, "--registry", reg, "--backend", "local", "--new-target")  # fmt: skip
    n = versions_numbered(reg, 2)
    assert 0 < n < PARTITIONS - len(EMPTY), n

    doctor = _run(env, "doctor", "--registry", reg)
    advice = doctor.stdout.split("finish it with: ")[1].split("\n")[0]
    words = advice.split()[4:]
    resumed = _run(env, "train", tmp_path / "new.toml", data, *words, "--backend", "local",
                   "--json")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["old_target"]["partitions"] == len(EMPTY), summary
    assert summary["old_target"]["first"] == "pid=0" and summary["old_target"]["target"] == "y"
    lines = [w for w in summary["warnings"] if "old target" in w]
    assert len(lines) == 1 and lines[0].startswith(f"{len(EMPTY)} partitions still serve")
