"""A recursive forecast's preprocessing done once per partition, not once per step.

A partition with text features is fitted as ``Pipeline(ColumnTransformer(one-hot, numeric),
estimator)`` (``candidates.build``). A recursive forecast predicts one step at a time, since
each step's lags read the step before's prediction, and ``Pipeline.predict`` of one row ran the
whole ``ColumnTransformer`` each time: ~3 ms of pandas and encoder checks for a one-row frame,
where a Ridge's own ``predict`` is ~0.1 ms. At 2,000 daily series × 7 steps that was most of a
``manymodels forecast``'s minutes. Only the lag columns change from step to step, and they pass
through the numeric block elementwise (``StandardScaler``: ``(x − mean) / scale``, or as they
are), so the steps' rows are transformed together once and each step's lags are written into
the transformed row with the same arithmetic, the same bits, before the estimator predicts it.
Any other model (no ``ColumnTransformer``, a sparse output, a lag column in another block) is
left to ``predict`` as before (``None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class StepColumns:
    """Where each lag column lands in the transformed row, and its scaler's parameters."""

    preprocess: Any
    estimator: Any
    placed: tuple[tuple[int, int, float | None, float | None], ...]
    """``(model input column, transformed column, mean, scale)``; ``None``: passed through."""

    @classmethod
    def of(cls, model: Any, features: list[str], lag_inputs: list[int]) -> StepColumns | None:
        """The split of ``model`` for the model input columns ``lag_inputs``, or ``None``."""
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline

        if type(model) is not Pipeline or len(model.steps) != 2:
            return None
        pre, estimator = model.steps[0][1], model.steps[1][1]
        if type(pre) is not ColumnTransformer or not hasattr(pre, "output_indices_"):
            return None
        placed = []
        for j in lag_inputs:
            spot = _spot(pre, features, j)
            if spot is None:
                return None
            placed.append((j, *spot))
        return cls(pre, estimator, tuple(placed))

    def transformed(self, X: Any) -> np.ndarray | None:
        """Every step's row through the preprocessing at once (lag columns as placeholders,
        overwritten by ``put``); ``None`` when the output is not a dense float matrix."""
        Z = self.preprocess.transform(X)
        if type(Z) is not np.ndarray or Z.dtype != np.float64 or Z.ndim != 2:
            return None
        return Z

    def put(self, Z: np.ndarray, s: int, values: np.ndarray) -> None:
        """Step ``s``'s lag values (``values``: that step's model input row) into ``Z``."""
        for j, out, mean, scale in self.placed:
            x = values[j]
            if mean is not None and scale is not None:
                x = (x - mean) / scale
            Z[s, out] = x


def _identity(transformer: Any) -> bool:
    """``"passthrough"``, which a fitted ``ColumnTransformer`` holds as a ``FunctionTransformer``
    of no function (sklearn ≥ 1.2) or as the string."""
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(transformer, str):
        return transformer == "passthrough"
    return type(transformer) is FunctionTransformer and transformer.func is None


def _spot(pre: Any, features: list[str], j: int) -> tuple[int, float | None, float | None] | None:
    """Where input column ``j`` lands in ``pre``'s output, with its scaler's mean and scale."""
    from sklearn.preprocessing import StandardScaler

    name = features[j]
    for block, transformer, columns in pre.transformers_:
        if block == "remainder" or isinstance(columns, slice):
            continue
        listed = [c if isinstance(c, str) else features[int(c)] for c in columns]
        if name not in listed:
            continue
        at = listed.index(name)
        start = pre.output_indices_[block].start
        if _identity(transformer):
            return start + at, None, None
        if type(transformer) is StandardScaler and transformer.with_mean and transformer.with_std:
            if transformer.mean_ is None or transformer.scale_ is None:
                return None
            return start + at, float(transformer.mean_[at]), float(transformer.scale_[at])
        return None
    return None
