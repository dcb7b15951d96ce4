"""Per-user classification on real-shaped data (issue #18): single-class partitions, metrics
undefined on one-class validation rows, decision thresholds — trained on real Ray, served by a
real router."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from manymodels.candidates import ConstantProbabilityClassifier
from manymodels.classes import class_prior
from manymodels.exceptions import DataError, SpecError
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import RunSummary, train
from manymodels.registry import Registry
from manymodels.scoring import score
from manymodels.spec import Decision, Spec
from manymodels.training import fit_partition
from manymodels.training.classify import brier, calibration_error, log_loss
from manymodels.training.thresholds import best_threshold
from serving.job_schemas import DecisionOut
from serving.local import running_server
from serving.settings import Settings

DAYS = 20
NEVER, ALWAYS, LATE = 0, 1, 2  # users who never click, always click, click only at the end


def clicks(users: int = 12, seed: int = 0) -> pd.DataFrame:
    """``users`` × 20 days of two features and a click; user 0 never clicks, user 1 always
    does, user 2 clicks only in its last 5 days (its training rows hold one class)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, users, DAYS))
    logits = -0.5 + 2.0 * x[0] - 1.0 * x[1]
    y = rng.random((users, DAYS)) < 1 / (1 + np.exp(-logits))
    y[:, :2] = [True, False]  # every other user has both classes early on
    y[NEVER], y[ALWAYS] = False, True
    y[LATE, :15], y[LATE, 15:] = False, [True, False, True, False, False]
    return pd.DataFrame(
        {
            "user": np.repeat(np.arange(users), DAYS),
            "day": np.tile(np.arange(DAYS), users),
            "x1": x[0].ravel(),
            "x2": x[1].ravel(),
            "clicked": y.ravel().astype(np.int64),
        }
    )


def spec(**changes: Any) -> dict[str, Any]:
    return {
        "name": "clicks",
        "task": "classification",
        "partition_by": ["user"],
        "target": "clicked",
        "time_column": "day",
        "features": ["x1", "x2"],
        "metric": "roc_auc",
        "validation": {"strategy": "last", "size": 5},
        "candidates": [
            {
                "estimator": "sklearn.linear_model.LogisticRegression",
                "scale": True,
                "params": {"C": [0.1, 1.0]},
            }
        ],
        "decision": {"threshold": "cost", "cost": {"fp": 1, "fn": 20}},
        **changes,
    }


@pytest.fixture(scope="module")
def trained(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    root = tmp_path_factory.mktemp("clicks") / "registry"
    summary = train(spec(), clicks(), root, backend="ray")
    return root, summary


# ---------------------------------------------------------------------- the pipeline, on Ray
@pytest.mark.slow
def test_every_partition_gets_a_model_and_single_class_ones_are_counted_apart(
    trained: tuple[Path, RunSummary],
) -> None:
    _, summary = trained
    assert summary.run.n_failed == 0, summary.failures
    assert summary.run.n_trained == 12
    assert summary.chosen.get("single_class") == 3  # never, always, and late (training rows)
    assert summary.fallback == "trained"


@pytest.mark.slow
def test_single_class_versions_serve_smoothed_constant_probabilities(
    trained: tuple[Path, RunSummary],
) -> None:
    root, _ = trained
    df = clicks()
    rate = df["clicked"].mean()
    X = np.zeros((3, 2))
    with Registry(root) as reg:
        never = reg.load_model(f"user={NEVER}")
        late = reg.load_model(f"user={LATE}")
        fitted = reg.load_model("user=5")
    assert isinstance(never.model, ConstantProbabilityClassifier)
    assert never.version.evaluation["single_class"]["where"] == "all rows"
    assert never.version.validation["chosen"] == "single_class"
    # (k + m·p) / (n + m) with m pseudo-rows at the table's click rate (m: empirical Bayes)
    m = never.version.evaluation["single_class"]["prior_rows"]
    assert m > 0 and never.model.predict_proba(X)[:, 1] == pytest.approx([m * rate / (20 + m)] * 3)
    assert late.version.evaluation["single_class"]["where"] == "training rows"
    # why each candidate was not fitted, in words ("its all rows hold one class" before)
    (never_why,) = {c["error"] for c in never.version.candidates}
    (late_why,) = {c["error"] for c in late.version.candidates}
    assert (never_why, late_why) == (
        "not fitted: its rows hold one class",
        "not fitted: its training rows hold one class",
    )
    assert late.model.predict_proba(X)[0, 1] == pytest.approx((2 + m * rate) / (20 + m))
    # the same columns as a fitted version's, in the same class order
    assert never.model.predict_proba(X).shape == fitted.model.predict_proba(X).shape == (3, 2)
    assert list(never.model.classes_) == list(fitted.model.classes_) == [0, 1]
    assert never.version.feature_schema["classes"] == [0, 1]
    for version in (never.version, late.version, fitted.version):  # probability quality
        quality = {k: version.validation[k] for k in ("log_loss", "brier", "calibration_error")}
        assert all(math.isfinite(v) and v >= 0 for v in quality.values()), quality
        assert version.validation["brier"] <= 1


@pytest.mark.slow
def test_an_undefined_metric_falls_back_to_log_loss_and_says_so(
    trained: tuple[Path, RunSummary],
) -> None:
    root, _ = trained
    with Registry(root) as reg:
        never = reg.get_version(f"user={NEVER}")
        late = reg.get_version(f"user={LATE}")  # validation rows hold both classes
        fallback = reg.get_version(FALLBACK_KEY)
    assert never.metric == "neg_log_loss"
    assert never.evaluation["metric"] == "neg_log_loss"
    assert math.isfinite(never.score) and never.score < 0
    # 2 positives in 5 validation rows < [selection] min_class_rows 5: a ranking of 5 rows is noise
    assert late.metric == "neg_log_loss" and math.isfinite(late.score)
    assert fallback.metric == "roc_auc"


@pytest.mark.slow
def test_thresholds_are_stored_per_version(trained: tuple[Path, RunSummary]) -> None:
    root, _ = trained
    with Registry(root) as reg:
        never = reg.get_version(f"user={NEVER}").feature_schema["decision"]
        fallback = reg.get_version(FALLBACK_KEY).feature_schema["decision"]
    assert never == {
        "rule": "cost",
        "positive": 1,
        "cost": {"fp": 1.0, "fn": 20.0},
        "positives": 0,
        "threshold": pytest.approx(1 / 21),
        "chosen_on": "global",
    }
    assert fallback["chosen_on"] == "validation" and 0 < fallback["threshold"] < 1


# ---------------------------------------------------------------------- the router
@pytest.fixture(scope="module")
def router(trained: tuple[Path, RunSummary]) -> Iterator[str]:
    with running_server(Settings(registry=trained[0])) as url:
        yield url


ROWS = [{"x1": 2.0, "x2": -1.0}, {"x1": -2.0, "x2": 1.0}]


@pytest.mark.slow
def test_router_answers_label_and_threshold_beside_the_probability(router: str) -> None:
    answer = httpx.post(
        f"{router}/v1/partitions/user={NEVER}/predict?probabilities=true", json={"rows": ROWS}
    ).json()
    assert answer["threshold"] == pytest.approx(1 / 21)
    p = [row["1"] for row in answer["probabilities"]]
    assert set(answer["probabilities"][0]) == {"0", "1"}  # every class, though it saw one
    assert answer["labels"] == [1 if v >= 1 / 21 else 0 for v in p]

    fitted = httpx.post(
        f"{router}/v1/partitions/user=5/predict?probabilities=true", json={"rows": ROWS}
    ).json()
    t = fitted["threshold"]
    assert fitted["labels"] == [1 if row["1"] >= t else 0 for row in fitted["probabilities"]]


@pytest.mark.slow
def test_router_threshold_is_overridable_per_request(router: str) -> None:
    url = f"{router}/v1/partitions/user=5/predict?probabilities=true"
    low = httpx.post(f"{url}&threshold=0", json={"rows": ROWS}).json()
    high = httpx.post(f"{url}&threshold=1", json={"rows": ROWS}).json()
    assert low["threshold"] == 0 and low["labels"] == [1, 1]
    assert high["threshold"] == 1 and high["labels"] == [0, 0]
    bad = httpx.post(f"{url}&threshold=1.5", json={"rows": ROWS})
    assert bad.status_code == 422


@pytest.mark.slow
def test_router_batch_rows_carry_label_and_threshold(router: str) -> None:
    rows = [{"user": NEVER, **ROWS[0]}, {"user": 5, **ROWS[1]}, {"user": 999, **ROWS[0]}]
    answers = httpx.post(f"{router}/v1/predict?threshold=0.3", json={"rows": rows}).json()
    got = answers["predictions"]
    assert [a["threshold"] for a in got] == [0.3, 0.3, 0.3]
    assert all(a["label"] in (0, 1) for a in got)
    assert got[2]["fallback"] is True
    own = httpx.post(f"{router}/v1/predict", json={"rows": rows}).json()["predictions"]
    assert own[0]["threshold"] == pytest.approx(1 / 21)


@pytest.mark.slow
def test_score_writes_the_label_and_threshold_the_router_answers(
    router: str, trained: tuple[Path, RunSummary]
) -> None:
    """``score`` wrote the most probable class only: beside the router's ``label`` (its
    version's ``[decision]`` threshold) a row could read "0" in the file and 1 over HTTP."""
    users = [NEVER, LATE, *range(3, 12)]
    rows = [{"user": u, **ROWS[i % 2]} for i, u in enumerate(users)]
    answers = httpx.post(f"{router}/v1/predict", json={"rows": rows}).json()["predictions"]
    scored = score(pd.DataFrame(rows), trained[0], backend="local")
    assert scored["decision_label"].tolist() == [a["label"] for a in answers]
    assert scored["decision_threshold"].tolist() == [a["threshold"] for a in answers]
    assert scored["prediction"].tolist() == [a["prediction"] for a in answers]
    assert (scored["decision_label"] != scored["prediction"]).any()  # the threshold decides
    clash = (
        "already has column(s) 'decision_label', which scoring writes for a classifier's "
        "[decision]; drop or rename them"
    )
    with pytest.raises(DataError, match=re.escape(clash)):
        score(pd.DataFrame(rows).assign(decision_label=1), trained[0], backend="local")


@pytest.mark.slow
def test_actuals_judge_a_decided_classifier_by_its_label(
    trained: tuple[Path, RunSummary], tmp_path: Path
) -> None:
    """A classifier with a ``[decision]`` answers a ``label`` at its threshold, the answer a
    consumer acts on; its live error counted the most probable class only (a cost
    threshold of 1/21 labels most rows 1, the most probable class is mostly 0). The labels'
    error is ``label_error`` beside it; ``error`` stays the most probable class's, as the
    validation accuracy and the naive majority class it is compared with are counted
    (``test_monitoring``: a decided classifier is not degraded by its threshold). Over HTTP
    and from the CLI alike."""
    import shutil

    from typer.testing import CliRunner

    from manymodels.cli import app

    root = Path(shutil.copytree(trained[0], tmp_path / "registry"))
    rng = np.random.default_rng(7)
    rows = [{"day": DAYS + i, "x1": float(a), "x2": float(b)}
            for i, (a, b) in enumerate(rng.normal(size=(40, 2)))]  # fmt: skip
    actual = [int(v) for v in rng.integers(0, 2, size=40)]
    with running_server(Settings(registry=root)) as url:
        answer = httpx.post(f"{url}/v1/partitions/user=5/predict", json={"rows": rows}).json()
        labels, most_probable = answer["labels"], answer["predictions"]
        assert labels != most_probable  # the threshold decides some rows
        posted = [{**r, "clicked": a} for r, a in zip(rows, actual, strict=True)]
        recorded = httpx.post(f"{url}/v1/partitions/user=5/actuals", json={"rows": posted})
    assert recorded.status_code == 200, recorded.text
    expected = float(np.mean(np.array(labels) != np.array(actual)))
    assert recorded.json()["label_error"] == pytest.approx(expected)
    top = float(np.mean(np.array(most_probable) != np.array(actual)))
    assert recorded.json()["error"] == pytest.approx(top)
    path = tmp_path / "actuals.csv"
    pd.DataFrame([{"user": 6, **p} for p in posted]).to_csv(path, index=False)
    with Registry(root) as reg:
        six = reg.load_model("user=6")
    from manymodels.labels import from_probabilities

    decision = six.version.schema.decision
    assert decision is not None
    rows6 = pd.DataFrame(rows)[["x1", "x2"]]
    six_labels = from_probabilities(six.predict_proba(rows6), six.classes, decision)[0]
    done = CliRunner().invoke(app, ["actuals", str(path), "--registry", str(root), "--json"])
    assert done.exit_code == 0, done.output
    (mine,) = json.loads(done.stdout)["recorded"]
    assert mine["label_error"] == pytest.approx(float(np.mean(six_labels != np.array(actual))))
    top = float(np.mean(np.asarray(six.predict(rows6)) != np.array(actual)))
    assert mine["error"] == pytest.approx(top)


# ---------------------------------------------------------------------- the parts, in-process
def test_constant_model_smooths_toward_the_prior() -> None:
    model = ConstantProbabilityClassifier([0, 1], [0.7, 0.3], prior_rows=2).fit(
        np.zeros((20, 1)), np.zeros(20, dtype=int)
    )
    assert model.predict_proba(np.zeros((1, 1)))[0] == pytest.approx([21.4 / 22, 0.6 / 22])
    assert list(model.predict(np.zeros((2, 1)))) == [0, 0]


def test_a_partition_whose_training_rows_hold_one_class_does_not_fail() -> None:
    y = np.array([0] * 15 + [1, 0, 1, 0, 0])
    X = np.random.default_rng(0).standard_normal((20, 2))
    s = Spec.from_dict(spec())
    fitted = fit_partition(X, y, s, key="user=2", time_ordered=True, prior=class_prior(y))
    assert fitted.chosen == "single_class"
    assert fitted.single_class is not None and fitted.single_class["where"] == "training rows"
    assert fitted.decision is not None and fitted.decision["chosen_on"] == "global"


def test_one_class_validation_rows_are_decided_by_the_fallback_metric() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 2))
    y = np.array([0, 1] * 7 + [0] + [0] * 5)
    brier_spec = Spec.from_dict(spec(selection={"fallback_metric": "brier"}))
    fitted = fit_partition(X, y, brier_spec, key="u", time_ordered=True)
    assert fitted.chosen != "single_class"
    assert fitted.metric == "neg_brier_score"
    assert all(c.error is None for c in fitted.candidates)


@pytest.mark.parametrize("name", ["neg_log_loss", "roc_auc_ovr", "f1_macro"])
def test_a_window_lacking_one_of_three_classes_is_decided_by_the_fallback_metric(
    name: str,
) -> None:
    """The last 10 rows hold 5 'cat' and 5 'dog' but no 'emu': scikit-learn's log loss and
    one-vs-rest AUC refused the window and the partition failed; F1 counted 'emu' as absent
    rather than as fewer than min_class_rows."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 2))
    y = np.array(["cat", "dog", "emu"] * 10 + ["cat", "dog"] * 5)
    three = {**spec(metric=name, target="animal"), "decision": None}
    three["validation"] = {"strategy": "last", "size": 10}
    three = Spec.from_dict({k: v for k, v in three.items() if v is not None})
    fitted = fit_partition(X, y, three, key="u", time_ordered=True)
    # the fallback_metric (log loss over the table's classes), recorded where it is not the
    # spec's own
    assert fitted.metric == (None if name == "neg_log_loss" else "neg_log_loss")
    assert all(c.error is None for c in fitted.candidates), fitted.candidates


def test_calibration_error_of_the_top_class() -> None:
    classes = np.array([0, 1])
    proba = np.array([[0.8, 0.2]] * 5)
    assert calibration_error(np.array([0, 0, 0, 0, 1]), proba, classes) == pytest.approx(0.0)
    assert calibration_error(np.array([0, 0, 1, 1, 1]), proba, classes) == pytest.approx(0.4)


def test_probability_metrics_agree_with_sklearn() -> None:
    from sklearn.metrics import brier_score_loss
    from sklearn.metrics import log_loss as sk_log_loss

    y = np.array([0, 1, 1, 0, 1])
    p1 = np.array([0.2, 0.7, 0.9, 0.4, 0.5])
    proba = np.column_stack([1 - p1, p1])
    classes = np.array([0, 1])
    assert log_loss(y, proba, classes) == pytest.approx(sk_log_loss(y, proba))
    assert brier(y, proba, classes) == pytest.approx(brier_score_loss(y, p1))


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"threshold": "f1"}, 0.75),  # the top two rows: F1 0.8, against 0.67 for all six
        ({"threshold": "cost", "cost": {"fp": 1, "fn": 20}}, 0.1),  # a miss costs 20 alarms
        ({"threshold": "cost", "cost": {"fp": 1, "fn": 1}}, 0.75),
    ],
)
def test_best_threshold_lies_midway_below_the_best_cut(
    rule: dict[str, Any], expected: float
) -> None:
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    truth = np.array([1, 1, 0, 0, 0, 1], dtype=bool)
    assert best_threshold(Decision.model_validate(rule), p, truth) == pytest.approx(expected)


def test_decision_needs_a_classification_spec() -> None:
    with pytest.raises(SpecError, match="decision"):
        Spec.from_dict(spec(task="regression", metric=None))


def test_a_decision_over_more_than_two_classes_is_said_to_label_nothing() -> None:
    """``[decision]`` on a table of three classes was ignored silently: no threshold, no
    label, nothing said at training."""
    from manymodels.data import prepare

    three = clicks(users=3).assign(clicked=lambda d: d["day"] % 3)
    table, _ = prepare(Spec.from_dict(spec(metric="neg_log_loss")), three)
    assert table.extra["warnings"] == [
        "[decision] labels a binary classifier's rows by a threshold, and this table has 3 "
        "classes: no version records one, and answers carry the most probable class"
    ]
    two, _ = prepare(Spec.from_dict(spec()), clicks(users=3))
    assert "warnings" not in two.extra


def test_calibration_wraps_partitions_with_enough_rows_of_each_class() -> None:
    from sklearn.calibration import CalibratedClassifierCV

    rng = np.random.default_rng(2)
    X = rng.standard_normal((60, 2))
    y = (X[:, 0] + rng.normal(0, 0.5, 60) > 0).astype(int)
    s = Spec.from_dict(spec(calibration={"method": "sigmoid"}, validation={"size": 20}))
    fitted = fit_partition(X, y, s, key="u", time_ordered=True)
    assert isinstance(fitted.model, CalibratedClassifierCV)
    assert fitted.validation["calibration"] == {"method": "sigmoid", "folds": 3, "validated": True}
    assert fitted.model.predict_proba(X[:4]).shape == (4, 2)

    rare = np.zeros(60, dtype=int)
    rare[[3, 10, 17, 25, 33, 41, 48, 55]] = 1  # 8 positives < min_rows_per_class 10
    fitted = fit_partition(X, rare, s, key="u", time_ordered=True)
    assert not isinstance(fitted.model, CalibratedClassifierCV)
    assert fitted.validation["calibration"]["reason"].startswith("8 row(s) of a class")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "regression", "metric": None, "decision": None}, "calibration"),
        ({"calibration": {"method": "sigmoid", "folds": 5, "min_rows_per_class": 3}}, "folds"),
    ],
)
def test_calibration_options_are_checked(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        Spec.from_dict({**spec(calibration={"method": "isotonic"}), **change})


def test_rows_of_one_class_appended_are_judged_by_the_fallback_metric(tmp_path: Path) -> None:
    """A day of appended rows, all of one class (most days of a churn table): the champion is
    judged on those rows only (the newer ones), where ``roc_auc`` is undefined. Both scored
    NaN, the decision read "roc_auc nan vs champion v1 nan (+nan%)", and the new version was
    kept as a candidate at every append. They are judged by ``fallback_metric`` now, as a
    partition's own one-class windows are."""
    root = tmp_path / "registry"
    users = [3, 4, 5]
    wide = spec(validation={"strategy": "last", "size": 10}, selection={"min_class_rows": 1})
    first = clicks(users=6)
    first = first[first["user"].isin(users)]
    train(wide, first, root, backend="local")
    later = clicks(users=6, seed=1)
    later = later[later["user"].isin(users) & (later["day"] < 2)]
    later = later.assign(day=later["day"] + DAYS, clicked=0)
    train(wide, later, root, backend="local", append=True)
    with Registry(root) as reg:
        for user in users:
            newest = max(reg.list_versions(f"user={user}"), key=lambda v: v.version)
            evaluation = newest.evaluation
            assert evaluation["basis"] == "unseen", evaluation
            assert math.isfinite(evaluation["challenger_score"]), evaluation
            assert math.isfinite(evaluation["champion_score"]), evaluation
            assert evaluation["reason"].split(":")[1].split()[0] == "neg_log_loss", evaluation
            assert evaluation["compared_by"] == "neg_log_loss"  # the scores' metric, recorded
            decision = DecisionOut.of(newest, "kept")  # as a retrain job answers it
            assert decision is not None and decision.metric == "neg_log_loss"
            assert decision.naive_score is None  # the version's naive is a roc_auc
