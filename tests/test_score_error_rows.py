"""A row that a partition's model refuses at ``score`` (a blank price for a model that takes no
missing values) is named by its file and data row, as every other refusal of ``score`` is: the
chunks are sorted by partition, and the error used to say only "partition 'store=s2' v1 could not
score its 1 row(s)", leaving the user to search a table of thousands of rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import manymodels as mm
from manymodels.cli import app
from manymodels.exceptions import DataError

SPEC = {
    "name": "shops",
    "partition_by": ["store"],
    "target": "sales",
    "features": ["price"],
    "min_rows": 10,
    "validation": {"strategy": "holdout", "size": 0.25},
    "candidates": [{"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [1.0]}}],
    "selection": {"naive_candidate": False},
    "fallback": {"enabled": False},
}


def new_rows() -> pd.DataFrame:
    """Twelve rows of three stores, interleaved (so a store's rows are not the table's rows in
    order), store s2's third row without a price: data row 9 of the table."""
    stores = ["s0", "s1", "s2"] * 4
    price = np.linspace(1.0, 3.0, 12)
    price[8] = np.nan
    return pd.DataFrame({"store": stores, "price": price})


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    price = rng.uniform(1, 3, 60)
    train = pd.DataFrame({"store": [f"s{i % 3}" for i in range(60)], "price": price})
    train["sales"] = 50 - 8 * price + rng.normal(0, 1, 60)
    where = tmp_path_factory.mktemp("reg") / "mmregistry"
    mm.train(SPEC, train, registry=where)
    return where


def test_score_names_the_file_and_data_row_a_model_refused(registry: Path, tmp_path: Path) -> None:
    data = tmp_path / "new.csv"
    new_rows().to_csv(data, index=False)
    out = tmp_path / "scored.csv"
    result = CliRunner().invoke(
        app, ["score", str(data), "--registry", str(registry), "--out", str(out)]
    )
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(
        f"error: {data}: data row 9 (counting from 1): partition 'store=s2' v1"
    )
    assert "no value of feature 'price'" in lines[0]
    assert not out.exists()


def test_a_frame_s_refused_row_is_its_position_from_1(registry: Path) -> None:
    frame = new_rows().sample(frac=1.0, random_state=1).reset_index(drop=True)
    row = int(np.flatnonzero(frame["price"].isna())[0]) + 1
    with pytest.raises(DataError, match=rf"^<DataFrame>: data row {row} \(counting from 1\): "):
        mm.score(frame, registry)
