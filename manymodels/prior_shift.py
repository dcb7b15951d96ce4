"""A pooled classifier shifted to one partition's class rates (Saerens, Latinne & Decaestecker
2002, "Adjusting the outputs of a classifier to new a priori probabilities").

A global classifier answers ``p(c | x)`` under the rates ``r_c`` it assumes for a partition:
its own mean prediction over the partition's rows (``training.shifted``) — about the table's
rates for a pooled model, the partition's own for one that holds the key. A partition whose
smoothed rates are ``q_c`` (its constant: ``ConstantProbabilityClassifier``) gets
``p(c | x) · q_c / r_c``, renormalised per row: Bayes' rule with the likelihoods ``p(x | c)``
kept and the prior replaced. Only the factors are stored, so a version shifted by the table's
rates (before 2026-12-08) loads and serves as it was stored. It keeps what the pooled model
learnt from the features (which a constant cannot use) and what the partition's own rows say
of its rates (which a pooled model ignores). The smoothed constant is the special case of an
uninformative pooled model (``p(c | x) = r_c`` for every ``x``): shifted, it answers ``q_c``.

``PriorShifted`` holds the run's global model as a member, so a stored one names that model
by sha256 (``manymodels.global_members``) rather than holding a copy of it: one global model
stored and loaded once, however many partitions are shifted from it.

This module imports nothing heavy beyond scikit-learn's base: readers load artifacts through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class PriorShifted(ClassifierMixin, BaseEstimator):
    """``member``'s probabilities times ``shift`` (one factor per class of ``classes``, the
    table's classes: ``q_c / r_c``), renormalised per row; ``predict`` the most probable class.

    ``member`` is a fitted classifier with ``classes_`` (a global model bound to the
    partition's key); a class it does not answer gets probability 0 before the shift. Plain
    attributes (a member, two lists), so skops stores it as data
    (``serialization.TRUSTED_TYPES``)."""

    def __init__(
        self, member: Any = None, shift: Sequence[float] = (), classes: Sequence[Any] = ()
    ) -> None:
        self.member = member
        self.shift = shift
        self.classes = classes

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes)

    def fit(self, X: Any, y: Any) -> PriorShifted:
        """Nothing to fit: the member is the run's global model, fitted once for every
        partition, and the shift was computed from the partition's rows when it was built
        (``training.shifted``). Here so that a refit of the chosen model leaves it as it is."""
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return self.member is not None and len(self.shift) == len(self.classes) > 0

    def with_member(self, member: Any) -> PriorShifted:
        """The same shift over another form of the member (stored by reference, or linked)."""
        return type(self)(member, list(self.shift), list(self.classes))

    def predict_proba(self, X: Any) -> np.ndarray:
        classes = self.classes_
        raw = np.asarray(self.member.predict_proba(X), dtype=np.float64)
        proba = np.zeros((raw.shape[0], len(classes)))
        for j, c in enumerate(np.asarray(self.member.classes_)):
            hit = np.flatnonzero(classes == c)
            if len(hit):
                proba[:, hit[0]] = raw[:, j]
        proba *= np.asarray(self.shift, dtype=np.float64)
        total = proba.sum(axis=1, keepdims=True)
        return np.divide(proba, total, out=np.full_like(proba, 1 / len(classes)), where=total > 0)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def shift_factors(own: np.ndarray, rates: np.ndarray) -> list[float]:
    """``q_c / r_c``: a partition's smoothed rates over the model's for it (``rates``). A class
    the model never gives has ``r_c = 0`` and a factor ``q_c / 1e-300``: finite, and it
    multiplies probabilities of 0, so the class keeps 0 (the floor a degenerate table's rate
    always had)."""
    floor = np.maximum(np.asarray(rates, dtype=np.float64), 1e-300)
    ratio = np.asarray(own, dtype=np.float64) / floor
    return [float(v) for v in ratio]
