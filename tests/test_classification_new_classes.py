"""Classes that are not everywhere: a class first seen in a partition's newest rows, a
champion trained before a class existed, and a three-class table's two-class partitions.

scikit-learn's ``neg_log_loss`` and ``neg_brier_score`` scorers take a model's columns for the
classes, so each of these was refused ("y_true and y_prob contain different number of
classes"): the partition and the fallback failed, the champion "could not be evaluated" and
was kept at every retrain, and the naive baseline went unscored.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from manymodels.classes import class_prior
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.spec import Spec
from manymodels.training import fit_partition


def spec(metric: str, **changes: Any) -> dict[str, Any]:
    return {
        "name": "moods",
        "task": "classification",
        "partition_by": ["user"],
        "target": "mood",
        "time_column": "day",
        "features": ["x1", "x2"],
        "metric": metric,
        "min_rows": 10,
        "validation": {"strategy": "last", "size": 10},
        "selection": {"min_class_rows": 1},
        "candidates": [
            {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": [1.0]}}
        ],
        **changes,
    }


@pytest.mark.parametrize("metric", ["neg_log_loss", "neg_brier_score", "roc_auc_ovr"])
def test_a_class_first_seen_in_the_validation_rows_does_not_fail_the_partition(
    metric: str,
) -> None:
    """'emu' appears in the last 10 rows only: the fits on the 30 before answer 'cat' and
    'dog'. It is decided by the fallback metric over the table's classes."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 2))
    y = np.array(["cat", "dog"] * 15 + ["cat", "dog", "emu"] * 3 + ["emu"])
    s = Spec.from_dict(spec(metric))
    fitted = fit_partition(X, y, s, key="u", time_ordered=True, prior=class_prior(y))
    assert all(c.error is None for c in fitted.candidates), fitted.candidates
    assert np.isfinite(fitted.score)
    assert (fitted.metric or metric) == "neg_log_loss"  # the fallback_metric decided


@pytest.mark.parametrize("metric", ["neg_log_loss", "neg_brier_score"])
def test_a_two_class_partition_of_a_three_class_table_scores_its_naive(metric: str) -> None:
    """The naive baseline (the smoothed constant) answers all three classes of the table; the
    partition's rows hold two. Its score was None: it never competed."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 2))
    y = np.where(X[:, 0] > 0, "cat", "dog")
    table = class_prior(np.concatenate([y, ["emu"] * 20]))
    s = Spec.from_dict(spec(metric))
    fitted = fit_partition(X, y, s, key="u", time_ordered=True, prior=table)
    assert fitted.naive_score is not None and np.isfinite(fitted.naive_score)
    assert fitted.metric is None  # the spec's own metric decided
    if metric == "neg_log_loss":  # as scikit-learn's scorer scores it over the rows' classes
        own = fit_partition(X, y, s, key="u", time_ordered=True)
        assert own.chosen == fitted.chosen == "candidate"
        assert fitted.score == pytest.approx(own.score)


def moods(days: range, new_class_from: int | None, seed: int) -> pd.DataFrame:
    """Three users × ``days`` of two features and a mood ('calm' or 'tense' by ``x1``); from
    day ``new_class_from`` every other day of user 0 is 'elated'."""
    rng = np.random.default_rng(seed)
    frames = []
    for user in range(3):
        x = rng.standard_normal((2, len(days)))
        mood = np.where(x[0] + 0.3 * rng.standard_normal(len(days)) > 0, "tense", "calm")
        day = np.asarray(days)
        if user == 0 and new_class_from is not None:
            mood = np.where((day >= new_class_from) & (day % 2 == 0), "elated", mood)
        frames.append(
            pd.DataFrame({"user": user, "day": day, "x1": x[0], "x2": x[1], "mood": mood})
        )
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("metric", ["neg_log_loss", "roc_auc_ovr"])
def test_a_champion_trained_before_a_class_existed_is_judged_not_kept(
    tmp_path: Path, metric: str
) -> None:
    """v1 knows 'calm' and 'tense'; the table grows 'elated' in user 0's newest rows (its
    training rows too). The champion was "could not be evaluated (ValueError: y_true and
    y_prob contain different number of classes: 3 vs 2 …); kept", at every retrain: the new
    class was never served. It is judged over the table's classes now (0 for 'elated')."""
    root = tmp_path / "registry"
    first = moods(range(40), None, seed=0)
    train(spec(metric), first, root, backend="local")
    grown = pd.concat([first, moods(range(40, 56), new_class_from=40, seed=1)])
    train(spec(metric), grown, root, backend="local")
    with Registry(root) as reg:
        v2 = max(reg.list_versions("user=0"), key=lambda v: v.version)
        evaluation = v2.evaluation
        assert v2.version == 2 and v2.feature_schema["classes"] == ["calm", "elated", "tense"]
        assert evaluation["champion_score"] is not None, evaluation["reason"]
        assert np.isfinite(evaluation["champion_score"]), evaluation
        assert evaluation["promote"], evaluation["reason"]
        assert reg.load_model("user=0").version.version == 2


def test_a_mean_of_a_two_class_and_a_three_class_model_puts_each_in_its_columns() -> None:
    """``ensemble = "top2"`` of a multi-class partition's local fit (its two classes) and a
    global model (the table's three): the mean of a (n, 2) and a (n, 3) answer raised
    ("inhomogeneous shape"), so the ensemble was recorded as failed and never offered."""
    from sklearn.linear_model import LogisticRegression

    from manymodels.candidates import MeanOf

    rng = np.random.default_rng(4)
    X = rng.standard_normal((60, 2))
    three = np.where(X[:, 0] > 0.5, "emu", np.where(X[:, 0] > -0.5, "dog", "cat"))
    two = np.where(X[:, 0] > 0, "dog", "cat")
    local = LogisticRegression().fit(X, two)
    table = LogisticRegression().fit(X, three)
    both = MeanOf([local, table])
    assert list(both.classes_) == ["cat", "dog", "emu"]
    proba = both.predict_proba(X[:5])
    mine, theirs = local.predict_proba(X[:5]), table.predict_proba(X[:5])
    expected = theirs / 2
    expected[:, :2] += mine / 2  # the local fit's 'cat' and 'dog'; 0 for 'emu'
    np.testing.assert_allclose(proba, expected)
    assert list(both.predict(X[:5])) == list(both.classes_[proba.argmax(axis=1)])
    same = MeanOf([table, table])
    assert same.classes_ is table.classes_
    np.testing.assert_allclose(same.predict_proba(X[:5]), theirs)


def test_a_top2_of_a_local_and_a_global_classifier_is_scored(tmp_path: Path) -> None:
    """The ensemble of a partition holding two of the table's three classes is scored."""
    table = moods(range(40), new_class_from=0, seed=2)  # user 0: 'elated' every other day
    global_spec = spec(
        "neg_log_loss",
        selection={"ensemble": "top2", "naive_candidate": False},
        candidates=[
            {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": [1.0]}},
            {
                "estimator": "sklearn.tree.DecisionTreeClassifier",
                "scope": "global",
                "params": {"max_depth": [3]},
            },
        ],
    )
    root = tmp_path / "registry"
    train(global_spec, table, root, backend="local")
    with Registry(root) as reg:
        version = reg.get_version("user=1", 1)
        top2 = [c for c in version.candidates if c["label"] == "top2"]
        assert top2 and top2[0]["error"] is None and top2[0]["score"] is not None, top2


# ------------------------------------------- appending to a partition that holds one class
def clicks_spec() -> dict[str, Any]:
    return {
        **spec("neg_log_loss", target="clicked"),
        "decision": {"threshold": "cost", "cost": {"fp": 1, "fn": 4}},
    }


def clicks(days: range, seed: int) -> pd.DataFrame:
    """Four users: 0 never clicks, 1 always does, 2 and 3 by ``x1``."""
    rng = np.random.default_rng(seed)
    frames = []
    for user in range(4):
        x = rng.standard_normal((2, len(days)))
        clicked = {0: np.zeros(len(days)), 1: np.ones(len(days))}.get(user, x[0] > 0)
        frames.append(
            pd.DataFrame(
                {
                    "user": user,
                    "day": np.asarray(days),
                    "x1": x[0],
                    "x2": x[1],
                    "clicked": np.asarray(clicked, dtype=np.int64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def answers_every_class(reg: Registry, key: str) -> None:
    """The version serving ``key`` answers both classes, neither certain, with its threshold."""
    newest = max(reg.list_versions(key), key=lambda v: v.version)
    assert newest.version == 2
    assert newest.feature_schema["classes"] == [0, 1]
    assert newest.feature_schema["decision"]["chosen_on"] == "global"
    proba = reg.load_model(key, newest.version).predict_proba([{"x1": 0.0, "x2": 0.0}])
    assert proba.shape == (1, 2) and 0 < proba[0, 1] < 1 and 0 < proba[0, 0] < 1


def test_an_append_to_a_one_class_partition_keeps_the_tables_classes(tmp_path: Path) -> None:
    """``train --append`` of rows of user 1 (always clicks): the prior was made of its rows
    alone, so its new version knew one class — probability 1 of a click, the class 0 gone
    from its answers, its [decision] dropped, and promoted on a perfect log loss of 0."""
    root = tmp_path / "registry"
    train(clicks_spec(), clicks(range(30), seed=0), root, backend="local")
    new = clicks(range(30, 33), seed=1)
    train(clicks_spec(), new[new["user"] == 1], root, backend="local", append=True)
    with Registry(root) as reg:
        answers_every_class(reg, "user=1")
        newest = reg.get_version("user=1", 2)
        assert newest.score < 0  # not a perfect log loss


def test_an_append_of_a_new_one_class_partition_keeps_the_tables_classes(tmp_path: Path) -> None:
    """``train --append`` of a user new to the registry who always clicks: no kept version of
    its own lends the table's prior, and its prior was made of its rows alone: it knew the
    class 1 only and answered it with probability 1. The fallback's (every partition's rows)
    lends it now."""
    root = tmp_path / "registry"
    train(clicks_spec(), clicks(range(30), seed=0), root, backend="local")
    new = clicks(range(30, 45), seed=1)
    train(clicks_spec(), new[new["user"] == 1].assign(user=9), root, backend="local", append=True)
    with Registry(root) as reg:
        (version,) = reg.list_versions("user=9")
        assert version.feature_schema["classes"] == [0, 1]
        proba = reg.load_model("user=9", version.version).predict_proba([{"x1": 0.0, "x2": 0.0}])
        assert proba.shape == (1, 2) and 0 < proba[0, 0] < 1 and 0 < proba[0, 1] < 1


@pytest.mark.parametrize(("mode", "days"), [("append", 3), ("replace", 12)])
def test_a_retrain_over_http_of_a_one_class_partition_keeps_the_tables_classes(
    tmp_path: Path, mode: str, days: int
) -> None:
    """The same through the router: a user who never clicked posts more days without a
    click, appended to its kept rows (the default) or trained on alone (``?mode=replace``)."""
    import httpx

    from serving.local import running_server
    from serving.settings import Settings

    root = tmp_path / "registry"
    train(clicks_spec(), clicks(range(30), seed=0), root, backend="local")
    rows = clicks(range(30, 30 + days), seed=1)
    rows = rows[rows["user"] == 0].drop(columns=["user"]).to_dict("records")
    auth = {"Authorization": "Bearer t0ken"}
    settings = Settings(registry=root, admin_token="t0ken", retrain_backend="local")
    with running_server(settings) as url:
        r = httpx.post(
            f"{url}/v1/partitions/user=0/retrain?mode={mode}", json={"rows": rows}, headers=auth
        )
        assert r.status_code == 202, r.text
        for _ in range(300):
            job = httpx.get(f"{url}/v1/jobs/{r.json()['job_id']}", headers=auth).json()
            if job["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.1)
        assert job["status"] == "succeeded", job
        answer = httpx.post(
            f"{url}/v1/partitions/user=0/predict?probabilities=true",
            json={"rows": [{"x1": 0.0, "x2": 0.0}]},
        ).json()
    assert answer["version"] == job["production_version"]
    assert set(answer["probabilities"][0]) == {"0", "1"}
    assert 0 < answer["probabilities"][0]["1"] < 1
    assert answer["labels"] is not None and answer["threshold"] == pytest.approx(0.2)
    with Registry(root) as reg:
        answers_every_class(reg, "user=0")


def test_a_version_recorded_before_the_rates_still_lends_its_classes() -> None:
    """Versions trained before ``class_prior`` was recorded list their classes only: the
    appended rows' shares of them, blended half and half with equal shares (none certain)."""
    from manymodels.appending import learnt_prior
    from manymodels.feature_schema import FeatureSchema

    rows = class_prior(np.array([1, 1, 1]))
    prior = learnt_prior(FeatureSchema([], classes=[0, 1]), rows)
    assert prior.classes.tolist() == [0, 1] and prior.rates.tolist() == [0.25, 0.75]
    assert prior.strength is None  # [selection] prior_rows = "auto" then takes 2
    recorded = FeatureSchema([], classes=[0, 1], class_prior={"rates": [0.7, 0.3], "strength": 5})
    assert learnt_prior(recorded, rows).rates.tolist() == [0.7, 0.3]
    assert learnt_prior(None, rows) is rows
