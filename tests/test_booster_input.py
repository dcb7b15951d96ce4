"""A global LightGBM regressor predicts from a float matrix built without pandas
(``manymodels.training.booster_input``): the same bits as the frame LightGBM reads, or the
frame's way when it cannot vouch for them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from manymodels.artifacts import deserialize, serialize
from manymodels.training.booster_input import SMALL, booster_predict, booster_proba, threads
from manymodels.training.global_fit import GlobalModel, KeyBound

lgb = pytest.importorskip("lightgbm")

SHOPS = [f"s{i:02d}" for i in range(8)]


def fitted(
    estimator: Any = None, categorical: tuple[str, ...] = (), n: int = 400, seed: int = 0
) -> tuple[GlobalModel, np.ndarray, list[Any]]:
    """A global model over two key columns (a string and an integer), fitted on ``n`` rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    shops = rng.choice(SHOPS, n)
    regions = rng.integers(0, 3, n)
    y = X @ [1.0, -2.0, 0.5] + np.array([SHOPS.index(s) for s in shops]) + regions * 0.3
    if estimator is None:
        estimator = lgb.LGBMRegressor(n_estimators=30, min_child_samples=5, verbose=-1)
    features = ["a", "b", "c"]
    model = GlobalModel(estimator, features, list(categorical), ["shop", "region"])
    if categorical:
        frame = pd.DataFrame(X, columns=features)
        frame["c"] = np.where(X[:, 2] > 0, "hi", "lo")
        return model.fit(frame, y, [shops, regions]), X, [shops, regions]
    return model.fit(X, y, [shops, regions]), X, [shops, regions]


def by_frame(model: GlobalModel, X: Any, keys: list[Any]) -> np.ndarray:
    """What the model predicted before the shortcut: its estimator on the pandas frame."""
    return np.asarray(model.estimator.predict(model.frame(X, keys)))


def test_the_matrix_gives_the_frames_bits_for_every_row_and_an_unseen_key() -> None:
    model, X, keys = fitted()
    rows = X[:50]
    per_row = [keys[0][:50].copy(), keys[1][:50]]
    per_row[0][3] = "never-seen"  # a key the model never saw: a missing category
    fast = booster_predict(model, rows, per_row)
    assert fast is not None
    assert np.array_equal(fast, by_frame(model, rows, per_row))
    assert np.array_equal(model.predict(rows, per_row), fast)
    one_key = [["s03"], [2]]  # one partition's key, for every row
    assert np.array_equal(model.predict(rows, one_key), by_frame(model, rows, one_key))


def test_a_bound_partition_and_a_frame_input_predict_the_same_bits() -> None:
    model, X, _ = fitted()
    bound = KeyBound(model, {"shop": "s05", "region": 1})
    assert np.array_equal(bound.predict(X[:1]), by_frame(model, X[:1], [["s05"], [1]]))
    frame = pd.DataFrame(X[:7], columns=["a", "b", "c"])
    assert booster_predict(model, frame, [["s05"], [1]]) is not None
    assert np.array_equal(bound.predict(frame), by_frame(model, X[:7], [["s05"], [1]]))


def test_a_stored_model_still_takes_the_shortcut() -> None:
    model, X, keys = fitted()  # pickle: skops does not store LightGBM (manymodels.serialization)
    loaded = deserialize(serialize(model))
    assert booster_predict(loaded, X[:20], [k[:20] for k in keys]) is not None
    assert np.array_equal(
        loaded.predict(X[:20], [k[:20] for k in keys]),
        model.predict(X[:20], [k[:20] for k in keys]),
    )


def test_what_it_cannot_vouch_for_goes_the_frames_way() -> None:
    model, X, keys = fitted()
    assert booster_predict(model, X[:3], [["s01", float("nan"), "s02"], keys[1][:3]]) is None

    early = lgb.LGBMRegressor(n_estimators=30, verbose=-1, pred_early_stop=True)
    with_param, X, keys = fitted(early)
    assert booster_predict(with_param, X[:5], [k[:5] for k in keys]) is None

    def custom(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = 1 / (1 + np.exp(-y_pred))
        return p - y_true, p * (1 - p)

    classifier = lgb.LGBMClassifier(n_estimators=10, verbose=-1, objective=custom)
    rng = np.random.default_rng(1)
    clf = GlobalModel(classifier, ["a", "b", "c"], [], ["shop", "region"])
    clf.fit(X, rng.integers(0, 2, len(X)), keys)  # raw scores, with a warning: the frame's way
    assert booster_predict(clf, X[:5], [k[:5] for k in keys]) is None
    assert booster_proba(clf, X[:5], [k[:5] for k in keys]) is None

    categorical, Xc, keys = fitted(categorical=("c",))  # categories given as numbers
    assert booster_predict(categorical, Xc[:5], [k[:5] for k in keys]) is None


def test_categorical_features_give_the_frames_bits_for_known_unseen_and_missing_values() -> None:
    model, X, keys = fitted(categorical=("c",))
    assert model.categories_["c"] == ["hi", "lo"]
    frame = pd.DataFrame(X[:60], columns=["a", "b", "c"])
    frame["c"] = pd.Series(np.where(X[:60, 2] > 0, "hi", "lo"), dtype=object)
    frame.loc[[3, 9, 11], "c"] = ["mid", None, float("nan")]  # never seen; missing twice
    per_row = [k[:60] for k in keys]
    fast = booster_predict(model, frame, per_row)
    assert fast is not None
    assert np.array_equal(fast, by_frame(model, frame, per_row))
    assert np.array_equal(model.predict(frame, per_row), fast)
    shuffled = frame[["c", "b", "a"]]  # columns in another order, read by name
    assert np.array_equal(booster_predict(model, shuffled, per_row), fast)
    text = frame.astype({"c": "string"})  # pandas' own text type, its missing values NaN
    assert np.array_equal(booster_predict(model, text, per_row), by_frame(model, text, per_row))
    hi, lo = (booster_predict(model, frame.assign(c=c), per_row) for c in ("hi", "lo"))
    assert not np.array_equal(hi, lo)  # the model splits on the category: its codes count
    bound = KeyBound(model, {"shop": "s05", "region": 1})
    assert np.array_equal(bound.predict(frame), by_frame(model, frame, [["s05"], [1]]))


def test_categorical_features_a_frame_cannot_serve_go_the_frames_way() -> None:
    model, X, keys = fitted(categorical=("c",))
    frame = pd.DataFrame(X[:5], columns=["a", "b", "c"]).assign(c="hi")
    few = [k[:5] for k in keys]
    listed = frame.assign(c=pd.Series([["hi"], "lo", "hi", "lo", "hi"], dtype=object))
    assert booster_predict(model, listed, few) is None  # a value that cannot be looked up
    assert booster_predict(model, frame.drop(columns="c"), few) is None
    with pytest.raises(KeyError):  # the frame's own refusal of a missing column
        model.predict(frame.drop(columns="c"), few)


def test_a_scikit_learn_global_model_is_untouched() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    model, X, keys = fitted(HistGradientBoostingRegressor(max_iter=10))
    assert booster_predict(model, X[:5], [k[:5] for k in keys]) is None
    assert np.array_equal(
        model.predict(X[:5], [k[:5] for k in keys]), by_frame(model, X[:5], [k[:5] for k in keys])
    )


def test_a_refit_after_a_predict_codes_keys_by_the_new_categories() -> None:
    model, X, keys = fitted()
    model.predict(X[:5], [k[:5] for k in keys])  # the first fit's code tables, cached
    rng = np.random.default_rng(3)
    shops = rng.choice(["t1", "t2", *SHOPS[:3]], len(X))  # other shops, other codes
    model.fit(X, X[:, 0] * 3 + (shops == "t1") * 10, [shops, keys[1]])
    again = [["t1"] * 5, keys[1][:5]]
    assert np.array_equal(model.predict(X[:5], again), by_frame(model, X[:5], again))


def test_categories_the_booster_does_not_know_go_the_frames_way() -> None:
    model, X, keys = fitted()
    model.categories_ = {**model.categories_, "shop": list(reversed(model.categories_["shop"]))}
    assert booster_predict(model, X[:5], [k[:5] for k in keys]) is None
    assert np.array_equal(
        model.predict(X[:5], [k[:5] for k in keys]), by_frame(model, X[:5], [k[:5] for k in keys])
    )


def test_frames_of_text_no_rows_or_keys_of_another_length_are_the_frames_to_refuse() -> None:
    model, X, keys = fitted()
    text = pd.DataFrame(X[:3], columns=["a", "b", "c"]).astype({"a": str})
    assert booster_predict(model, text, [k[:3] for k in keys]) is None
    with pytest.raises(ValueError):  # LightGBM's own refusal of a text column
        model.predict(text, [k[:3] for k in keys])
    assert booster_predict(model, X[:0], [[], []]) is None
    with pytest.raises(ValueError):
        model.predict(X[:0], [[], []])
    assert booster_predict(model, X[:4], [k[:2] for k in keys]) is None
    with pytest.raises(ValueError):
        model.predict(X[:4], [k[:2] for k in keys])


def test_many_rows_use_the_threads_the_estimator_was_given() -> None:
    one = lgb.LGBMRegressor(n_jobs=1)
    assert threads(one, 10) == {"num_threads": 1}
    assert threads(one, SMALL) == {"num_threads": 1}
    assert threads(lgb.LGBMRegressor(n_jobs=3), SMALL) == {"num_threads": 3}
    assert threads(lgb.LGBMRegressor(n_jobs=1, num_threads=2), SMALL) == {"num_threads": 2}
    assert threads(lgb.LGBMRegressor(n_jobs=-1), SMALL) == {}  # LightGBM's own default
    model, X, keys = fitted(lgb.LGBMRegressor(n_estimators=20, n_jobs=1, verbose=-1), n=SMALL)
    assert np.array_equal(model.predict(X, keys), by_frame(model, X, keys))


@pytest.mark.parametrize("classes", [["no", "yes"], ["a", "b", "c"]])
def test_a_classifier_gives_the_frames_labels_and_probabilities(classes: list[str]) -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(600, 3))
    shops = rng.choice(SHOPS, len(X))
    labels = np.array(classes)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1) * (len(classes) > 2)]
    estimator = lgb.LGBMClassifier(n_estimators=20, min_child_samples=5, verbose=-1)
    model = GlobalModel(estimator, ["a", "b", "c"], [], ["shop"]).fit(X, labels, [shops])
    rows, keys = X[:40], [shops[:40]]
    frame = model.frame(rows, keys)
    proba = booster_proba(model, rows, keys)
    assert proba is not None and proba.shape == (40, len(classes))
    assert np.array_equal(proba, np.asarray(estimator.predict_proba(frame)))
    predicted = booster_predict(model, rows, keys)
    assert predicted is not None
    assert np.array_equal(predicted, np.asarray(estimator.predict(frame)))
    assert set(predicted) <= set(classes)
    bound = KeyBound(model, {"shop": "s02"})
    assert np.array_equal(bound.predict(rows), estimator.predict(model.frame(rows, [["s02"]])))


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(pd.date_range("2026-01-01", periods=4)),
        pd.Series([1 + 2j, 2.0, 3.0, 4.0]),
        pd.Series(["1.5", "2", "3", "4"], dtype=object),
    ],
    ids=["dates", "complex", "numbers as text"],
)
def test_columns_lightgbm_refuses_are_refused_as_before(column: pd.Series) -> None:
    model, X, keys = fitted()
    frame = pd.DataFrame(X[:4], columns=["a", "b", "c"]).assign(a=column.to_numpy())
    assert booster_predict(model, frame, [k[:4] for k in keys]) is None
    with pytest.raises((ValueError, TypeError)):  # LightGBM's own refusal, as before
        model.predict(frame, [k[:4] for k in keys])


def test_nullable_numbers_with_a_missing_value_give_the_frames_bits() -> None:
    model, X, keys = fitted()
    frame = pd.DataFrame(X[:4], columns=["a", "b", "c"]).astype("Float64")
    frame.loc[1, "b"] = pd.NA
    fast = booster_predict(model, frame, [k[:4] for k in keys])
    assert fast is not None
    assert np.array_equal(fast, by_frame(model, frame, [k[:4] for k in keys]))


class LGBMRegressor(lgb.LGBMRegressor):  # type: ignore[misc]
    """A user's subclass with LightGBM's name: its own predict must be the one that answers."""

    def predict(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        return np.clip(super().predict(X, *args, **kwargs), 0, None)


def test_a_subclass_predicts_with_its_own_predict() -> None:
    model, X, keys = fitted(LGBMRegressor(n_estimators=20, verbose=-1))
    assert booster_predict(model, X[:50], [k[:50] for k in keys]) is None
    got = model.predict(X[:50], [k[:50] for k in keys])
    assert got.min() >= 0 and np.array_equal(got, by_frame(model, X[:50], [k[:50] for k in keys]))


class _RaisingEq:
    """A value whose hash collides with a category's and whose ``==`` raises: pandas' lookup
    takes it for no match, a dictionary lets the error out."""

    def __hash__(self) -> int:
        return hash(1)

    def __eq__(self, other: object) -> bool:
        raise ValueError("cannot compare")


def test_values_a_dictionary_would_match_otherwise_than_pandas_go_the_frames_way() -> None:
    rng = np.random.default_rng(0)
    n = 600
    codes = rng.integers(0, 3, n)
    X = pd.DataFrame({"a": rng.normal(size=n), "c": pd.Series(codes.tolist(), dtype=object)})
    estimator = lgb.LGBMRegressor(
        n_estimators=20, min_child_samples=3, min_data_per_group=2, verbose=-1
    )
    model = GlobalModel(estimator, ["a", "c"], ["c"], ["shop"])
    model.fit(X, X["a"] + 2.0 * codes, [rng.choice(["s0", "s1"], n)])
    keys = [["s0"]]
    for odd in (
        [np.timedelta64(0, "s"), np.timedelta64(1, "s"), np.timedelta64(2, "s")],  # == 0, 1, 2
        [np.timedelta64(0), np.timedelta64(1), np.timedelta64(2)],  # unhashable
        [_RaisingEq(), 1, 2],
    ):
        rows = pd.DataFrame({"a": [0.5] * 3, "c": pd.Series(odd, dtype=object)})
        assert booster_predict(model, rows, keys) is None
        assert np.array_equal(model.predict(rows, keys), by_frame(model, rows, keys))
    plain = pd.DataFrame({"a": [0.5] * 4, "c": pd.Series([0, 1, 2, None], dtype=object)})
    fast = booster_predict(model, plain, keys)
    assert fast is not None and np.array_equal(fast, by_frame(model, plain, keys))


@pytest.mark.parametrize(
    "values",
    [
        [3, 1, 2, 1, 3],
        [np.int64(7), np.int64(2), np.int64(7)],
        ["b", "a", "c", "a"],
        [2.5, -1.0, 2.5],
        [True, False, True],
        [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-01")],
        ["b", None, "a", None],
        ["x", 1, "y", 1],
    ],
)
def test_a_global_models_key_column_is_pandas_categorical_of_its_values(values: list) -> None:
    """A global model's key columns are coded from the key values by hashing once (``frame``
    spent ~10 % of a LightGBM fit in pandas' inference over a list of every row): the
    categories, their dtype and order, and every row's code are ``pd.Categorical``'s."""
    from manymodels.training.global_fit import _categorical

    column = np.empty(len(values), dtype=object)
    column[:] = values
    got, want = _categorical(column, None), pd.Categorical(values)
    pd.testing.assert_index_equal(got.categories, want.categories)
    np.testing.assert_array_equal(got.codes, want.codes)
