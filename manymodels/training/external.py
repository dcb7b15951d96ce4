"""A global model as one partition sees it (``External``): its stored artifact, and its
predictions of the partition's validation rows, which selection scores like a local
candidate's fold fits (``Precomputed``) — the model itself is never loaded to be scored."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

if TYPE_CHECKING:
    from manymodels.training.global_fit import KeyBound


class Precomputed(BaseEstimator):
    """A fitted model's predictions of one partition's rows, scored like an estimator.

    ``full`` is aligned to the partition's rows; ``rows`` are the rows this object answers
    for (a fold's validation rows): ``predict(X)`` needs ``len(X) == len(rows)``."""

    def __init__(self, full: np.ndarray, rows: np.ndarray, classes: Any = None) -> None:
        self.full = full
        self.rows = rows
        self.classes = classes
        if classes is not None:
            self.classes_ = np.asarray(classes)

    def at(self, rows: np.ndarray) -> Precomputed:
        return type(self)(self.full, np.asarray(rows), self.classes)

    def _values(self, X: Any) -> np.ndarray:
        if len(X) != len(self.rows):
            raise ValueError(f"precomputed for {len(self.rows)} row(s), asked {len(X)}")
        return np.asarray(self.full[self.rows])

    def predict(self, X: Any) -> np.ndarray:
        values = self._values(X)
        if self.classes is None:
            return values
        return np.asarray(self.classes_)[np.argmax(values, axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._values(X)


class PrecomputedRegressor(RegressorMixin, Precomputed):
    pass


class PrecomputedClassifier(ClassifierMixin, Precomputed):
    pass


@dataclass(frozen=True)
class External:
    """A global grid point as one partition sees it: its artifact and its predictions of the
    partition's (kept) rows, NaN outside the validation rows."""

    label: str
    estimator: str
    params: dict[str, Any]
    sha256: str
    size: int
    pred: np.ndarray
    transform: str  # the target transform it learnt: scored only on that transform's view
    load: Callable[[], KeyBound] | None = None  # in a chunk: the model, bound to the key
    unscored: str | None = None  # why rows have no prediction (``GlobalFit.unscored``)
    own: Mapping[int, np.ndarray] = field(default_factory=dict)
    """Per validation fit, its predictions of the partition's own training rows
    (``GlobalFit.own_pred``): the prior-shifted option's reference rates."""

    def bound(self) -> KeyBound:
        """The global model itself, bound to this partition's key (a ``top2`` member)."""
        if self.load is None:
            raise ValueError(f"global model {self.label} cannot be loaded here")
        return self.load()

    def scorer(self, rows: np.ndarray, classes: Any = None) -> Precomputed:
        if classes is None:
            return PrecomputedRegressor(self.pred, rows)
        return PrecomputedClassifier(self.pred, rows, classes)
