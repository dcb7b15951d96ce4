"""A classification CSV of 0/1 labels with empty target cells (unlabelled rows): pandas reads
the column as float to hold NaN, and the models learnt classes 0.0/1.0 (``proba-0.0`` columns,
``"predictions": [0.0]``) where the same file without empty cells gives 0/1
(``classes.as_labels``). Real training, real SQLite, a real router (uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from factories import job_ended, labels_spec
from typer.testing import CliRunner

from manymodels.classes import as_labels
from manymodels.cli import app as cli_app
from manymodels.exceptions import DataError
from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings

SPEC = labels_spec("clicks", "user", "y", ["x1", "x2"])
TOKEN = "admin-token-7c2a"
runner = CliRunner()


def clicks(
    path: Path, *, users: int = 2, rows: int = 60, seed: int = 0, empty: bool = True
) -> Path:
    """0/1 labels by x1's sign; every 7th row's label an empty cell when ``empty``."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "user": np.repeat([f"u{u}" for u in range(users)], rows),
            "x1": rng.normal(size=users * rows),
            "x2": rng.normal(size=users * rows),
        }
    )
    df["y"] = (df["x1"] > 0).astype(int).astype(object)
    if empty:
        df.loc[df.index % 7 == 3, "y"] = None
    df.to_csv(path, index=False)
    return path


def classes_of(root: Path, key: str) -> list[Any]:
    with Registry.open(root) as reg:
        classes = reg.get_version(key).schema.classes
        model = reg.load_model(key).model
    assert np.asarray(model.classes_).dtype.kind == "i", model.classes_
    return list(classes or [])


def test_unlabelled_rows_leave_int_classes_in_score_and_the_router(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    data = clicks(tmp_path / "clicks.csv")
    assert pd.read_csv(data)["y"].dtype.kind == "f"  # as pandas reads it: float, for the NaN
    summary = train(SPEC, data, root, backend="local")
    assert summary.rows_dropped == {"missing_target": 17}  # still counted, as before
    for key in ("user=u0", "user=u1", "__fallback__"):
        assert classes_of(root, key) == [0, 1]
        assert all(type(c) is int for c in classes_of(root, key))

    out = tmp_path / "scores.csv"
    args = ["score", str(data), "--probabilities", "--out", str(out), "--registry", str(root)]
    result = runner.invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    header = out.read_text().splitlines()[0].split(",")
    assert "proba-0" in header and "proba-1" in header, header
    assert set(pd.read_csv(out)["prediction"].unique()) <= {0, 1}
    assert pd.read_csv(out)["prediction"].dtype.kind == "i"

    settings = Settings(registry=root, admin_token=TOKEN)
    row = {"x1": 1.5, "x2": 0.0}
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=60) as http:
        body = http.post(
            "/v1/partitions/user=u0/predict", json={"rows": [row]}, params={"probabilities": True}
        ).json()
        assert body["predictions"] == [1] and type(body["predictions"][0]) is int, body
        assert set(body["probabilities"][0]) == {"0", "1"}, body

        # a retrain upload with unlabelled rows keeps the classes the partition answers with
        posted = clicks(tmp_path / "posted.csv", users=1, seed=2).read_bytes()
        files = {"file": ("posted.csv", posted, "text/csv")}
        token = {"Authorization": f"Bearer {TOKEN}"}
        job = http.post("/v1/partitions/user=u0/retrain", files=files, headers=token)
        assert job.status_code == 202, job.text
        state = job_ended(http, f"/v1/jobs/{job.json()['job_id']}", token)
        assert state["status"] == "succeeded", state
    with Registry.open(root) as reg:
        assert reg.get_version("user=u0").version == 2
    assert classes_of(root, "user=u0") == [0, 1]


def test_append_of_unlabelled_rows_keeps_int_classes(tmp_path: Path) -> None:
    """A complete first file (int classes), then ``--append`` of rows with empty labels: the
    classes, and so the probability columns, stayed 0/1 and not 0.0/1.0."""
    root = tmp_path / "reg"
    train(SPEC, clicks(tmp_path / "first.csv", empty=False), root, backend="local")
    assert classes_of(root, "user=u0") == [0, 1]
    later = clicks(tmp_path / "later.csv", rows=30, seed=1)
    train(SPEC, later, root, backend="local", append=True)
    with Registry.open(root) as reg:
        assert reg.get_version("user=u0").version == 2
    assert classes_of(root, "user=u0") == [0, 1]


def test_as_labels_casts_only_whole_numbers() -> None:
    """Whole floats become int classes, bools stay bools; a fraction or a NaN stays float,
    text stays text."""
    assert as_labels(np.array([0.0, 1.0, 1.0])).dtype == np.int64
    assert as_labels(np.array([True, None, False], dtype=object)[[0, 2]]).dtype == bool
    assert as_labels(np.array([1, 0], dtype=object)).dtype == np.int64
    assert as_labels(np.array([1.0, 0.0], dtype=object)).dtype == np.int64
    assert as_labels(np.array([1.5, 0.0], dtype=object)).dtype == object
    assert as_labels(np.array([0.5, 1.0])).dtype.kind == "f"
    assert as_labels(np.array([np.nan, 1.0])).dtype.kind == "f"
    assert as_labels(np.array(["a", "b"], dtype=object)).dtype == object
    assert as_labels(np.array([], dtype=np.float64)).dtype.kind == "f"


def test_a_fractional_classification_target_is_still_refused(tmp_path: Path) -> None:
    path = clicks(tmp_path / "half.csv")
    df = pd.read_csv(path)
    df.loc[0, "y"] = 0.5
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"holds 0\.5, not a class label"):
        train(SPEC, path, tmp_path / "reg", backend="local")


def test_a_global_candidate_learns_int_classes_too(tmp_path: Path) -> None:
    """A ``scope = "global"`` model, fitted over every partition's rows, learnt 0.0/1.0."""
    root = tmp_path / "reg"
    spec = {
        **SPEC,
        "candidates": [
            {
                "estimator": "sklearn.linear_model.LogisticRegression",
                "params": {"max_iter": [500]},
                "scope": "global",
            }
        ],
    }
    train(spec, clicks(tmp_path / "clicks.csv"), root, backend="local")
    with Registry.open(root) as reg:
        version = reg.get_version("user=u0")
        model = reg.load_model("user=u0").model
    assert version.schema.classes == [0, 1]
    proba = model.predict_proba(pd.DataFrame({"user": ["u0"], "x1": [1.0], "x2": [0.0]}))
    assert proba.shape == (1, 2)
    assert np.asarray(model.classes_).dtype.kind == "i", model.classes_


def test_bool_labels_with_empty_cells_train_as_bools(tmp_path: Path) -> None:
    """``True``/``False`` with empty cells reads as an object column: the labelled rows were
    an object array that scikit-learn refused ("Unknown label type: unknown"), failing the
    run; they train as bools now, answered as ``proba-False``/``proba-True``."""
    path = clicks(tmp_path / "bools.csv")
    df = pd.read_csv(path)
    df["y"] = df["y"].map({1.0: "True", 0.0: "False"})
    df.to_csv(path, index=False)
    assert pd.read_csv(path)["y"].dtype == object
    root = tmp_path / "reg"
    train(SPEC, path, root, backend="local")
    with Registry.open(root) as reg:
        assert reg.get_version("user=u0").schema.classes == [False, True]
        assert reg.load_model("user=u0").model.classes_.dtype == bool
    out = tmp_path / "scores.csv"
    args = ["score", str(path), "--probabilities", "--out", str(out), "--registry", str(root)]
    result = runner.invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    assert "proba-False,proba-True" in out.read_text().splitlines()[0]


@pytest.mark.parametrize("kind", [int, float])
def test_a_frames_object_numbers_with_none_train_as_int_classes(tmp_path: Path, kind: type) -> None:
    """A DataFrame whose label column holds numbers and ``None`` (object dtype, as JSON or a
    database gives it) failed the same way; its classes are ints now."""
    df = pd.read_csv(clicks(tmp_path / "clicks.csv"))
    df["y"] = pd.Series([None if np.isnan(v) else kind(v) for v in df["y"]], dtype=object)
    assert df["y"].dtype == object and df["y"].isna().any()
    root = tmp_path / "reg"
    train(SPEC, df, root, backend="local")
    assert classes_of(root, "user=u0") == [0, 1]
