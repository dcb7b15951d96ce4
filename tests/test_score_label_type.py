"""``manymodels score`` echoes a classifier's target as the table's labels: 0/1 with blank
(unlabelled) cells, which a CSV reader reads as floats, are written 0 and 1, not 0.0 and 1.0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from manymodels.cli import app

SPEC = """
name = "clicks"
task = "classification"
partition_by = ["user"]
target = "clicked"
features = ["x"]
metric = "accuracy"
min_rows = 20
seed = 0

[validation]
strategy = "holdout"
size = 0.3

[[candidates]]
estimator = "sklearn.linear_model.LogisticRegression"
params = { C = [1.0] }
"""


def test_int_labels_with_blanks_are_echoed_as_ints(tmp_path: Path) -> None:
    """Before: the scored CSV's ``clicked`` read ``1.0`` beside a ``prediction`` of ``1``,
    and a Parquet output held it as float64."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=120)
    clicked = pd.Series((x + 0.5 * rng.normal(size=120) > 0).astype(int), dtype="Int64")
    clicked[::10] = pd.NA  # unlabelled rows: blank cells
    df = pd.DataFrame({"user": np.repeat(["a", "b"], 60), "x": x, "clicked": clicked})
    data = tmp_path / "clicks.csv"
    df.to_csv(data, index=False)
    (tmp_path / "spec.toml").write_text(SPEC)
    runner, reg = CliRunner(), str(tmp_path / "reg")
    trained = runner.invoke(app, ["train", str(tmp_path / "spec.toml"), str(data),
                                  "--registry", reg, "--backend", "local"])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    for out in (tmp_path / "scored.csv", tmp_path / "scored.parquet"):
        args = ["score", str(data), "--registry", reg, "--out", str(out), "--probabilities"]
        scored = runner.invoke(app, args)
        assert scored.exit_code == 0, scored.output
        if out.suffix == ".csv":
            lines = out.read_text().splitlines()
            column = lines[0].split(",").index("clicked")
            cells = [line.split(",")[column] for line in lines[1:]]
            assert set(cells) == {"0", "1", ""}, sorted(set(cells))
        else:
            back = pd.read_parquet(out)
            assert back["clicked"].dtype == "Int64"
            assert back["clicked"].isna().sum() == 12
            assert back["prediction"].dtype.kind == "i"
