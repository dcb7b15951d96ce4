"""A partition's validation folds, and how selection judges a fit on them.

Every option selection weighs — a local candidate's grid point, a global model, the naive
baseline, the top-2 mean — is scored the same way: fitted (or handed its fits) fold by fold,
each fit's predictions of its fold's rows judged in the target's units by the spec's metric,
and the mean taken. ``Folds`` holds what that needs, so ``select`` only decides between the
scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from manymodels.targetunits import RawTarget
from manymodels.training import heldout
from manymodels.training.metrics import Metric, mean_of
from manymodels.training.shared_columns import SharedColumns
from manymodels.training.splits import take


class Folds:
    """The rows ``X``, ``y`` and their ``splits`` (``(train, validation)`` per fold), judged by
    ``score_fn``. ``raw`` (a ``target_transform``): ``y`` is transformed and fits are judged on
    their predictions turned back to the target's units. ``trail`` keeps every scored option's
    fold predictions, for interval residuals of the selection (``heldout``)."""

    def __init__(
        self,
        X: Any,
        y: np.ndarray,
        splits: Sequence[tuple[Any, Any]],
        score_fn: Metric,
        *,
        raw: RawTarget | None = None,
        trail: heldout.Trail | None = None,
    ) -> None:
        self.X, self.y, self.splits = X, y, splits
        self.score_fn, self.raw, self.trail = score_fn, raw, trail
        self.last: list[Any] = []  # the fold fits of the last ``cross_score``
        # each fold's preprocessing fitted once for every candidate (``shared_columns``), and
        # each validation fold's rows taken once, so its transform is too (``Remembered``)
        self.shared = SharedColumns(X, y)
        self._taken: dict[int, tuple[Any, Any]] = {}

    def judge(self, fit: Any, va: Any) -> tuple[Any, Any, np.ndarray]:
        """What the metric sees of ``fit`` on validation rows ``va``: in the target's units."""
        if self.raw is None:
            return fit, self.rows(va), self.y[va]
        return self.raw.judged(fit, va), self.rows(va), self.raw.y[va]

    def rows(self, va: Any) -> Any:
        """``take(X, va)``, the same object each time for the same ``va`` (kept alive here so
        its id is not reused): a shared transformer transforms it once for every fit."""
        found = self._taken.get(id(va))
        if found is None or found[0] is not va:
            found = (va, take(self.X, va))
            self._taken[id(va)] = found
        return found[1]

    def fold_score(self, fit: Any, va: Any) -> float:
        """``fit``'s score on ``va`` (kept by the trail, when there is one)."""
        judged = self.judge(fit, va)
        return self.trail.score(*judged) if self.trail else self.score_fn(*judged)

    def cross_score(
        self,
        make: Callable[[], Any],
        ready: Sequence[Any] | None = None,
        kind: heldout.Kind | None = None,
    ) -> float:
        """``make``'s mean score over the folds; ``ready`` holds its fold fits already made
        (``ridge_grid``, ``constant_fits``), one per fold. ``kind``: the trail keeps it as an
        option. The fits are left in ``last``."""
        scores = []
        self.last.clear()
        if self.trail:
            self.trail.start()
        for at, (tr, va) in enumerate(self.splits):
            est = self.shared.fit(make(), at, tr) if ready is None else ready[at]
            scores.append(self.fold_score(est, va))
            self.last.append(est)
        value = mean_of(scores)
        if not math.isfinite(value):
            raise ValueError(f"{self.score_fn.name} is not finite ({value})")
        if self.trail and kind:
            self.trail.keep(kind)
        return value

    def mean_score(self, fits: Sequence[Any]) -> float:
        """The mean score of one given fit per fold, outside the trail (the top-2 mean)."""
        pairs = zip(fits, self.splits, strict=True)
        return mean_of([self.score_fn(*self.judge(f, va)) for f, (_, va) in pairs])
