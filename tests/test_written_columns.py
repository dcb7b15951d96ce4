"""A model that reads a column named as one scoring or forecasting writes (a feature
``prediction``, a key column ``partition``, a time column ``lo-80``) trained and served, but
no table of its rows could ever be batch-scored: ``score`` refused the table ("already has
column(s) 'prediction', which scoring writes"), and dropping the column dropped a feature.
Training now refuses such a name, in the spec or in the table, from the one list the writers
use (``manymodels.written_columns``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from factories import RIDGE, linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.classes import proba_column
from manymodels.cli import app
from manymodels.exceptions import DataError, SpecError
from manymodels.intervals import column_names
from manymodels.pipeline import train
from manymodels.scoring import OUTPUT_COLUMNS, score
from manymodels.scoring.plan import DECISION_COLUMNS
from manymodels.spec import Spec
from manymodels.written_columns import reserved

runner = CliRunner()

SPEC = spec_dict(candidates=[{"estimator": RIDGE}], min_rows=10, features=["x0", "x1"])

CASES = [
    ({"features": ["x0", "prediction"]}, "prediction", "a name scoring and forecasting write"),
    ({"features": ["x0", "fallback"]}, "fallback", "a name scoring writes"),
    ({"partition_by": ["partition"]}, "partition", "a name scoring writes"),
    ({"time_column": "lo-80"}, "lo-80", "for a prediction interval"),
    ({"features": ["x0", "hi-97.5"]}, "hi-97.5", "for a prediction interval"),
    ({"features": ["x0", "proba-yes"], "categorical": ["proba-yes"]}, "proba-yes", "probability"),
    ({"features": None, "categorical": ["decision_label"]}, "decision_label", "[decision]"),
    ({"changes": ["model_version"], "features": ["x0", "model_version"]}, "model_version", ""),
]


@pytest.mark.parametrize(("change", "name", "why"), CASES, ids=[c[1] for c in CASES])
def test_a_spec_reading_a_written_name_is_refused_naming_it(
    change: dict[str, Any], name: str, why: str
) -> None:
    with pytest.raises(SpecError) as e:
        Spec.from_dict({**SPEC, **change}, source="s.toml")
    line = str(e.value)
    assert f"column '{name}' is a name scoring" in line and why in line, line
    assert line.endswith(": rename it") and "\n" not in line, line


def test_train_on_the_cli_refuses_a_feature_named_prediction_in_one_line(
    tmp_path: Path,
) -> None:
    """Before: it trained (and served), then ``score`` of its own table failed."""
    frame = linear_frame(2, 30).rename(columns={"x1": "prediction"})
    data, spec = tmp_path / "d.csv", tmp_path / "s.toml"
    frame.to_csv(data, index=False)
    spec.write_text(
        'name = "s"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
        'features = ["x0", "prediction"]\nmin_rows = 10\n'
        f'[[candidates]]\nestimator = "{RIDGE}"\n'
    )
    root = tmp_path / "reg"
    result = runner.invoke(app, ["train", str(spec), str(data), "--registry", str(root)])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        f"error: {spec}: column 'prediction' is a name scoring and forecasting write: rename it"
    ]
    assert not root.exists()


def test_a_table_whose_other_columns_are_the_features_is_refused_a_written_name(
    tmp_path: Path,
) -> None:
    """Without ``features`` every other column is one: a scored table trained on again
    (``prediction``, ``partition``, …) made a model no table could be scored by."""
    spec = {**SPEC, "features": None}
    frame = linear_frame(2, 30)
    root = tmp_path / "reg"
    assert train(spec, frame, root, backend="local").run.n_trained == 2
    scored = score(frame, root, backend="local")
    with pytest.raises(DataError) as e:
        train(spec, scored, tmp_path / "again", backend="local")
    assert str(e.value) == (
        "<DataFrame>: column 'prediction' is a name scoring and forecasting write: rename "
        "it, or list the spec's features without it"
    )
    assert not (tmp_path / "again").exists()
    # the same table less the written columns trains, and scores
    kept = scored.drop(columns=list(OUTPUT_COLUMNS))
    assert train(spec, kept, tmp_path / "ok", backend="local").run.n_trained == 2


def test_every_name_the_writers_write_is_reserved_and_only_those() -> None:
    written = [
        *OUTPUT_COLUMNS, *DECISION_COLUMNS, *column_names([80, 97.5, 99.9]),
        proba_column("yes"), proba_column("0"),
    ]  # fmt: skip
    assert [n for n in written if reserved(n) is None] == []
    fine = ["predictions", "lo-cost", "hi-fi", "lo", "proba", "probability", "partitions", "y"]
    assert [n for n in fine if reserved(n) is not None] == []


def test_the_target_may_share_a_written_name(tmp_path: Path) -> None:
    """The model never reads its target, and a table to score may leave it out."""
    frame: pd.DataFrame = linear_frame(2, 30).rename(columns={"y": "prediction"})
    spec = {**SPEC, "target": "prediction"}
    assert train(spec, frame, tmp_path / "reg", backend="local").run.n_trained == 2
    out = score(frame.drop(columns="prediction"), tmp_path / "reg", backend="local")
    assert out["prediction"].notna().all()
