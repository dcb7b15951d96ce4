"""Why this model (manymodels.explain): weights read off real fitted scikit-learn estimators,
checked against what the estimators predict, and ``models show --explain``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import SALES_SPEC
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from typer.testing import CliRunner

from manymodels.candidates import ConstantProbabilityClassifier, LastValueRegressor
from manymodels.cli import app
from manymodels.explain import MAX_TERMS, weights
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import store_sales

RNG = np.random.default_rng(0)
X = RNG.normal(loc=[10.0, -3.0, 100.0], scale=[2.0, 0.5, 30.0], size=(200, 3))
Y = 4.0 * X[:, 0] - 7.0 * X[:, 1] + 0.05 * X[:, 2] + RNG.normal(scale=0.1, size=200)
FEATURES = ["price", "deal", "feat"]


def test_scaled_linear_coefficients_are_per_unit_of_the_raw_feature() -> None:
    model = make_pipeline(StandardScaler(), Ridge(alpha=1e-6)).fit(X, Y)
    kind, units, terms, intercept = weights(model, FEATURES)
    assert kind == "coefficients" and "as sent" in units
    coef = {t.feature: t.value for t in terms}
    assert coef == pytest.approx({"price": 4.0, "deal": -7.0, "feat": 0.05}, abs=0.05)
    by_hand = intercept[0] + X[:5] @ np.array([coef[f] for f in FEATURES])
    np.testing.assert_allclose(by_hand, model.predict(X[:5]), rtol=1e-9)


def test_tree_importances_sum_to_one_and_rank_the_strong_feature_first() -> None:
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X, Y)
    kind, _, terms, intercept = weights(model, FEATURES)
    assert kind == "importances" and intercept == []
    assert sum(t.value for t in terms) == pytest.approx(1.0)
    assert max(terms, key=lambda t: t.value).feature in ("price", "deal")


def test_lightgbm_importances_are_shares_of_its_gain_and_a_global_model_names_its_keys() -> None:
    """LightGBM's ``feature_importances_`` counts splits; shown as a share of impurity
    reduction they were wrong. A partition on a global model (``KeyBound``) hid them."""
    lgb = pytest.importorskip("lightgbm")
    from manymodels.training.global_fit import GlobalModel, KeyBound

    model = lgb.LGBMRegressor(n_estimators=30, min_child_samples=5, verbose=-1).fit(X, Y)
    kind, units, terms, _ = weights(model, FEATURES)
    assert kind == "importances" and units.startswith("share of the trees' gain")
    assert sum(t.value for t in terms) == pytest.approx(1.0)
    gain = model.booster_.feature_importance(importance_type="gain")
    assert [t.value for t in terms] == pytest.approx(list(gain / gain.sum()))
    shops = np.where(X[:, 1] > -3.0, "a", "b")
    inner = lgb.LGBMRegressor(n_estimators=30, min_child_samples=5, verbose=-1)
    glob = GlobalModel(inner, FEATURES, [], ["shop"]).fit(X, Y + (shops == "a") * 50, [shops])
    kind, units, terms, _ = weights(KeyBound(glob, {"shop": "a"}), FEATURES)
    assert kind == "importances" and "of the global model every partition on it shares" in units
    assert [t.feature for t in terms] == [*FEATURES, "shop"]
    assert max(terms, key=lambda t: t.value).feature == "shop"  # the key moves y most


def test_one_hot_columns_are_named_as_scikit_learn_names_them() -> None:
    frame = pd.DataFrame({"city": ["a", "b", "c", "a"] * 10, "price": np.arange(40.0)})
    pre = ColumnTransformer(
        [("onehot", OneHotEncoder(), ["city"]), ("numeric", "passthrough", ["price"])]
    )
    model = make_pipeline(pre, Ridge()).fit(frame, np.arange(40.0) * 2)
    _, _, terms, _ = weights(model, ["city", "price"])
    assert {t.feature for t in terms} == {
        "onehot__city_a", "onehot__city_b", "onehot__city_c", "numeric__price",
    }  # fmt: skip


def test_a_multiclass_linear_model_has_one_coefficient_per_feature_and_class() -> None:
    y = np.digitize(X[:, 0], [9.0, 11.0])
    model = LogisticRegression(max_iter=500).fit(X, y)
    _, _, terms, intercept = weights(model, FEATURES)
    assert len(terms) == 9 and len(intercept) == 3
    assert {t.cls for t in terms} == {"0", "1", "2"}


def test_a_binary_linear_classifier_names_the_class_its_coefficients_favour() -> None:
    """One row of coefficients: the log-odds of ``classes_[1]``. A partition holding 'b' and
    'c' of a table's 'a', 'b', 'c' said ``cls: None``, as one holding 'a' and 'b' did: which
    class a positive weight leans to was nowhere."""
    y = np.where(X[:, 0] > 10.0, "c", "b")
    _, _, terms, intercept = weights(LogisticRegression().fit(X, y), FEATURES)
    assert len(terms) == len(FEATURES) and len(intercept) == 1
    assert {t.cls for t in terms} == {"c"}
    assert next(t for t in terms if t.feature == FEATURES[0]).value > 0  # more x: more 'c'
    ridge = weights(Ridge().fit(X, Y), FEATURES)[2]
    assert {t.cls for t in ridge} == {None}


def test_constant_models_say_what_they_answer() -> None:
    naive = LastValueRegressor().fit(X, Y)
    assert weights(naive, FEATURES)[0] == "constant"
    assert weights(naive, FEATURES)[2][0].value == pytest.approx(Y[-1])
    one_class = ConstantProbabilityClassifier(classes=[0, 1], prior=[0.7, 0.3])
    one_class.fit(X, np.zeros(200))
    kind, _, terms, _ = weights(one_class, FEATURES)
    assert kind == "constant" and [t.cls for t in terms] == ["0", "1"]
    assert sum(t.value for t in terms) == pytest.approx(1.0)


def test_an_estimator_without_weights_says_so() -> None:
    model = HistGradientBoostingRegressor(max_iter=5).fit(X, Y)
    kind, units, terms, _ = weights(model, FEATURES)
    assert (kind, terms) == ("none", []) and "HistGradientBoostingRegressor" in units


SPEC = {**SALES_SPEC, "name": "explain"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("explain") / "registry"
    with Registry(root) as reg:
        assert train(SPEC, store_sales(n_stores=2), reg, backend="local").run.n_failed == 0
    return root


def test_models_show_explain_matches_the_served_model(registry: Path) -> None:
    with Registry.open(registry) as reg:
        key = next(p.key for p in reg.list_partitions() if p.production is not None
                   and p.production.estimator.endswith("Ridge"))  # fmt: skip
        loaded = reg.load_model(key)
    result = CliRunner().invoke(app, ["models", "show", key, "--registry", str(registry),
                                      "--explain", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    why = json.loads(result.output)["explain"]
    assert why["version"] == loaded.version.version and why["kind"] == "coefficients"
    assert why["naive_score"] == loaded.version.naive_score
    labels = [c["label"] for c in loaded.version.candidates]
    assert [c["label"] for c in why["candidates"]] == labels
    row = {"price": 2.5, "deal": 1, "feat": 0}
    coef = {t["feature"]: t["value"] for t in why["terms"]}
    by_hand = why["intercept"][0] + sum(coef[f] * v for f, v in row.items())
    assert by_hand == pytest.approx(float(loaded.predict([row])[0]))
    table = CliRunner().invoke(app, ["models", "show", key, "--registry", str(registry),
                                     "--explain"])  # fmt: skip
    assert table.exit_code == 0 and "(intercept)" in table.output
    assert "per unit of the feature as sent" in table.output
    title = f"why version {why['version']}: Ridge, mean_absolute_error "
    assert any(line.startswith(title) for line in table.output.splitlines())  # one line


def test_terms_are_capped_and_counted() -> None:
    wide = RNG.normal(size=(100, MAX_TERMS + 10))
    model = Ridge().fit(wide, wide[:, 0])
    from manymodels.explain import explain
    from manymodels.registry.entities import ModelVersion

    version = ModelVersion(
        key="k", version=1, run_id="r", created_at="", estimator="Ridge", params={},
        metric="neg_mean_absolute_error", score=-1.0, naive_score=-2.0, n_rows=100,
        data_fingerprint="", feature_schema={"features": [f"f{i}" for i in range(wide.shape[1])]},
        artifact_sha256="", artifact_size=0, libraries={},
    )  # fmt: skip
    why = explain(version, model)
    assert len(why.terms) == MAX_TERMS and why.n_terms == MAX_TERMS + 10
    assert why.terms[0].feature == "f0"  # largest first


def _by_hand(why: dict, row: dict) -> float:
    """``intercept + Σ coef·value`` of an explanation for one raw row: a one-hot column
    (``onehot__c_v``) counts 1 when the row's ``c`` is ``v``."""
    total = why["intercept"][0]
    for term in why["terms"]:
        part, name = term["feature"].split("__", 1)
        if part == "onehot":
            column, value = name.rsplit("_", 1)
            total += term["value"] * float(str(row[column]) == value)
        else:
            total += term["value"] * row[name]
    return float(total)


def _explained(frame: pd.DataFrame, spec: dict, root: Path) -> tuple[dict, object]:
    from manymodels.explain import explain

    with Registry(root) as reg:
        assert train(spec, frame, reg, backend="local").run.n_failed == 0
        loaded = reg.load_model("k=a")
    return explain(loaded.version, loaded.model).to_dict(), loaded


def test_a_scaled_linear_model_beside_a_text_feature_adds_up_to_its_prediction(
    tmp_path: Path,
) -> None:
    """With a text feature the scaler sits in a ColumnTransformer beside the one-hot encoder;
    its coefficients were per standard deviation and added up to 6,733 for a 409 forecast."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"k": "a", "x": rng.normal(100, 20, 60), "c": rng.choice(["p", "q"], 60)})
    frame["y"] = 3 * frame.x + np.where(frame.c == "p", 50, 0) + rng.normal(0, 1, 60)
    spec = {
        "name": "explain-text", "partition_by": ["k"], "target": "y", "features": ["x", "c"],
        "categorical": ["c"], "min_rows": 10, "validation": {"strategy": "holdout", "size": 10},
        "candidates": [{"estimator": "sklearn.linear_model.Ridge", "scale": True}],
        "selection": {"naive_candidate": False},
    }  # fmt: skip
    why, loaded = _explained(frame, spec, tmp_path / "registry")
    assert why["kind"] == "coefficients" and "as sent (the scaler folded back in)" in why["units"]
    assert "numeric__x" in {t["feature"] for t in why["terms"]}
    for row in ({"x": 120.0, "c": "p"}, {"x": 55.5, "c": "q"}):
        assert _by_hand(why, row) == pytest.approx(float(loaded.predict([row])[0]), abs=1e-6)


def test_a_scaled_logistic_regression_beside_a_text_feature_adds_up_to_its_log_odds(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(2)
    amount = rng.normal(500, 200, 120)
    frame = pd.DataFrame({"k": "a", "amount": amount, "plan": rng.choice(["free", "pro"], 120)})
    frame["churn"] = (rng.random(120) < 1 / (1 + np.exp(-(amount - 500) / 100))).astype(int)
    spec = {
        "name": "explain-logit", "task": "classification", "partition_by": ["k"],
        "target": "churn", "features": ["amount", "plan"], "metric": "neg_log_loss",
        "min_rows": 20, "validation": {"strategy": "holdout", "size": 0.25},
        "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression", "scale": True}],
    }  # fmt: skip
    why, loaded = _explained(frame, spec, tmp_path / "registry")
    assert why["estimator"].endswith("LogisticRegression") and "folded back in" in why["units"]
    for row in ({"amount": 700.0, "plan": "pro"}, {"amount": 310.0, "plan": "free"}):
        p = float(np.asarray(loaded.predict_proba([row]))[0][1])
        assert _by_hand(why, row) == pytest.approx(np.log(p / (1 - p)), abs=1e-6)


def test_a_column_transformer_scaler_without_centring_and_a_passed_through_column_fold() -> None:
    """A factory's own ColumnTransformer: ``with_mean=False`` computes ``mean_`` but does not
    subtract it, and the remainder passes through unscaled."""
    frame = pd.DataFrame({"city": ["a", "b", "c", "a"] * 10, "price": X[:40, 0], "deal": X[:40, 1],
                          "feat": X[:40, 2]})  # fmt: skip
    pre = ColumnTransformer(
        [("onehot", OneHotEncoder(), ["city"]),
         ("numeric", StandardScaler(with_mean=False), ["price", "feat"])],
        remainder="passthrough",
    )  # fmt: skip
    model = make_pipeline(pre, Ridge()).fit(frame, Y[:40] + (frame.city == "b") * 9)
    kind, units, terms, intercept = weights(model, ["city", "price", "deal", "feat"])
    assert kind == "coefficients" and "as sent" in units
    coef = {t.feature: t.value for t in terms}
    rows = frame.head(6)
    by_hand = (
        intercept[0]
        + sum(coef[f"onehot__city_{c}"] * (rows.city == c) for c in "abc")
        + coef["numeric__price"] * rows.price
        + coef["numeric__feat"] * rows.feat
        + coef["remainder__deal"] * rows.deal
    )
    np.testing.assert_allclose(by_hand, model.predict(rows), rtol=1e-9)
