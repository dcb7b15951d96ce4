"""``manymodels monitor``'s drift cell of a partition sampled too little to be scored."""

from __future__ import annotations

from pathlib import Path

from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.monitoring import store
from manymodels.pipeline import train
from manymodels.registry import Registry


def sample(reg: Registry, key: str, rows: int) -> store.Sample:
    """A router's sample of ``rows`` rows of ``key``, all in each feature's first bin."""
    current = reg.get_version(key, alias="production")
    profile = current.feature_schema["profile"]
    counts = {
        name: [rows] + [0] * (len(stats["counts"]) - 1)
        for name, stats in profile["features"].items()
    }
    return store.Sample(key, current.version, rows, counts, profile)


def test_a_drift_not_scored_yet_says_how_many_rows_were_sampled(tmp_path: Path) -> None:
    """30 rows sampled (of the 50 a drift score needs) read "—", as a partition nothing
    was sampled of, with nothing saying why: now "— (30/50 rows)" and a note under the
    table; a partition with 60 rows sampled has its score, one with none its bare "—"."""
    root = tmp_path / "reg"
    train(spec_dict(features=["x0", "x1"]), linear_frame(3), root, backend="local")
    with Registry.open(root) as reg:
        store.add_samples(reg.store.engine, [sample(reg, "pid=0", 30), sample(reg, "pid=1", 60)])
    result = CliRunner().invoke(
        app, ["monitor", "--registry", str(root), "--sort", "key"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "pid=" in line]
    rows = {line.split("│")[1].strip(): line for line in lines}
    assert "— (30/50 rows)" in rows["pid=0"], result.output
    assert "rows)" not in rows["pid=1"] and "rows)" not in rows["pid=2"], result.output
    assert "note: drift is scored from 50 sampled rows" in result.output, result.output
