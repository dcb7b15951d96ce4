"""Tests for manymodels.forecast_ends: ``manymodels forecast`` says which partitions' rows end
before the newest partition's (a delisted item forecast from where its sales stopped), naming
the earliest, in its ``note:`` lines and in ``--json``; a panel that ends together says
nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

import manymodels as mm
from manymodels.cli import app
from manymodels.forecast_ends import Ends, note


def panel(stops: dict[str, int], days: int = 60) -> pd.DataFrame:
    """Daily sales of items, each item's rows cut after ``stops[item]`` days (else all)."""
    rng = np.random.default_rng(5)
    frames = []
    for item in ("a", "b", "c"):
        times = pd.date_range("2025-01-01", periods=days, freq="D")
        frame = pd.DataFrame(
            {"item": item, "date": times, "price": rng.uniform(1, 3, days),
             "sales": rng.poisson(4, days).astype(float)}
        )  # fmt: skip
        frames.append(frame.iloc[: stops.get(item, days)])
    return pd.concat(frames, ignore_index=True)


SPEC = {
    "name": "ends", "task": "regression", "partition_by": ["item"], "target": "sales",
    "time_column": "date", "features": ["price"], "lags": [1], "min_rows": 20,
    "validation": {"strategy": "last", "size": 7},
    "candidates": [{"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [1.0]}}],
}  # fmt: skip


def forecast(root: Path, *more: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["forecast", "--horizon", "2", "--registry", str(root), *more])
    return result.exit_code, result.stdout, result.stderr


def test_a_series_that_stopped_is_named(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    mm.train(SPEC, panel({"b": 40}), registry=root, backend="local")
    code, out, err = forecast(root, "--out", str(tmp_path / "f.csv"))
    assert code == 0, err
    notes = [line for line in err.splitlines() if "end before" in line]
    assert notes == [
        "note: 1 partition(s) end before the newest last time 2025-03-01T00:00:00, so their "
        "steps start earlier: 'item=b' (the earliest ends 2025-02-09T00:00:00); a series that "
        "stopped (delisted, closed) can be taken out of production with `manymodels retire KEY`"
    ]
    written = pd.read_csv(tmp_path / "f.csv")
    assert written[written["item"] == "b"]["date"].tolist() == ["2025-02-10", "2025-02-11"]
    code, out, err = forecast(root, "--json", "--out", str(tmp_path / "g.csv"))
    doc = json.loads(out)
    assert (doc["behind"], doc["behind_keys"]) == (1, ["item=b"])
    assert "end before" not in err  # --json says it in its members


def test_a_panel_that_ends_together_says_nothing(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    mm.train(SPEC, panel({}), registry=root, backend="local")
    code, out, err = forecast(root, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["behind"], doc["behind_keys"]) == (0, [])
    code, _, err = forecast(root)
    assert "end before" not in err


def test_counts_past_the_keys_shown_earliest_first() -> None:
    ends = Ends()
    ends.add([(f"k={i}", f"2025-01-{10 + i % 5:02d}") for i in range(50)])
    ends.add([("late", "2025-02-01"), ("none", None)])
    count, keys, earliest, newest = ends.behind()
    assert (count, earliest, newest) == (50, "2025-01-10", "2025-02-01")
    assert keys == ["k=0", "k=5", "k=10"]
    said = note(ends)  # the rest counted, as errors count theirs: it ended in "…"
    assert said is not None and "start earlier: 'k=0', 'k=5', 'k=10' and 47 more (the" in said
    mixed = Ends()
    mixed.add([("a", "2025-01-01"), ("b", 3)])
    assert mixed.behind() == (0, [], None, None)  # times that do not compare: no note
