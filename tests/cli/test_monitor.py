"""``manymodels actuals`` (manymodels.cli.actuals): how it finds the partitions of a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from factories import executed, linear_frame, spec_dict
from sqlalchemy import Engine
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.pipeline import train

DAYS = [f"2024-01-0{d}" for d in range(1, 7)]


@pytest.fixture
def days_registry(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A registry of six partitions keyed by a day (trained as ``pid=2024-01-01T00:00:00``:
    a key with other spellings), and the last rows of each partition, its day as a CSV's
    ``2024-01-01``."""
    df = linear_frame(len(DAYS)).assign(pid=lambda d: pd.to_datetime(DAYS)[d["pid"]])
    train(spec_dict(features=["x0", "x1"]), df, tmp_path / "reg", backend="local")
    tail = df.groupby("pid").tail(3).assign(pid=lambda d: d["pid"].dt.strftime("%Y-%m-%d"))
    return tmp_path / "reg", tail


def actuals(path: Path, root: Path) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["actuals", str(path), "--registry", str(root), "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_keys_in_other_spellings_reach_their_partitions(
    days_registry: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """Each day of the file, written ``2024-01-01`` or ``2024-01-02 00:00:00``, is recorded
    for the partition training wrote as ``…T00:00:00``, and a day the registry lacks is
    unknown as the file wrote it, now that the keys are found in batched reads."""
    root, tail = days_registry
    tail = tail.assign(pid=tail["pid"].replace({DAYS[1]: f"{DAYS[1]} 00:00:00"}))
    absent = tail[tail["pid"] == DAYS[0]].assign(pid="2025-03-01")
    observed = tmp_path / "observed.csv"
    pd.concat([tail, absent]).to_csv(observed, index=False)
    out = actuals(observed, root)
    assert [r["key"] for r in out["recorded"]] == [f"pid={d}T00:00:00" for d in DAYS]
    assert {r["rows"] for r in out["recorded"]} == {3}
    assert out["unknown"] == ["pid=2025-03-01"]


def test_the_partitions_read_do_not_grow_with_the_file(
    days_registry: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """Each key with another spelling was looked up alone (``reg.key``: a query per
    partition of the file, 100,000 at 100,000 partitions); now the reads of ``partitions``
    are as many for a file of two partitions as for one of six."""
    root, tail = days_registry
    counted = []
    for days in (DAYS[:2], DAYS):
        observed = tmp_path / f"observed{len(days)}.csv"
        tail[tail["pid"].isin(days)].to_csv(observed, index=False)
        with executed(Engine) as seen:
            assert len(actuals(observed, root)["recorded"]) == len(days)
        counted.append(sum(" partitions" in sql for sql, _ in seen))
    assert counted[0] == counted[1], counted
