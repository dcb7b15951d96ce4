"""A pooled classifier shifted to one partition's class rates (``manymodels.prior_shift``),
stored with the global model by reference (``manymodels.global_members``)."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from manymodels.candidates import ConstantProbabilityClassifier
from manymodels.global_members import GlobalMember, linked, member_names, stored_form
from manymodels.prior_shift import PriorShifted
from manymodels.training.global_fit import GlobalModel, bound

SHA = "c" * 64


def _global(estimator: Any) -> GlobalModel:
    """A pooled classifier over three classes (no key column: the key is not what is tested)."""
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (60, 1))
    y = np.where(X[:, 0] > 0.5, "c", np.where(X[:, 0] < -0.5, "a", "b"))
    return GlobalModel(estimator, features=["x"]).fit(X, y)


def test_the_probabilities_are_the_members_times_the_shift_renormalised() -> None:
    glob = _global(LogisticRegression())
    member = bound(glob, {"user": "u1"}, SHA)
    shift = [2.0, 0.5, 1.0]
    model = PriorShifted(member, shift, ["a", "b", "c"])
    X = np.array([[-1.0], [0.0], [1.0]])
    raw = member.predict_proba(X) * shift
    assert np.allclose(model.predict_proba(X), raw / raw.sum(axis=1, keepdims=True))
    assert list(model.predict(X)) == list(np.array(["a", "b", "c"])[raw.argmax(axis=1)])
    assert model.fit(X, ["a", "b", "c"]) is model  # the member stays the run's fit


def test_an_uninformative_pooled_model_shifted_is_the_smoothed_constant() -> None:
    """``p(c|x) = r_c`` for every ``x``: shifted by ``q_c / r_c`` it answers ``q_c``, the
    constant a partition below ``min_rows`` is served."""
    glob = _global(DummyClassifier(strategy="prior"))
    rates = glob.predict_proba(np.zeros((1, 1)))[0]
    const = ConstantProbabilityClassifier(["a", "b", "c"], rates.tolist(), [3.0, 0.5, 2.0])
    const.fit(None, np.array(["c", "c", "b"]))
    model = PriorShifted(bound(glob, {"user": "u1"}), const.proba_ / rates, ["a", "b", "c"])
    assert np.allclose(model.predict_proba(np.array([[-2.0], [2.0]])), [const.proba_] * 2)


def test_stored_form_names_the_global_model_and_linked_restores_it() -> None:
    glob = _global(LogisticRegression())
    fitted = PriorShifted(bound(glob, {"user": "u2"}, SHA), [1.5, 1.0, 0.2], ["a", "b", "c"])
    stored, names = stored_form(fitted)
    assert names == [SHA] and isinstance(stored.member, GlobalMember)
    assert stored.member.key == {"user": "u2"} and stored.shift == [1.5, 1.0, 0.2]
    data = pickle.dumps(stored)
    assert b"GlobalModel" not in data and b"LogisticRegression" not in data  # no copy
    loaded = pickle.loads(data)
    assert member_names(loaded) == [SHA]
    again = linked(loaded, {SHA: glob}.__getitem__)
    X = np.array([[-1.0], [1.0]])
    assert np.array_equal(again.predict_proba(X), fitted.predict_proba(X))
    unnamed = PriorShifted(bound(glob, {"user": "u2"}), [1.0] * 3, ["a", "b", "c"])
    assert stored_form(unnamed) == (unnamed, [])  # no sha256: kept whole


@pytest.mark.slow  # skops' import and its type checks: ~5-12 s on a busy machine
def test_skops_stores_and_loads_it_as_a_trusted_type() -> None:
    from manymodels.serialization import dumps, loads

    glob = _global(LogisticRegression())
    stored, _ = stored_form(PriorShifted(bound(glob, {"user": "u1"}, SHA), [1.0, 2.0, 3.0], "abc"))
    again = linked(loads(dumps(stored, "skops"), {"skops"}), {SHA: glob}.__getitem__)
    assert again.shift == [1.0, 2.0, 3.0] and again.member.model is glob
