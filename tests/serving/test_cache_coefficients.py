"""Linear models the model cache evicts keep answering from their coefficients
(``serving.cache.CoefficientCache``): the same bits as the full model, no load, and never a
way around the artifact checks or the registry's trust policy."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from routerkit import feature_rows, open_client
from sklearn.linear_model import Ridge
from sklearn.tree import DecisionTreeRegressor

from manymodels.feature_schema import History
from manymodels.partition import FALLBACK_KEY, decode_key
from manymodels.registry import Registry
from serving.cache import CoefficientCache
from serving.served import coefficients_only, served_model
from serving.settings import Settings


def _keys(service: Any) -> list[str]:
    return sorted(k for k in service.aliases.partitions() if k != FALLBACK_KEY)


def _predict(client: Any, key: str, rows: list[dict[str, Any]]) -> Any:
    return client.post(f"/v1/partitions/{key}/predict", json={"rows": rows})


def test_evicted_linear_models_answer_from_their_coefficients_bit_for_bit(
    registry_path: Path,
) -> None:
    rows = feature_rows(5, offset=0.3)
    with open_client(Settings(registry=registry_path, cache_size=1)) as client:
        service = client.app.state.service
        keys = _keys(service)
        for key in keys:  # each load evicts the one before: all but the last are coefficients
            assert _predict(client, key, rows).status_code == 200
        loads = service.cache_stats().loads
        assert len(service.coefficients) == len(keys) - 1
        with Registry.open(registry_path) as reg:  # what the registry's own models predict
            models = {key: reg.load_model(key).model for key in keys}
        for key in keys:
            r = _predict(client, key, rows)
            assert r.status_code == 200, r.text
            assert r.json()["predictions"] == _truth(models[key], rows)  # same bits
        batch = [
            {**dict(zip(("store", "brand"), _values(k), strict=True)), **rows[0]} for k in keys
        ]
        r = client.post("/v1/predict", json={"rows": batch})
        assert r.status_code == 200, r.text
        for key, answer in zip(keys, r.json()["predictions"], strict=True):
            assert answer["prediction"] == _truth(models[key], rows[:1])[0]
        assert service.cache_stats().loads == loads  # nothing was read, verified or unpickled
        assert service.coefficients.hits >= 2 * (len(keys) - 1)


def _truth(model: Any, rows: list[dict[str, Any]]) -> list[float]:
    X = np.array([[r["price"], r["deal"], r["feat"]] for r in rows], dtype=np.float64)
    return [float(v) for v in model.predict(X)]


def _values(key: str) -> list[Any]:
    return list(decode_key(key).values())


def test_rows_coefficients_cannot_score_load_the_full_model_which_answers_as_ever(
    registry_path: Path,
) -> None:
    with open_client(Settings(registry=registry_path, cache_size=1)) as client:
        service = client.app.state.service
        first, second = _keys(service)[:2]
        _predict(client, first, feature_rows(1))
        _predict(client, second, feature_rows(1))  # first: coefficients only
        loads = service.cache_stats().loads
        r = _predict(client, first, [{"price": None, "deal": 1, "feat": 0}])
        assert r.status_code == 422, r.text  # scikit-learn's Ridge refuses a NaN
        assert "could not score the rows" in r.json()["detail"]
        assert service.cache_stats().loads == loads + 1  # the full model said so


def test_coefficients_go_when_the_registry_stops_trusting_their_format(
    registry_path: Path,
) -> None:
    with open_client(Settings(registry=registry_path, cache_size=1)) as client:
        service = client.app.state.service
        first, second = _keys(service)[:2]
        _predict(client, first, feature_rows(1))
        _predict(client, second, feature_rows(1))
        assert len(service.coefficients) == 1
        service.registry.set_trusted_formats(frozenset({"skops"}))
        assert service.follow_trust() == 2  # the cached model and the coefficients
        assert len(service.coefficients) == 0
        assert _predict(client, first, feature_rows(1)).status_code == 500


def test_the_coefficient_cache_is_a_bounded_lru() -> None:
    cache: CoefficientCache[str] = CoefficientCache(max_size=2)
    for i in range(3):
        cache.put(f"k{i}", 1, f"m{i}")
    assert cache.get("k0", 1) is None and len(cache) == 2
    assert cache.get("k1", 1) == "m1"  # now the most recent
    cache.put("k3", 1, "m3")
    assert cache.get("k2", 1) is None and cache.get("k1", 1) == "m1"
    assert cache.discard(lambda m: m == "m1") == 1
    off: CoefficientCache[str] = CoefficientCache(max_size=0)
    off.put("k", 1, "m")
    assert off.get("k", 1) is None


def test_only_affine_models_have_coefficients_and_equal_schemas_are_shared() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    base = {"features": ["a", "b", "c"], "input": "numpy", "task": "regression"}
    own = [  # each partition's history and monitoring profile are its own
        {**base, "history": {"key": {"k": k}}, "profile": {"rows": 30, "naive": float(k)}}
        for k in (1, 2)
    ]
    a = served_model(Ridge().fit(X, y), "k=1", 1, own[0])
    b = served_model(Ridge().fit(X, -y), "k=2", 1, own[1])
    slim_a, slim_b = coefficients_only(a), coefficients_only(b)
    assert slim_a is not None and slim_b is not None
    assert slim_a.model is None and slim_a.schema.history is None
    assert slim_a.schema.profile is None and slim_a.profile() is None
    assert a.schema.profile is None and a.profile() == own[0]["profile"]  # as text
    assert slim_a.schema is slim_b.schema
    assert slim_a.predict(X).tolist() == a.model.predict(X).tolist()
    tree = served_model(DecisionTreeRegressor().fit(X, y), "k=3", 1, base)
    assert coefficients_only(tree) is None
    assert math.isfinite(float(slim_b.predict(X[:1])[0]))


def test_a_version_deriving_lags_keeps_the_history_they_are_computed_from() -> None:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(30, 2)), rng.normal(size=30)
    schema = {
        "features": ["a", "y_lag1"],
        "input": "numpy",
        "task": "regression",
        "target": "y",
        "time_column": "t",
        "forecast": {"frequency": 1, "lags": {"y_lag1": 1}, "calendar": {}},
        "history": {"key": {"k": 1}, "time": 29, "target": [0.5], "features": {}},
    }
    slim = coefficients_only(served_model(Ridge().fit(X, y), "k=1", 1, schema))
    assert slim is not None and slim.schema.history == History.parse(schema["history"])
