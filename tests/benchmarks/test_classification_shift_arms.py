"""``benchmarks/classification.py --variants shift``: the question whether ``[selection]
prior_shifted`` can be on by default is answered by two arms that differ in that option alone
(a global LogisticRegression holding the key, as a user writes it), beside the local run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def classification() -> Any:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import classification as module
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_the_shift_arms_differ_in_prior_shifted_alone(classification: Any) -> None:
    base = classification.spec()
    local, off, on = (classification._variant_spec(base, v) for v in classification.SHIFT_VARIANTS)
    assert local == base
    assert off["selection"] == {"prior_shifted": False}
    assert on["selection"] == {"prior_shifted": True}
    assert {**off, "selection": None} == {**on, "selection": None}
    (added,) = [c for c in on["candidates"] if c not in base["candidates"]]
    assert added["scope"] == "global"
    assert added["estimator"] == "sklearn.linear_model.LogisticRegression"
    assert "features" not in added  # the key stays a feature, as global candidates hold it


@pytest.mark.slow  # two in-process runs of 60 users with a global model: ~2-4 s busy
def test_only_the_shift_on_arm_chooses_the_shifted_model(
    classification: Any, tmp_path: Path
) -> None:
    data = classification.clicks(60, "roc_auc")
    off, on = (
        classification.measure(data, "local", tmp_path, v)
        for v in classification.SHIFT_VARIANTS[1:]
    )
    assert "prior_shifted" not in off["chose"]
    assert on["chose"].get("prior_shifted", 0) > 0
    assert off["chose"].get("global", 0) > 0
