"""``score(..., probabilities=True)`` / ``manymodels score --probabilities``: a classifier's
class probabilities as ``proba-<class>`` columns, the router's ``?probabilities=true`` answer,
over every class of the table (0 for a class a partition never held), fallback rows too."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import ProbaCountingLogistic
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.scoring import score, score_table

runner = CliRunner()
CLASSES = ["high", "low", "mid"]


def three_class_table() -> pd.DataFrame:
    """Shops a and b hold all three classes; shop c never holds 'mid'."""
    rng = np.random.default_rng(0)
    frames = []
    for shop, held in (("a", CLASSES), ("b", CLASSES), ("c", ["high", "low"])):
        x = rng.normal(size=90)
        y = np.where(x > 0.4, "high", np.where(x < -0.4, "low", "mid"))
        y = np.where(np.isin(y, held), y, "low")
        frames.append(pd.DataFrame({"shop": shop, "x": x, "z": rng.normal(size=90), "y": y}))
    return pd.concat(frames, ignore_index=True)


SPEC: dict[str, Any] = {
    "name": "tiers",
    "task": "classification",
    "partition_by": ["shop"],
    "target": "y",
    "features": ["x", "z"],
    "metric": "accuracy",
    "min_rows": 20,
    "candidates": [
        {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": [500]}}
    ],
    "fallback": {"enabled": True},
}


@pytest.fixture(scope="module")
def tiers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    df = three_class_table()
    root = tmp_path_factory.mktemp("proba") / "reg"
    train(SPEC, df, root, backend="local")
    return {"root": root, "df": df}


def test_a_column_per_class_of_the_table_as_the_model_answers(tiers: dict[str, Any]) -> None:
    df = pd.concat([tiers["df"], tiers["df"].head(4).assign(shop="new")], ignore_index=True)
    data = df.sample(frac=1.0, random_state=1)
    out = score(data, tiers["root"], backend="local", probabilities=True)
    names = [f"proba-{c}" for c in CLASSES]
    assert [c for c in out.columns if c.startswith("proba-")] == names
    assert out.index.equals(data.index)
    np.testing.assert_allclose(out[names].sum(axis=1), 1.0)
    with Registry.open(tiers["root"]) as reg:
        for served_by, rows in out.groupby("served_by", observed=True):
            want = reg.load_model(str(served_by)).predict_proba(rows[["x", "z"]])
            np.testing.assert_allclose(rows[names].to_numpy(), want, rtol=1e-12)
    assert (out.loc[out.shop == "c", "proba-mid"] == 0).all()  # never held: 0, not shifted
    assert out.fallback.sum() == 4 and out.loc[out.fallback, names].notna().all().all()
    plain = score(data, tiers["root"], backend="local")  # without the flag: as before
    assert not any(c.startswith("proba-") for c in plain.columns)
    pd.testing.assert_frame_equal(out.drop(columns=names), plain)


def test_unscored_rows_are_missing(tiers: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "reg"
    train({**SPEC, "fallback": {"enabled": False}}, tiers["df"], root, backend="local")
    df = pd.concat([tiers["df"].head(3), tiers["df"].head(2).assign(shop="new")])
    out = score_table(df, root, backend="local", skip_unknown=True, probabilities=True).frame
    assert out["proba-high"].isna().tolist() == [False] * 3 + [True] * 2


def test_cli_writes_the_columns_and_refuses_a_regression(
    tiers: dict[str, Any], samples_dir: Path, tmp_path: Path
) -> None:
    data, out = tmp_path / "in.csv", tmp_path / "scored.csv"
    tiers["df"].to_csv(data, index=False)
    args = ["score", str(data), "--out", str(out), "--registry", str(tiers["root"])]
    result = runner.invoke(app, [*args, "--backend", "local", "--probabilities"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    assert [f"proba-{c}" for c in CLASSES] == [c for c in written if c.startswith("proba-")]

    sales = pd.read_csv(samples_dir / "store_sales.csv")
    sales = sales[sales.store == 2]
    reg = tmp_path / "sales"
    train(samples_dir / "store_sales.toml", sales, reg, backend="local")
    sales.to_csv(data, index=False)
    args = ["score", str(data), "--out", str(out), "--registry", str(reg), "--probabilities"]
    result = runner.invoke(app, [*args, "--backend", "local"])
    assert result.exit_code == 2  # bad input, as every DataError
    line = result.output.strip()
    assert "\n" not in line and line.startswith("error: ") and "regression" in line
    assert "--probabilities" in line
    with pytest.raises(DataError, match="regression"):
        score(sales, reg, backend="local", probabilities=True)


def test_labels_and_columns_share_one_predict_proba_per_partition(tmp_path: Path) -> None:
    """``--probabilities`` beside a ``[decision]``'s labels ran each partition's rows through
    its model's ``predict_proba`` twice (3,000 users' logistic pipelines: a quarter of the
    scoring time), once for the labels and once for the columns."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=120)
    df = pd.DataFrame({"shop": np.repeat(["a", "b", "c"], 40), "x": x, "z": rng.normal(size=120)})
    df["y"] = (x + rng.normal(scale=0.5, size=120) > 0).astype(int)
    spec = {
        **SPEC,
        "candidates": [{"estimator": "factories.ProbaCountingLogistic"}],
        "decision": {"threshold": "f1"},
    }
    train(spec, df, tmp_path / "reg", backend="local")
    ProbaCountingLogistic.calls.clear()
    out = score(df, tmp_path / "reg", backend="local", probabilities=True)
    assert sorted(ProbaCountingLogistic.calls) == [40, 40, 40]  # one call per partition
    labelled = np.where(out["proba-1"] >= out["decision_threshold"], 1, 0)
    assert (out["decision_label"].to_numpy() == labelled).all()
    np.testing.assert_allclose(out[["proba-0", "proba-1"]].sum(axis=1), 1.0)


def test_through_ray_matches_in_process(tiers: dict[str, Any], ray_session: Any) -> None:
    local = score(tiers["df"], tiers["root"], backend="local", probabilities=True)
    on_ray = score_table(tiers["df"], tiers["root"], backend="ray", probabilities=True)
    assert on_ray.summary.backend == "ray"
    pd.testing.assert_frame_equal(on_ray.frame, local, check_exact=False, rtol=1e-12)


def test_a_column_the_probabilities_would_overwrite_is_refused_before_any_model_loads(
    tiers: dict[str, Any], tmp_path: Path
) -> None:
    """A table holding a ``proba-mid`` column was scored whole (every model loaded, every
    row predicted) before the clash was found, as the decision and interval columns are
    not: here the models' bytes are gone, so only a check made before they load names it."""
    root = tmp_path / "reg"
    shutil.copytree(tiers["root"], root)
    shutil.rmtree(root / "artifacts")
    data = tmp_path / "shops.csv"
    tiers["df"].drop(columns="y").assign(**{"proba-mid": 0.5}).to_csv(data, index=False)
    with pytest.raises(DataError, match=r"shops.csv: already has column\(s\) 'proba-mid'"):
        score(data, root, backend="local", probabilities=True)
    result = runner.invoke(
        app,
        [
            "score",
            str(data),
            "--registry",
            str(root),
            "--probabilities",
            "-o",
            str(tmp_path / "o.csv"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        f"error: {data}: already has column(s) 'proba-mid', which --probabilities writes; "
        "drop or rename them"
    ]
    shutil.rmtree(root)  # with the models: scored, without --probabilities, as before
    shutil.copytree(tiers["root"], root)
    assert len(score(data, root, backend="local")) == len(tiers["df"])


def test_a_column_a_model_s_own_classes_would_overwrite_is_refused_in_the_same_words(
    tiers: dict[str, Any], tmp_path: Path
) -> None:
    """Versions recorded before their table's classes were (no ``classes`` in their schema)
    answer their models' own classes, known only once the models have scored: the clash
    found then was "the table already has column(s) …", naming no table and in other
    words than the refusal before any model loads. Both say the same now."""
    root = tmp_path / "reg"
    shutil.copytree(tiers["root"], root)
    with sqlite3.connect(root / "registry.db") as db:
        db.execute(
            "UPDATE model_versions SET feature_schema_json = "
            "json_remove(feature_schema_json, '$.classes')"
        )
    db.close()
    data = tmp_path / "shops.csv"
    tiers["df"].drop(columns="y").assign(**{"proba-mid": 0.5}).to_csv(data, index=False)
    assert len(score(data, root, backend="local")) == len(tiers["df"])  # still scored
    with pytest.raises(DataError) as raised:
        score(data, root, backend="local", probabilities=True)
    assert str(raised.value) == (
        f"{data}: already has column(s) 'proba-mid', which --probabilities writes; "
        "drop or rename them"
    )
