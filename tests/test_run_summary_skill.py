"""Tests for manymodels.run_summary's skill line: partitions whose naive baseline scored a
perfect 0 (intermittent sales, all zeros over the validation days) have no skill; the summary
counted "2 of 2 beat naive" of 3 trained and left the third unsaid. It now says how many were
not compared and why, in the last line and in ``--json``'s ``skill.zero_naive``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from manymodels.cli import app

SPEC = """
name = "zeros"
task = "regression"
partition_by = ["item"]
target = "sales"
time_column = "date"
features = ["price"]
lags = [1]
metric = "neg_mean_absolute_error"
min_rows = 20

[validation]
strategy = "last"
size = 7

[[candidates]]
estimator = "sklearn.linear_model.Ridge"
params = { alpha = [1.0] }
"""


def write_panel(path: Path) -> None:
    """Items a and b sell every day; item c sold early on and nothing over its last 20 days,
    so its naive forecast (the last value, 0) is exactly right on its validation rows."""
    rng = np.random.default_rng(11)
    times = pd.date_range("2025-01-01", periods=50, freq="D")
    frames = []
    for item in ("a", "b", "c"):
        sales = rng.poisson(6, len(times)).astype(float)
        if item == "c":
            sales[-20:] = 0.0
        price = rng.uniform(1, 3, len(times))
        frames.append(pd.DataFrame({"item": item, "date": times, "price": price, "sales": sales}))
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)


@pytest.mark.slow  # two trains through the CLI: ~26 s on a loaded 2-core machine
def test_partitions_with_a_perfect_naive_are_counted(tmp_path: Path) -> None:
    (tmp_path / "spec.toml").write_text(SPEC, encoding="utf-8")
    write_panel(tmp_path / "sales.csv")
    args = ["train", str(tmp_path / "spec.toml"), str(tmp_path / "sales.csv"), "--backend", "local"]
    result = CliRunner().invoke(app, [*args, "--registry", str(tmp_path / "r1")])
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert " of 2 (" in last, last  # a and b compared, c not
    assert "(1 more not compared: naive's validation error was 0)" in last, last
    result = CliRunner().invoke(app, [*args, "--registry", str(tmp_path / "r2"), "--json"])
    assert result.exit_code == 0, result.output
    skill = json.loads(result.stdout)["skill"]
    assert (skill["compared"], skill["zero_naive"]) == (2, 1)
