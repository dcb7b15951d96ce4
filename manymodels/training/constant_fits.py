"""A ``DummyRegressor`` candidate's validation fits without scikit-learn's per-fit checks.

The mean or median of a partition's target is the baseline most specs carry (the median is
the MAE-optimal constant, the one spec of ``benchmarks/accuracy.py`` has it). Selection fits
it on every validation fold of every partition and transform, and each ``fit`` is ~250 µs of
scikit-learn's parameter validation, ``check_array`` and dataframe detection around one
``np.median``: in a profile of the one spec on us_employment (147 series, 5 folds, two
transforms, in process) 2,232 such fits were ~0.5 s of a 4.3 s run.

Its prediction is the constant whatever the features, so a fold's fit is that constant,
computed as ``DummyRegressor.fit`` computes it (``np.average`` of the target as an ``(n, 1)``
column; ``np.median``'s own arithmetic, ``median`` below; so the same bits). Only validation
fits come from here; the chosen one is refitted by scikit-learn on all rows, so the stored
model is the same ``DummyRegressor`` as before. Anything else — a ``constant`` or
``quantile`` strategy, another parameter, a scaler in front (``scale = true``), a target that
is not finite float64, an empty fold; and, as ``select`` asks only for regression without
categorical columns, those — is fitted by scikit-learn, which reports its own errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from manymodels.spec_sections import Candidate

DUMMY = "sklearn.dummy.DummyRegressor"
STRATEGIES = ("mean", "median")


class ConstantFoldFit:
    """One validation fold's fitted ``DummyRegressor``: what selection needs of a fit —
    ``predict`` — and nothing it would store."""

    def __init__(self, value: float):
        self.value = value

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.value, dtype=np.float64)


def strategies(candidate: Candidate, grid: Sequence[dict[str, Any]]) -> list[str] | None:
    """Each grid point's strategy when this candidate's fold fits can be made here, else
    None: a class-path, unscaled ``DummyRegressor`` whose grid sets nothing but a ``mean`` or
    ``median`` strategy (``mean`` when unset)."""
    if candidate.estimator != DUMMY or candidate.scale:
        return None
    out: list[str] = []
    for params in grid:
        strategy = params.get("strategy", "mean")
        if set(params) - {"strategy"} or strategy not in STRATEGIES:
            return None
        out.append(strategy)
    return out


def fold_fits(
    y: np.ndarray, splits: Sequence[tuple[Any, Any]], grid: Sequence[str]
) -> list[list[ConstantFoldFit]] | None:
    """``[grid point][fold]`` fits of ``DummyRegressor(strategy)`` on each fold's training
    rows; None when the target is not finite float64 or a fold has no training row
    (scikit-learn then fits, and says what is wrong)."""
    if not _plain(y, splits):
        return None
    out: list[list[ConstantFoldFit]] = [[] for _ in grid]
    for train, _ in splits:
        rows = y[train]
        found: dict[str, float] = {}
        for at, strategy in enumerate(grid):
            if strategy not in found:
                found[strategy] = (
                    float(np.average(np.reshape(rows, (-1, 1)), axis=0)[0])  # as ``fit`` does
                    if strategy == "mean"
                    else median(rows)
                )
            out[at].append(ConstantFoldFit(found[strategy]))
    return out


def median(rows: np.ndarray) -> float:
    """``np.median`` of finite float64 ``rows``, the same bits, without its ~80 µs of
    wrapping (axis handling, a NaN check, a ``np.mean`` of the middle values): the one spec's
    median is fitted on every fold of every partition and transform (1,470 fits on
    us_employment). The same ``np.partition`` picks the middle values; ``np.mean``'s sum of
    them starts from 0.0 (so a -0.0 middle comes out 0.0) and is divided by their count."""
    n = len(rows)
    if n % 2:
        h = (n - 1) // 2
        return float((0.0 + np.partition(rows, h)[h]) / 1.0)
    h = n // 2
    part = np.partition(rows, [h - 1, h])
    return float(((0.0 + part[h - 1]) + part[h]) / 2.0)


def no_change_fits(y: np.ndarray, splits: Sequence[tuple[Any, Any]]) -> list[Any] | None:
    """The naive baseline's fold fits for a differenced target (``candidates.naive_baseline``:
    ``DummyRegressor(strategy="constant", constant=0.0)``), whose prediction is 0 whatever it
    was fitted on; None where scikit-learn should fit (and complain), as in ``fold_fits``.
    Every partition of a ``difference`` transform scores it on every fold: 735 fits, ~0.6 s
    of the one spec's 3.5 s on us_employment in process."""
    return [ConstantFoldFit(0.0) for _ in splits] if _plain(y, splits) else None


def _plain(y: np.ndarray, splits: Sequence[tuple[Any, Any]]) -> bool:
    """A finite float64 target and no fold without training rows: what a constant's fits
    made here need; scikit-learn fits anything else, and says what is wrong."""
    if not isinstance(y, np.ndarray) or y.dtype != np.float64 or y.ndim != 1:
        return False
    return bool(np.isfinite(y).all()) and all(len(y[train]) for train, _ in splits)
