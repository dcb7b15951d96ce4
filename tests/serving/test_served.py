"""serving.served: what a cache miss loads, and the affine shortcut for linear models."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from manymodels.candidates import LastValueRegressor
from manymodels.exceptions import ArtifactCorrupted, PartitionNotFound, VersionNotFound
from manymodels.feature_schema import FeatureSchema
from manymodels.registry import Registry
from serving.served import (
    COEF,
    PACKED,
    ServedModel,
    affine_of,
    coefficients_only,
    linear_regressors,
    load_served,
    served_model,
)

RNG = np.random.default_rng(7)
X_TRAIN = RNG.normal(size=(60, 4)) * [1.0, 10.0, 0.1, 3.0] + [0.0, 50.0, -2.0, 1.0]
Y_TRAIN = X_TRAIN @ [1.5, -0.2, 4.0, 0.3] + RNG.normal(size=60)
ROWS_1 = RNG.normal(size=(1, 4))
ROWS_100 = RNG.normal(size=(100, 4)) * 5


def _fitted(estimator: Any, y: np.ndarray = Y_TRAIN) -> Any:
    return estimator.fit(X_TRAIN, y)


LINEAR = sorted(linear_regressors(), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", LINEAR, ids=lambda c: c.__name__)
@pytest.mark.parametrize("scaled", [False, True], ids=["bare", "scaled"])
def test_the_shortcut_gives_scikit_learns_predictions_bit_for_bit(cls: type, scaled: bool) -> None:
    model = _fitted(make_pipeline(StandardScaler(), cls()) if scaled else cls())
    served = served_model(model, "k=1", 1, {})
    assert served.affine is not None
    for X in (ROWS_1, ROWS_100):
        assert np.array_equal(served.predict(X), model.predict(X))


@pytest.mark.parametrize("with_mean,with_std", [(False, True), (True, False), (False, False)])
def test_a_partial_scaler_is_followed_exactly(with_mean: bool, with_std: bool) -> None:
    model = _fitted(make_pipeline(StandardScaler(with_mean=with_mean, with_std=with_std), Ridge()))
    served = served_model(model, "k=1", 1, {})
    assert served.affine is not None
    assert np.array_equal(served.predict(ROWS_100), model.predict(ROWS_100))


@pytest.mark.parametrize("last", [3.25, -7.0, 0.0, 1e300])
def test_the_naive_model_is_an_affine_map_of_zero_weights_bit_for_bit(last: float) -> None:
    """A naive partition stacks with linear ones in a batch and keeps its coefficients when
    evicted: ``x · 0 + last`` gives ``last`` to the bit, whatever the (finite) row."""
    schema = {"features": ["a", "b", "c", "d"], "input": "numpy"}
    model = LastValueRegressor().fit(X_TRAIN, np.append(Y_TRAIN, last))
    served = served_model(model, "k=1", 1, schema)
    assert served.affine is not None and served.plain is not None
    assert served.plain[1] == served.affine[PACKED]
    for X in (ROWS_1, ROWS_100, -ROWS_100, ROWS_100 * 1e200):
        got, want = served.predict(X), model.predict(X)
        assert got.tobytes() == want.tobytes()  # the sign of a zero too


def test_a_naive_last_value_of_minus_zero_is_left_to_its_predict() -> None:
    model = LastValueRegressor().fit(X_TRAIN, np.append(Y_TRAIN, -0.0))
    assert (
        affine_of(model, 4) is None
        and affine_of(LastValueRegressor().fit(X_TRAIN, Y_TRAIN)) is None
    )


def test_multi_output_ridge_is_followed_exactly() -> None:
    model = _fitted(Ridge(), np.column_stack([Y_TRAIN, -Y_TRAIN]))
    served = served_model(model, "k=1", 1, {})
    assert served.affine is not None and served.affine[COEF].ndim == 2
    assert np.array_equal(served.predict(ROWS_100), model.predict(ROWS_100))


class MyRidge(Ridge):
    def predict(self, X: Any) -> Any:
        return super().predict(X) + 1.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: _fitted(RandomForestRegressor(n_estimators=3, random_state=0)),
        lambda: _fitted(LogisticRegression(), (np.median(Y_TRAIN) < Y_TRAIN).astype(int)),
        lambda: _fitted(MyRidge()),  # a subclass may change predict: never assumed
        lambda: _fitted(make_pipeline(MinMaxScaler(), Ridge())),
        lambda: _fitted(make_pipeline(StandardScaler(), StandardScaler(), Ridge())),
    ],
    ids=["forest", "logistic", "subclass", "other-scaler", "three-steps"],
)
def test_anything_else_goes_through_its_own_predict(make: Callable[[], Any]) -> None:
    model = make()
    served = served_model(model, "k=1", 1, {})
    assert affine_of(model) is None and served.affine is None
    assert np.array_equal(served.predict(ROWS_100), model.predict(ROWS_100))


def test_input_scikit_learn_would_refuse_still_gets_its_error() -> None:
    model = _fitted(make_pipeline(StandardScaler(), Ridge()))
    served = served_model(model, "k=1", 1, {})
    with_nan = ROWS_1.copy()
    with_nan[0, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        served.predict(with_nan)
    with pytest.raises(ValueError, match="features"):
        served.predict(np.ones((2, 3)))


def test_load_served_reads_the_model_and_schema_of_that_version(registry_path: Path) -> None:
    with Registry.open(registry_path) as reg:
        key = next(p.key for p in reg.list_partitions() if p.key != "__fallback__")
        record = reg.get_version(key)
        served = load_served(reg, key, record.version)
        assert (served.key, served.version) == (key, record.version)
        schema = dict(record.feature_schema)
        profile = schema.pop("profile")  # kept as JSON text, out of the collector's way
        assert served.schema == FeatureSchema.parse(schema) and served.profile() == profile
        assert isinstance(served.profile_json, str)
        X = np.ones((2, len(record.feature_schema["features"])))
        assert np.array_equal(served.predict(X), reg.load_model(key).model.predict(X))


def test_load_served_names_what_is_missing(registry_path: Path) -> None:
    with Registry.open(registry_path) as reg:
        key = next(p.key for p in reg.list_partitions() if p.key != "__fallback__")
        with pytest.raises(VersionNotFound, match="no version 99"):
            load_served(reg, key, 99)
        with pytest.raises(PartitionNotFound):
            load_served(reg, "store=999,brand=nobody", 1)


def test_load_served_refuses_a_tampered_artifact(registry_path: Path) -> None:
    with Registry.open(registry_path) as reg:
        key = next(p.key for p in reg.list_partitions() if p.key != "__fallback__")
        record = reg.get_version(key)
        path = Path(reg.artifacts.url) / record.artifact_sha256[:2] / record.artifact_sha256[2:4]
        (path / record.artifact_sha256).write_bytes(b"not a model")
        with pytest.raises(ArtifactCorrupted):
            load_served(reg, key, record.version)


def test_equal_schema_parts_are_shared_between_partitions_and_history_is_not() -> None:
    """A full model's schema keeps its own history; its other lists and dicts are the ones an
    earlier load of an equal part kept (fewer objects for the collector); the content is the
    same, and the profile is kept as text."""
    base = {
        "features": ["a", "b", "c", "d"],
        "dtypes": {f: "float64" for f in "abcd"},
        "input": "numpy",
        "forecast": {"lags": {"y": [1, 2]}, "calendar": {}},
    }
    model = _fitted(Ridge())
    own = [{"key": {"k": k}, "target": [float(k)]} for k in (1, 2)]
    a = served_model(model, "k=1", 1, {**base, "history": own[0], "profile": {"rows": 3}})
    copy = json.loads(json.dumps(base))  # equal, not the same objects
    b = served_model(model, "k=2", 1, {**copy, "history": own[1]})
    for part in ("features", "dtypes", "forecast"):
        assert getattr(a.schema, part) is getattr(b.schema, part)
    assert a.schema.history is not None and b.schema.history is not None
    assert a.schema.history.key == {"k": 1} and b.schema.history.key == {"k": 2}
    assert a.schema == FeatureSchema.parse({**base, "history": own[0]})
    assert b.schema == FeatureSchema.parse({**base, "history": own[1]})
    assert a.profile() == {"rows": 3} and b.profile() is None
    other = served_model(model, "k=3", 1, {**base, "features": ["d", "c", "b", "a"]})
    assert other.schema.features == ["d", "c", "b", "a"]  # order is content


def test_what_a_plain_batch_reads_of_a_model_is_one_tuple_the_collector_stops_walking() -> None:
    """``ServedModel.plain`` is an exact tuple of untracked objects: once collections have
    seen it the collector no longer walks it, however many models the caches hold (one more slot per
    model doubled a full collection under cold load, and a named tuple would stay tracked)."""
    schema = {"features": ["a", "b", "c", "d"], "input": "numpy", "target": "units"}
    served = served_model(Ridge().fit(X_TRAIN, Y_TRAIN), "k=1", 3, schema)
    assert served.plain is not None and type(served.plain) is tuple
    layout, row, head = served.plain
    assert layout == served.layout and served.affine is not None and row == served.affine[PACKED]
    assert head.endswith(  # the column it predicts written once, at load
        '{"partition":"k=1","served_by":"k=1","version":3,"fallback":false,"target":"units",'
        '"prediction":'
    )
    gc.collect()  # untracks the layout's inner tuples, then, next time, the tuples holding them
    gc.collect()
    assert not gc.is_tracked(served.plain)
    slim = coefficients_only(served)
    assert slim is not None and slim.plain is served.plain  # an evicted model's entry shares it
    # 10 slots cost a full collection ~15 ms with 8,700 models held, 11 slots ~29 ms
    assert len(ServedModel.__slots__) <= 10
