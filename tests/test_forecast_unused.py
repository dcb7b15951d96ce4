"""Rows of a ``forecast --future`` table that no partition forecast reads (a key with no
model, or one left out by ``--partitions``): counted and named in a ``note:`` line and
``--json``, as the forecast's other notes are, where they were dropped without a word."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.forecasting import forecast
from manymodels.pipeline import train

runner = CliRunner()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pid 0, 1 and 2 on Ridge over x0, x1, all up to t = 29."""
    root = tmp_path_factory.mktemp("unused") / "registry"
    train(spec_dict(features=["x0", "x1"]), linear_frame(3, 30), root, backend="local")
    return root


def rows_of(*pids: int) -> pd.DataFrame:
    """Future rows of ``pids`` at the next three periods."""
    return pd.DataFrame(
        {"pid": np.repeat(pids, 3), "t": np.tile([30, 31, 32], len(pids)), "x0": 0.5, "x1": -0.25}
    )


def forecast_with(registry: Path, path: Path, *extra: str) -> tuple[list[str], dict]:
    """The note: lines of a forecast with ``--future path``, and its --json summary."""
    args = ["forecast", "--registry", str(registry), "--horizon", "3", "--future", str(path)]
    said = runner.invoke(app, [*args, *extra, "--out", str(path.with_name("next.csv"))])
    assert said.exit_code == 0, said.output
    answer = runner.invoke(app, [*args, *extra, "--json"])
    assert answer.exit_code == 0 and answer.stderr == "", answer.output
    return said.stderr.strip().splitlines(), json.loads(answer.stdout)


def test_rows_of_keys_with_no_model_are_counted_and_named(registry: Path, tmp_path: Path) -> None:
    """Rows of pid 7-10, which have no model, were ignored without a word beside those of the
    three forecast: the note counts their partitions and rows and names the first 3 by key,
    and how many more; --json has the counts and the keys."""
    path = tmp_path / "future.csv"
    rows_of(0, 1, 2, 7, 8, 9, 10).to_csv(path, index=False)
    notes, answer = forecast_with(registry, path)
    assert notes == [
        "note: --future's 12 row(s) of 4 partition(s) not forecast were not used (no "
        "'production' version): 'pid=10', 'pid=7', 'pid=8' and 1 more"
    ]
    assert (answer["future_unused"], answer["future_unused_rows"]) == (4, 12)
    assert answer["future_unused_keys"] == ["pid=10", "pid=7", "pid=8"]
    assert answer["partitions"] == 3


def test_rows_of_partitions_left_out_by_partitions_are_named(
    registry: Path, tmp_path: Path
) -> None:
    """``--partitions pid=0`` with rows of pid 1 and 2 too: those have a model but were not
    forecast, and the note says so; with a key of no model among them, it says how many."""
    path = tmp_path / "future.csv"
    rows_of(0, 1, 2).to_csv(path, index=False)
    notes, answer = forecast_with(registry, path, "--partitions", "pid=0")
    assert notes == [
        "note: --future's 6 row(s) of 2 partition(s) not forecast were not used (not among "
        "the partitions forecast): 'pid=1', 'pid=2'"
    ]
    assert answer["future_unused_keys"] == ["pid=1", "pid=2"]
    rows_of(0, 1, 9).to_csv(path, index=False)
    notes, _ = forecast_with(registry, path, "--partitions", "pid=0")
    assert notes == [
        "note: --future's 6 row(s) of 2 partition(s) not forecast were not used (1 with no "
        "'production' version, the others not among those forecast): 'pid=1', 'pid=9'"
    ]


def test_a_table_whose_rows_are_all_read_says_nothing(registry: Path, tmp_path: Path) -> None:
    """Every row read: no note, zero counts; the library's frame says the same in its
    ``attrs["future_unused"]`` (None without a future table)."""
    path = tmp_path / "future.csv"
    rows_of(0, 1, 2).to_csv(path, index=False)
    notes, answer = forecast_with(registry, path)
    assert notes == []
    assert (answer["future_unused"], answer["future_unused_keys"]) == (0, [])
    frame = forecast(registry, horizon=3, future=rows_of(0, 1, 2, 5))
    assert frame.attrs["future_unused"] == {
        "partitions": 1, "rows": 3, "keys": ["pid=5"], "without_model": 1
    }  # fmt: skip
    assert forecast(registry, horizon=3).attrs["future_unused"] is None
