"""Tests for manymodels.spec_params: a grid written with numpy (a notebook's spec) is a grid
of plain values, hashed like the same grid written in TOML; a value a spec cannot record is
refused while the spec is validated, before ``train`` makes a registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import RIDGE, linear_frame, spec_dict

from manymodels.candidates import grid
from manymodels.exceptions import SpecError
from manymodels.pipeline import train
from manymodels.spec import Spec

FOREST = "sklearn.ensemble.RandomForestRegressor"
MLP = "sklearn.neural_network.MLPRegressor"


def candidate(estimator: str, params: dict[str, Any]) -> Spec:
    return Spec.from_dict(spec_dict(candidates=[{"estimator": estimator, "params": params}]))


@pytest.mark.parametrize(
    ("estimator", "numpy", "plain"),
    [
        (FOREST, {"max_depth": list(np.arange(2, 5))}, {"max_depth": [2, 3, 4]}),
        (FOREST, {"max_depth": np.arange(2, 5)}, {"max_depth": [2, 3, 4]}),  # an array: a grid
        (RIDGE, {"alpha": np.logspace(-2, 2, 5)}, {"alpha": [0.01, 0.1, 1.0, 10.0, 100.0]}),
        (RIDGE, {"alpha": np.float64(0.5)}, {"alpha": [0.5]}),
        (RIDGE, {"alpha": np.array(0.5)}, {"alpha": [0.5]}),  # 0-D: one value
        (RIDGE, {"fit_intercept": [np.True_, np.False_]}, {"fit_intercept": [True, False]}),
        (MLP, {"hidden_layer_sizes": (np.int64(100),)}, {"hidden_layer_sizes": [(100,)]}),
        (
            MLP,
            {"hidden_layer_sizes": [(100,), (np.int64(50), 50)]},
            {"hidden_layer_sizes": [(100,), (50, 50)]},  # a tuple stays one value
        ),
    ],
)
def test_a_numpy_grid_is_a_grid_of_plain_values(
    estimator: str, numpy: dict[str, Any], plain: dict[str, Any]
) -> None:
    spec = candidate(estimator, numpy)
    assert spec.candidates[0].params == plain
    for point in grid(spec.candidates[0]):
        for value in point.values():
            for v in value if isinstance(value, tuple) else [value]:
                assert type(v) in (int, float, bool)
    assert spec.spec_hash == candidate(estimator, plain).spec_hash


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"alpha": np.ones((2, 2))}, "params.alpha is a 2-D array; give a list"),
        ({"alpha": np.array([])}, "params.alpha is an empty list"),
        ({"alpha": [object()]}, "params.alpha: a value of type object cannot be recorded"),
    ],
)
def test_a_grid_a_spec_cannot_record_is_refused_before_anything_is_made(
    tmp_path: Path, params: dict[str, Any], message: str
) -> None:
    spec = spec_dict(candidates=[{"estimator": RIDGE, "params": params}])
    with pytest.raises(SpecError, match=message):
        Spec.from_dict(spec)
    with pytest.raises(SpecError, match=message):
        train(spec, linear_frame(2), tmp_path / "reg", backend="local")
    assert not (tmp_path / "reg").exists()


def test_a_run_trains_a_numpy_grid(tmp_path: Path) -> None:
    spec = spec_dict(candidates=[{"estimator": RIDGE, "params": {"alpha": np.logspace(-1, 1, 3)}}])
    summary = train(spec, linear_frame(2), tmp_path / "reg", backend="local")
    assert summary.run.n_trained == 2
    assert summary.run.spec_hash == candidate(RIDGE, {"alpha": [0.1, 1.0, 10.0]}).spec_hash
