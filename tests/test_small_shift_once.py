"""A partition below ``min_rows`` served the run's global classifier shifted to its rates
(``training.small.few_rows_constant``): the smoothed constant behind the shift is fitted once,
and the shift is exactly the one ``Shifted.model`` computes when it fits the constant itself."""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from manymodels.candidates import ConstantProbabilityClassifier
from manymodels.classes import class_prior
from manymodels.prior_shift import PriorShifted
from manymodels.spec import Spec
from manymodels.training.external import External
from manymodels.training.global_fit import GlobalModel, bound
from manymodels.training.shifted import Shifted
from manymodels.training.small import few_rows_constant

SHA = "d" * 64
CLASSES = np.array(["a", "b", "c"])


def table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three users' rows over three classes; ``offsets`` bound each user's rows (so the prior
    has its estimated per-class strengths, the smoothing a real run uses)."""
    rng = np.random.default_rng(3)
    X = rng.normal(0, 1, (90, 1))
    y = np.where(X[:, 0] > 0.4, "c", np.where(X[:, 0] < -0.6, "a", "b"))
    return X, y, np.array([0, 30, 60, 90])


def spec() -> Spec:
    return Spec.model_validate({
        "name": "small", "task": "classification", "partition_by": ["user"],
        "target": "label", "features": ["x"], "metric": "neg_log_loss", "min_rows": 8,
        "fallback": {"enabled": False}, "selection": {"prior_shifted": True},
        "candidates": [
            {"estimator": "sklearn.linear_model.LogisticRegression", "scope": "global"},
        ],
    })  # fmt: skip


def external(glob: GlobalModel, rows: int) -> External:
    pred = np.full((rows, len(CLASSES)), np.nan)  # it was fitted on every one of them
    return External(
        "LogisticRegression (global)", "sklearn.linear_model.LogisticRegression", {}, SHA, 1,
        pred, "none", load=lambda: bound(glob, {"user": "u9"}, SHA),
    )  # fmt: skip


def constant_fits(call: Any) -> int:
    """How many times ``ConstantProbabilityClassifier.fit`` runs during ``call()``, counted by
    the interpreter's profiler (nothing of ours replaced)."""
    code = ConstantProbabilityClassifier.fit.__code__
    count = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event == "call" and frame.f_code is code:
            count += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(previous)
    return count


@pytest.mark.parametrize("rows", [["c", "c", "b"], ["a"], ["b", "a", "c", "c", "c", "a", "b"]])
def test_the_constant_is_fitted_once_and_the_shift_is_the_one_shifted_computes(
    rows: list[str],
) -> None:
    X_table, y_table, offsets = table()
    glob = GlobalModel(LogisticRegression(), features=["x"]).fit(X_table, y_table)
    prior = class_prior(y_table, offsets)
    assert prior.strengths is not None  # per-class smoothing: the arithmetic most to get wrong
    the_spec, y = spec(), np.array(rows)
    X = np.linspace(-1, 1, len(y)).reshape(-1, 1)
    ext = external(glob, len(y))
    out: list[Any] = []
    fits = constant_fits(lambda: out.append(few_rows_constant(X, y, the_spec, prior, [ext])))
    fitted = out[0]
    assert fits == 1  # the old code fitted it a second time inside ``Shifted.shift``
    assert isinstance(fitted.model, PriorShifted)
    # what the served shift is when Shifted fits the constant itself (``own`` not given)
    expected = list(Shifted(ext, the_spec, prior).model(X, y).shift)
    assert fitted.model.shift == expected  # exactly: the same floats, not merely close
    assert fitted.params["shift"] == expected
    assert fitted.validation["too_few_rows"]["served"] == "prior_shifted"
