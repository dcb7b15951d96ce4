"""Scoring a table of another spec's columns whose keys are new to a registry of two specs
keyed alike: the registry's one fallback (the first spec's) scores those rows, and a table
lacking its columns was refused as if it were wrong for its own spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError
from manymodels.pipeline import train
from manymodels.scoring import score_table

runner = CliRunner()


def frame(shops: list[str], feature: str, target: str) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=30 * len(shops))
    return pd.DataFrame(
        {"shop": np.repeat(shops, 30), feature: x, target: 2 * x + rng.normal(size=len(x))}
    )


def spec(name: str, feature: str, target: str) -> dict[str, Any]:
    return {
        "name": name, "partition_by": ["shop"], "target": target, "features": [feature],
        "min_rows": 10, "validation": {"strategy": "holdout", "size": 0.2},
        "candidates": [{"estimator": "sklearn.linear_model.LinearRegression"}],
    }  # fmt: skip


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("two-specs") / "reg"
    train(spec("prices", "price", "units"), frame(["a", "b"], "price", "units"), root,
          backend="local")  # fmt: skip
    train(spec("weather", "temp", "sales"), frame(["c", "d"], "temp", "sales"), root,
          backend="local")  # fmt: skip
    return root


def test_new_keys_of_another_spec_name_the_fallback_and_its_spec(
    registry: Path, tmp_path: Path
) -> None:
    """Before: "missing feature column(s) 'price' that the 'production' models were trained
    on", naming neither the fallback nor the spec that trained it."""
    path = tmp_path / "new-weather.csv"
    frame(["e"], "temp", "sales").to_csv(path, index=False)
    result = runner.invoke(app, ["score", str(path), "-o", str(tmp_path / "out.csv"),
                                 "--registry", str(registry)])  # fmt: skip
    assert result.exit_code != 0
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and "fallback (v1, trained by spec 'prices')" in line, line
    assert "column(s) 'price' the table lacks" in line and "spec(s) 'weather'" in line, line
    assert not (tmp_path / "out.csv").exists()


def test_known_keys_lacking_columns_keep_the_plain_error(registry: Path) -> None:
    table = pd.concat([frame(["c"], "price", "sales"), frame(["e"], "price", "sales")])
    with pytest.raises(DataError, match="missing feature column\\(s\\) 'temp' that the"):
        score_table(table, registry)


def test_new_keys_with_the_fallbacks_columns_are_scored(registry: Path) -> None:
    out = score_table(frame(["e"], "price", "units"), registry).frame
    assert out["fallback"].all() and out["prediction"].notna().all()
