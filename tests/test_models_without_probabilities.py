"""A binary classifier whose model answers no probabilities (``RidgeClassifier``): ``score
--threshold`` refused with the words ``forecast --threshold`` and the router's
``/v1/predict?threshold=`` use, not a file without labels; ``--probabilities`` refused in one
plain sentence naming the partition once."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import open_client, pumps_spec
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.samples import sensor_readings
from manymodels.scoring import score
from serving.settings import Settings

SPEC = pumps_spec(
    name="ridge-pumps",
    metric="accuracy",
    candidates=[{"estimator": "sklearn.linear_model.RidgeClassifier"}],
)
WORDS = "partition 'asset=pump-001' v1 is not a classifier: a threshold needs probabilities"


@pytest.fixture(scope="module")
def ridge(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("ridge")
    data = sensor_readings(n_assets=1, readings=120)
    assert train(SPEC, data, base / "reg", backend="local").run.n_trained == 1
    data.to_csv(base / "rows.csv", index=False)
    return base / "reg", base / "rows.csv"


def test_score_refuses_a_threshold_its_model_cannot_label_at(ridge: tuple[Path, Path]) -> None:
    """Before: exit 0 and a file without decision_label or decision_threshold, the threshold
    asked for ignored without a word, where forecast and the router refuse it."""
    root, rows = ridge
    with pytest.raises(DataError, match=WORDS):
        forecast(root, ["asset=pump-001"], horizon=2, threshold=0.3)
    with pytest.raises(DataError, match=WORDS):
        score(rows, root, threshold=0.3, backend="local")
    out = rows.parent / "scored.csv"
    result = CliRunner().invoke(
        app, ["score", str(rows), "--registry", str(root), "--threshold", "0.3", "--out", str(out)]
    )
    assert result.exit_code == 2, result.output  # a DataError's, as forecast's
    assert result.output.splitlines() == [f"error: {WORDS}"]
    assert not out.exists()
    with open_client(Settings(registry=root)) as client:
        answer = client.post(
            "/v1/partitions/asset=pump-001/predict?threshold=0.3",
            json={"rows": [{"temperature": 70.0, "vibration": 0.2}]},
        )
    assert answer.status_code == 422 and WORDS in answer.text
    assert len(score(rows, root, backend="local")) == 120  # without a threshold it scores


def test_probabilities_of_a_model_without_them_name_the_partition_once(
    ridge: tuple[Path, Path],
) -> None:
    """Before: "partition 'asset=pump-001' v1 could not score its 120 row(s): partition
    'asset=pump-001' v1 has no class probabilities …" (and "could not forecast: …" alike), as if
    the model had failed on the rows."""
    root, rows = ridge
    words = (
        "partition 'asset=pump-001' v1 has no class probabilities (its model has no "
        "predict_proba): leave out --probabilities"
    )
    runner = CliRunner()
    out = rows.parent / "probabilities.csv"
    for args in (
        ["score", str(rows), "--registry", str(root), "--probabilities", "--out", str(out)],
        ["forecast", "--horizon", "2", "--registry", str(root), "--probabilities"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert result.output.splitlines() == [f"error: {words}"], result.output
    assert not out.exists()
