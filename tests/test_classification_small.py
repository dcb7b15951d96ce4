"""Classification defaults for rare positives and small partitions (issue #18): partitions
below ``min_rows`` get a smoothed constant of their own, a ranking metric over a handful of
positives hands the decision to log loss, and the constant's smoothing strength is estimated
from the partitions (empirical Bayes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from manymodels.candidates import ConstantProbabilityClassifier
from manymodels.classes import MAX_STRENGTH, class_prior
from manymodels.exceptions import SpecError
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.spec import Spec
from manymodels.training import fit_partition
from manymodels.training.splits import PartitionSkipped


def spec(**changes: Any) -> dict[str, Any]:
    return {
        "name": "assets",
        "task": "classification",
        "partition_by": ["asset"],
        "target": "failed",
        "time_column": "day",
        "features": ["x1", "x2"],
        "metric": "roc_auc",
        "min_rows": 10,
        "validation": {"strategy": "last", "size": 5},
        "candidates": [
            {
                "estimator": "sklearn.linear_model.LogisticRegression",
                "scale": True,
                "params": {"C": [1.0]},
            }
        ],
        "decision": {"threshold": "cost", "cost": {"fp": 1, "fn": 20}},
        **changes,
    }


def assets(rows: list[int], seed: int = 0) -> pd.DataFrame:
    """One asset per entry of ``rows``, that many daily rows, failing 30 % of the days."""
    rng = np.random.default_rng(seed)
    n = sum(rows)
    return pd.DataFrame(
        {
            "asset": np.repeat(np.arange(len(rows)), rows),
            "day": np.concatenate([np.arange(k) for k in rows]),
            "x1": rng.standard_normal(n),
            "x2": rng.standard_normal(n),
            "failed": (rng.random(n) < 0.3).astype(np.int64),
        }
    )


# ---------------------------------------------------------------------- too few rows
def test_a_partition_below_min_rows_gets_its_own_smoothed_constant() -> None:
    y = np.array([1, 0, 0, 0, 0, 0])
    prior = class_prior(np.array([0] * 9 + [1]))  # the table: 10 % positives, no strength
    s = Spec.from_dict(spec(selection={"prior_rows": 4}))
    fitted = fit_partition(np.zeros((6, 2)), y, s, key="asset=9", prior=prior)
    assert fitted.chosen == "too_few_rows"
    assert isinstance(fitted.model, ConstantProbabilityClassifier)
    # (k + m·p) / (n + m): 1 failure in 6 rows, 4 pseudo-rows at the table's 10 %
    assert fitted.model.predict_proba(np.zeros((2, 2)))[:, 1] == pytest.approx([1.4 / 10] * 2)
    assert fitted.metric == "neg_log_loss" and fitted.score < 0  # in-sample: no row held out
    assert fitted.validation["too_few_rows"] == {
        "rows": 6, "min_rows": 10, "prior_rows": 4.0, "classes": {"0": 5, "1": 1},
    }  # fmt: skip
    assert fitted.decision is not None and fitted.decision["chosen_on"] == "global"
    assert fitted.decision["threshold"] == pytest.approx(1 / 21)


def test_too_few_rows_opt_out_and_regression_keep_the_fallback() -> None:
    y, X = np.array([1, 0, 0, 0]), np.zeros((4, 2))
    opted_out = Spec.from_dict(spec(selection={"too_few_rows": "fallback"}))
    with pytest.raises(PartitionSkipped, match="min_rows"):
        fit_partition(X, y, opted_out, key="asset=1")
    regression = spec(task="regression", metric=None, decision=None)
    regression["candidates"][0]["estimator"] = "sklearn.linear_model.Ridge"
    regression["candidates"][0]["params"] = {"alpha": [1.0]}
    with pytest.raises(PartitionSkipped, match="min_rows"):
        fit_partition(X, y.astype(float), Spec.from_dict(regression), key="asset=1")
    with pytest.raises(SpecError, match="too_few_rows"):
        Spec.from_dict({**regression, "selection": {"too_few_rows": "constant"}})


def test_a_run_gives_every_partition_a_version_and_counts_the_small_ones_apart(
    tmp_path: Path,
) -> None:
    summary = train(spec(), assets([20, 20, 20, 6, 3]), tmp_path / "registry", backend="local")
    assert (summary.run.n_trained, summary.run.n_skipped, summary.run.n_failed) == (5, 0, 0)
    assert summary.chosen.get("too_few_rows") == 2
    with Registry(tmp_path / "registry") as reg:
        small = reg.get_version("asset=4")
        assert small.validation["chosen"] == "too_few_rows"
        assert small.evaluation["metric"] == "neg_log_loss"
        assert reg.load_model("asset=4").predict_proba(pd.DataFrame({"x1": [0.0], "x2": [0.0]}))[
            0
        ].shape == (2,)


# ---------------------------------------------------------------------- rare positives
def test_a_ranking_metric_over_few_positives_hands_the_decision_to_log_loss() -> None:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 2))
    y = (X[:, 0] > 0).astype(int)
    y[-10:] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]  # one positive in the validation window
    few = Spec.from_dict(spec(validation={"strategy": "last", "size": 10}))
    assert fit_partition(X, y, few, key="a", time_ordered=True).metric == "neg_log_loss"
    defined = Spec.from_dict(
        spec(validation={"strategy": "last", "size": 10}, selection={"min_class_rows": 1})
    )
    assert fit_partition(X, y, defined, key="a", time_ordered=True).metric is None  # roc_auc


def test_naive_candidate_for_classification_is_the_smoothed_constant() -> None:
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 2))
    y = (rng.random(40) < 0.1).astype(int)  # noise: nothing to learn
    y[-10:] = [0] * 9 + [1]
    tree = {"estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": [None]}}
    s = Spec.from_dict(spec(validation={"strategy": "last", "size": 10}, candidates=[tree]))
    fitted = fit_partition(X, y, s, key="a", time_ordered=True, prior=class_prior(y))
    assert fitted.chosen == "naive"  # a tree on noise: certain and wrong, on log loss
    assert isinstance(fitted.model, ConstantProbabilityClassifier)
    assert (
        0 < fitted.model.predict_proba(X[:1])[0, 1] < 1
    )  # never certain: a failure costs finitely


# ---------------------------------------------------------------------- empirical Bayes
@pytest.mark.parametrize("m", [3.0, 30.0])
def test_prior_strength_recovers_how_much_partitions_differ(m: float) -> None:
    rng = np.random.default_rng(5)
    n = rng.integers(10, 40, 4000)
    rate = rng.beta(0.2 * m, 0.8 * m, len(n))
    y = np.concatenate([rng.random(k) < p for k, p in zip(n, rate, strict=True)]).astype(int)
    prior = class_prior(y, np.concatenate([[0], np.cumsum(n)]))
    assert prior.strength == pytest.approx(m, rel=0.25)


def test_partitions_alike_are_smoothed_hard_toward_the_table() -> None:
    rng = np.random.default_rng(6)
    n = np.full(500, 20)
    y = (rng.random(n.sum()) < 0.1).astype(int)  # one rate for every partition
    prior = class_prior(y, np.concatenate([[0], np.cumsum(n)]))
    assert prior.strength is not None and prior.strength > 100
    assert prior.strength <= MAX_STRENGTH
    assert class_prior(y).strength is None  # no partitions given: the spec's 2 rows apply


def test_monitoring_compares_live_answers_with_the_naive_training_compared_with(
    tmp_path: Path,
) -> None:
    """A version's recorded naive answer (what live accuracy is measured against) is the class
    of the smoothed constant, training's naive baseline — not the partition's own majority,
    which a few rows can tip the other way."""
    df = assets([20] * 8 + [12], seed=3)
    df["failed"] = 0
    df.loc[df.index[df.asset < 8][::25], "failed"] = 1  # the table: rarely a failure
    small = df.index[df.asset == 8]
    df.loc[small, "failed"] = [1, 0] * 5 + [1, 1]  # asset 8: 7 of 12 days failed
    summary = train(spec(selection={"prior_rows": 50}), df, tmp_path / "reg", backend="local")
    assert summary.run.n_failed == 0, summary.failures
    with Registry.open(tmp_path / "reg") as reg:
        profile = reg.get_version("asset=8").feature_schema["profile"]
    assert df.loc[small, "failed"].mean() > 0.5  # its own majority: failed
    assert profile["naive"] == 0  # smoothed toward the table's rate of ~4 %: not failed


def test_models_show_says_a_small_partition_s_score_is_on_its_own_rows(tmp_path: Path) -> None:
    """``models show`` of a partition below min_rows headed its table "(log_loss on
    validation)", though its constant had no rows held out and was scored on its own; a
    validated partition's table still says "on validation"."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    train(spec(), assets([20, 6]), tmp_path / "registry", backend="local")
    shown = {}
    for key in ("asset=0", "asset=1"):
        argv = ["models", "show", key, "--registry", str(tmp_path / "registry")]
        result = CliRunner().invoke(app, argv, env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        shown[key] = result.output
    assert "on validation" in shown["asset=0"].splitlines()[0], shown
    small = shown["asset=1"]
    assert "(log_loss on its own rows, in-sample" in small.splitlines()[0], small
    assert "metric" not in small.split("candidates tried")[0], small  # one metric: no column
    assert "validation" not in small, small  # nor its candidates' table: none was fitted


def test_models_show_names_each_versions_metric_when_they_differ(tmp_path: Path) -> None:
    """A partition whose v1 was a constant below min_rows (scored on log_loss, its fallback
    metric) and whose v2 was validated on the spec's accuracy: ``models show`` headed both
    "accuracy" (the first version's) and printed v1's log_loss of 0.64 as "-0.6365". Now a
    ``metric`` column names each row's, its score in that metric's sign (a table of one
    metric keeps its name in the title, test above)."""
    import json

    from typer.testing import CliRunner

    from manymodels.browse_tables import metric_view
    from manymodels.cli import app
    from manymodels.console import fmt

    root = tmp_path / "registry"
    train(spec(metric="accuracy"), assets([6]), root, backend="local")
    train(spec(metric="accuracy"), assets([40], seed=1), root, backend="local")
    argv = ["models", "show", "asset=0", "--registry", str(root)]
    stored = json.loads(CliRunner().invoke(app, [*argv, "--json"]).output)["versions"]
    metrics = {v["version"]: v["metric"] for v in stored}
    assert metrics == {1: "neg_log_loss", 2: "accuracy"}, metrics
    result = CliRunner().invoke(app, argv, env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("versions of asset=0 (on validation; v1 on its own rows"), lines[0]
    header = next(x for x in lines if "version" in x and "aliases" in x)
    assert [c.strip() for c in header.split("┃")[5:7]] == ["metric", "model"], header
    for v in stored:
        row = next(x for x in lines if x.startswith(f"│ {v['version']} "))
        name, sign = metric_view(v["metric"])
        assert [c.strip() for c in row.split("│")[5:7]] == [name, fmt(sign * v["score"])], row
