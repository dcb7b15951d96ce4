"""A scored file's columns do not depend on its rows: ``score --probabilities`` /
``--threshold`` of a table none of whose rows a model scored (every key unknown, no fallback,
``--skip-unknown``) wrote no ``proba-<class>`` / ``decision_label`` columns, so the reader of
yesterday's file broke on today's; and an integer class survives the rows left unscored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.pipeline import train
from manymodels.scoring import score

SPEC: dict[str, Any] = {
    "name": "churn",
    "task": "classification",
    "partition_by": ["shop"],
    "target": "left",
    "features": ["x", "z"],
    "metric": "neg_log_loss",
    "min_rows": 20,
    "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression"}],
    "decision": {"threshold": "f1"},
    "fallback": {"enabled": False},
}


def churn() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frames = []
    for shop in range(2):
        x, z = rng.standard_normal(80), rng.standard_normal(80)
        left = (x + 0.5 * rng.standard_normal(80) > 0.3).astype(int)  # classes 0 and 1
        frames.append(pd.DataFrame({"shop": shop, "x": x, "z": z, "left": left}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("columns") / "reg"
    train(SPEC, churn(), root, backend="local")
    return root


COLUMNS = ["decision_label", "decision_threshold", "proba-0", "proba-1"]


@pytest.mark.parametrize("threshold", [None, 0.4])
def test_a_table_no_model_scored_has_the_columns_of_one_that_was(
    root: Path, threshold: float | None
) -> None:
    rows = churn().drop(columns="left")
    scored = score(rows.head(4), root, backend="local", probabilities=True, threshold=threshold)
    unknown = rows.head(4).assign(shop=99)
    none = score(
        unknown, root, backend="local", skip_unknown=True, probabilities=True, threshold=threshold
    )
    assert [c for c in scored if c in COLUMNS] == COLUMNS
    assert list(none.columns) == list(scored.columns)
    assert none[["decision_threshold", "proba-0", "proba-1"]].isna().all().all()
    assert none["decision_label"].isna().all()


def test_cli_writes_the_columns_when_nothing_was_scored(root: Path, tmp_path: Path) -> None:
    data, out = tmp_path / "in.csv", tmp_path / "out.parquet"
    churn().drop(columns="left").head(3).assign(shop=99).to_csv(data, index=False)
    args = ["score", str(data), "--out", str(out), "--registry", str(root), "--skip-unknown"]
    result = CliRunner().invoke(app, [*args, "--probabilities", "--threshold", "0.5"])
    assert result.exit_code == 0, result.output
    written = pd.read_parquet(out)
    assert [c for c in written if c in COLUMNS] == COLUMNS
    assert len(written) == 3 and written["proba-1"].isna().all()


@pytest.mark.parametrize("ext", ["parquet", "csv"])
def test_integer_labels_stay_integers_beside_unscored_rows(
    root: Path, tmp_path: Path, ext: str
) -> None:
    """``decision_label`` of classes 0/1 with a row left unscored read back as float64 from
    Parquet (an object column of ints and None): now a nullable Int64, as ``prediction``."""
    rows = churn().drop(columns="left")
    df = pd.concat([rows.head(3), rows.head(2).assign(shop=99)], ignore_index=True)
    scored = score(df, root, backend="local", skip_unknown=True)
    assert str(scored["decision_label"].dtype) == "Int64"
    assert scored["decision_label"].isna().tolist() == [False] * 3 + [True] * 2
    data, out = tmp_path / "in.csv", tmp_path / f"out.{ext}"
    df.to_csv(data, index=False)
    args = ["score", str(data), "--out", str(out), "--registry", str(root), "--skip-unknown"]
    result = CliRunner().invoke(app, [*args, "--backend", "local"])
    assert result.exit_code == 0, result.output
    if ext == "parquet":
        written = pd.read_parquet(out)
        assert str(written["decision_label"].dtype) == "Int64"
        assert written["decision_label"].tolist()[:3] == scored["decision_label"].tolist()[:3]
    else:
        labels = pd.read_csv(out, dtype=str, keep_default_na=False)["decision_label"]
        assert set(labels[:3]) <= {"0", "1"} and list(labels[3:]) == ["", ""]


def test_interval_columns_of_a_table_no_model_scored(tmp_path: Path) -> None:
    """A version with ``[intervals]`` writes ``lo-``/``hi-`` columns by default; a table of
    unknown keys only (no fallback, skip_unknown) wrote none of them."""
    from factories import RIDGE, linear_frame, spec_dict

    root = tmp_path / "reg"
    spec = spec_dict(
        candidates=[{"estimator": RIDGE}], intervals={"levels": [80]}, min_rows=10,
        fallback={"enabled": False},
    )  # fmt: skip
    frame = linear_frame(2, rows=40)
    train(spec, frame, root, backend="local")
    rows = frame.drop(columns="y")
    scored = score(rows.head(2), root, backend="local")
    none = score(rows.head(2).assign(pid=99), root, backend="local", skip_unknown=True)
    assert {"lo-80", "hi-80"} <= set(scored.columns)
    assert list(none.columns) == list(scored.columns)
    assert none[["lo-80", "hi-80"]].isna().all().all()


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (
            ["--probabilities"],
            "is a regression model: class probabilities need a classifier "
            "(leave out --probabilities)",
        ),
        (["--threshold", "0.5"], "is not a classifier: a threshold needs probabilities"),
        (
            ["--levels", "90"],
            "has no 90% interval (levels recorded: none; [intervals] levels in the spec "
            "records them when it trains)",
        ),
    ],
    ids=["probabilities", "threshold", "levels"],
)
def test_what_a_regression_cannot_answer_is_refused_whether_or_not_a_row_was_scored(
    tmp_path: Path, option: list[str], words: str
) -> None:
    """``score --probabilities`` (or ``--threshold``, or ``--levels`` it did not record) of
    a regression registry refused any scored row, but a table of unknown keys only (no
    fallback, ``--skip-unknown``) exited 0, with no proba-* column (or empty decision or
    lo-/hi- columns): whether the job failed hung on its rows. Now both refuse."""
    from factories import RIDGE, linear_frame, spec_dict

    root = tmp_path / "reg"
    spec = spec_dict(candidates=[{"estimator": RIDGE}], min_rows=10, fallback={"enabled": False})
    frame = linear_frame(2, rows=30)
    train(spec, frame, root, backend="local")
    rows = frame.drop(columns="y").head(2)
    for name, table in (("known", rows), ("unknown", rows.assign(pid=99))):
        data, out = tmp_path / f"{name}.csv", tmp_path / f"{name}-out.csv"
        table.to_csv(data, index=False)
        args = ["score", str(data), "--out", str(out), "--registry", str(root)]
        result = CliRunner().invoke(app, [*args, "--skip-unknown", *option])
        assert result.exit_code == 2, (name, result.output)
        line = result.output.strip()
        assert line.startswith("error: ") and "partition 'pid=0' v1 " in line, line
        assert line.endswith(words), line
        assert not out.exists()
