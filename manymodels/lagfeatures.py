"""Target lags and rolling statistics of lags, as mlforecast has them — one module for training,
batch scoring, the router and forecasting.

A ``LagPlan`` is built once from the spec (``LagPlan.from_spec``) or from what a version recorded
(``LagPlan.from_schema``). It names every derived feature and knows how many trailing targets
a prediction needs (``depth``, mlforecast's ``keep_last_n``):

* ``<target>_lag<k>`` — the target ``k`` rows earlier in the same partition;
* ``<target>_roll_<stat>_lag<k>_w<w>`` — ``stat`` (mean, std, min, max) over the ``w`` targets
  ending ``k`` rows earlier: a window over the series *already shifted by the lag*, so a
  feature whose lag is ≥ the horizon is known at the forecast origin for every step.

Two functions compute them with the same arithmetic (``_stat`` on a rows × window array):
``table_features`` over a whole sorted, partitioned table (training), and ``step_features`` on
each partition's trailing targets (forecasting and serving). With ``plan.direct`` (every lag ≥
the horizon) all steps' features come from the history alone, and a forecast is one ``predict``;
otherwise it is recursive, one step at a time, each prediction appended to the history.

An optional per-partition target transform (``difference``: mlforecast's ``Differences([1])``;
``scale``: its ``LocalStandardScaler``; ``auto_difference``: its ``AutoDifferences(1)``, a
difference where the KPSS test finds the partition's level wandering, ``manymodels.stationarity``)
is applied before the features are computed and inverted after ``predict``
(``TargetTransform``), so a model sees series of any level alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from manymodels.feature_schema import FeatureSchema, TransformKind

Stat = Literal["mean", "std", "min", "max"]
STATS: tuple[str, ...] = ("mean", "std", "min", "max")
_BLOCK = 1 << 16
"""Rows per gathered block of rolling windows: memory stays ~``_BLOCK × window × 8`` bytes
whatever the table's size."""


@dataclass(frozen=True)
class RollingFeature:
    """``stat`` over the ``window`` targets ending ``lag`` rows before the row."""

    lag: int
    window: int
    stat: str = "mean"

    def name(self, target: str) -> str:
        return f"{target}_roll_{self.stat}_lag{self.lag}_w{self.window}"

    @property
    def depth(self) -> int:
        """How many trailing targets the window reads."""
        return self.lag + self.window - 1


@dataclass(frozen=True)
class LagPlan:
    """Which target lags and rolling statistics a model's features hold, and for a known
    ``horizon`` whether its forecast is direct. Frozen; built once, passed down."""

    target: str
    lags: tuple[int, ...] = ()
    rolling: tuple[RollingFeature, ...] = ()
    calendar: tuple[tuple[str, str], ...] = ()  # (feature, calendar part)
    transform: TransformKind = "none"
    horizon: int | None = None

    @classmethod
    def from_spec(cls, spec: Any, horizon: int | None = None) -> LagPlan:
        """The plan of a ``Spec`` (duck-typed: ``spec.py`` does not import this module)."""
        rolling = tuple(
            RollingFeature(lag=r.lag, window=r.window, stat=r.stat)
            for r in getattr(spec, "rolling", None) or []
        )
        return cls(
            target=spec.target,
            lags=tuple(spec.lags or ()),
            rolling=rolling,
            calendar=tuple(spec.calendar_columns.items()),
            transform=getattr(spec, "transform", "none"),  # the first, when several are tried
            horizon=horizon,
        )

    @classmethod
    def from_schema(cls, schema: FeatureSchema, horizon: int | None = None) -> LagPlan:
        """The plan a version recorded (``FeatureSchema.forecast``; older versions have no
        ``rolling`` or ``transform``: none)."""
        plan = schema.forecast
        assert plan is not None, "a version without a time column has no forecast plan"
        rolling = tuple(
            RollingFeature(lag=int(r["lag"]), window=int(r["window"]), stat=str(r["stat"]))
            for r in plan.rolling.values()
        )
        return cls(
            target=str(schema.target),
            lags=tuple(int(k) for k in plan.lags.values()),
            rolling=rolling,
            calendar=tuple(plan.calendar.items()),
            transform=plan.transform,
            horizon=horizon,
        )

    @property
    def lag_columns(self) -> dict[str, int]:
        return {f"{self.target}_lag{k}": k for k in self.lags}

    @property
    def rolling_columns(self) -> dict[str, RollingFeature]:
        return {r.name(self.target): r for r in self.rolling}

    @property
    def columns(self) -> list[str]:
        """The derived target features, in the order ``table_features`` returns them."""
        return [*self.lag_columns, *self.rolling_columns]

    @property
    def depth(self) -> int:
        """How many trailing targets a prediction needs (0 without lags)."""
        return max([*self.lags, *(r.depth for r in self.rolling)], default=0)

    @property
    def min_lag(self) -> int | None:
        """The smallest lag any feature reads, or ``None`` without target features."""
        return min([*self.lags, *(r.lag for r in self.rolling)], default=None)

    @property
    def direct(self) -> bool:
        """Whether a forecast of ``horizon`` steps needs no prediction as a feature: every
        lag ≥ the horizon (also true without target features). False when no horizon is known."""
        if self.horizon is None:
            return False
        return self.min_lag is None or self.min_lag >= self.horizon

    def with_horizon(self, horizon: int) -> LagPlan:
        return LagPlan(self.target, self.lags, self.rolling, self.calendar, self.transform, horizon)


def _stat(windows: np.ndarray, stat: str) -> np.ndarray:
    """One statistic per row of a rows × window array; NaN in a window gives NaN. The one place
    both training and forecasting compute a rolling value, so they agree to the bit."""
    windows = np.ascontiguousarray(windows, dtype=np.float64)
    if windows.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    if stat == "mean":
        return np.asarray(windows.mean(axis=1))
    if stat == "std":  # sample standard deviation (ddof = 1), as mlforecast's RollingStd
        return np.asarray(windows.std(axis=1, ddof=1))
    if stat == "min":
        return np.asarray(windows.min(axis=1))
    if stat == "max":
        return np.asarray(windows.max(axis=1))
    raise ValueError(f"unknown rolling statistic '{stat}' (one of {', '.join(STATS)})")


def partition_positions(offsets: np.ndarray) -> np.ndarray:
    """Each row's position within its partition (0 for a partition's first row)."""
    counts = np.diff(offsets)
    return np.arange(int(offsets[-1] - offsets[0])) - np.repeat(offsets[:-1] - offsets[0], counts)


def table_features(y: np.ndarray, offsets: np.ndarray, plan: LagPlan) -> np.ndarray:
    """Rows × ``plan.columns``, float64, for a table sorted by key then time: each row's lags
    and rolling statistics within its partition, NaN where they reach before the partition's
    first row (or at a missing target). Vectorised over the whole table."""
    values = np.asarray(y, dtype=np.float64)
    n = len(values)
    position = partition_positions(offsets)
    out = np.full((n, len(plan.lags) + len(plan.rolling)), np.nan)
    rows = np.arange(n)
    for j, k in enumerate(plan.lags):
        ok = position >= k
        out[ok, j] = values[rows[ok] - k]
    for j, r in enumerate(plan.rolling, start=len(plan.lags)):
        ok = position >= r.depth
        if not ok.any():
            continue
        windows = sliding_window_view(values, r.window)  # windows[s] = values[s : s + window]
        at = np.flatnonzero(ok)
        for lo in range(0, len(at), _BLOCK):  # a copy of block × window values at a time
            block = at[lo : lo + _BLOCK]
            out[block, j] = _stat(windows[block - r.depth], r.stat)
    return out


def step_features(recent: np.ndarray, plan: LagPlan, step: int = 1) -> np.ndarray:
    """Partitions × ``plan.columns``: the features of the row ``step`` periods after the last
    of ``recent`` (partitions × trailing targets, oldest first; NaN where unknown). A feature
    that reaches before ``recent`` is NaN; one that reaches past it (lag < step) is an error —
    forecast such steps recursively."""
    recent = np.atleast_2d(np.asarray(recent, dtype=np.float64))
    m = recent.shape[1]
    out = np.full((recent.shape[0], len(plan.lags) + len(plan.rolling)), np.nan)
    for j, k in enumerate(plan.lags):
        at = m + step - 1 - k
        if at >= m:
            raise ValueError(f"lag {k} is not known {step} step(s) ahead")
        if at >= 0:
            out[:, j] = recent[:, at]
    for j, r in enumerate(plan.rolling, start=len(plan.lags)):
        end = m + step - 1 - r.lag  # the window's last position in ``recent``
        if end >= m:
            raise ValueError(f"rolling lag {r.lag} is not known {step} step(s) ahead")
        start = end - r.window + 1
        if start >= 0:
            out[:, j] = _stat(recent[:, start : end + 1], r.stat)
    return out


# --------------------------------------------------------------------------------------------
# per-partition target transforms
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TargetTransform:
    """A per-partition target transform and what it learned of one partition: ``scale``
    subtracts ``center`` and divides by ``spread`` (the partition's training mean and
    standard deviation, 1 when it is 0); ``difference`` takes ``y[t] - y[t-1]`` and sums the
    predicted differences back onto the last known level. ``kind`` is what the partition got:
    ``auto_difference`` resolves to ``difference`` or ``none`` (``fit_transforms``)."""

    kind: TransformKind = "none"
    center: float = 0.0
    spread: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "center": self.center, "spread": self.spread}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> TargetTransform:
        if not data:
            return cls()
        return cls(str(data["kind"]), float(data["center"]), float(data["spread"]))  # type: ignore[arg-type]

    def apply(self, y: np.ndarray) -> np.ndarray:
        """One partition's raw targets (oldest first) in the transformed scale; with
        ``difference`` the first value is NaN (it has no predecessor)."""
        values = np.asarray(y, dtype=np.float64)
        if self.kind == "scale":
            return (values - self.center) / self.spread
        if self.kind == "difference":
            return np.concatenate([[np.nan], np.diff(values)]) if len(values) else values
        return values

    def invert(self, predictions: np.ndarray, last: float) -> np.ndarray:
        """Consecutive steps' predictions (transformed scale) back in the target's units;
        ``last`` is the last raw target before the first step (``difference`` only)."""
        pred = np.asarray(predictions, dtype=np.float64)
        if self.kind == "scale":
            return pred * self.spread + self.center
        if self.kind == "difference":
            return last + np.cumsum(pred)
        return pred


def fit_transforms(
    y: np.ndarray, offsets: np.ndarray, kind: TransformKind
) -> tuple[np.ndarray, list[TargetTransform]]:
    """The whole table's targets transformed partition by partition, and each partition's
    ``TargetTransform`` (``scale`` learns its mean and spread from the finite targets;
    ``auto_difference`` differences the partitions whose KPSS test rejects a stable level and
    leaves the others as they are, kind ``none``)."""
    values = np.asarray(y, dtype=np.float64)
    if kind == "none":
        return values, [TargetTransform() for _ in range(len(offsets) - 1)]
    if kind == "auto_difference":
        from manymodels.stationarity import needs_difference
    out = np.empty_like(values)
    fitted: list[TargetTransform] = []
    for lo, hi in itertools.pairwise(offsets.tolist()):
        part = values[lo:hi]
        if kind == "auto_difference":
            t = TargetTransform("difference" if needs_difference(part) else "none")
        else:
            t = TargetTransform(kind)
        if kind == "scale":
            finite = part[np.isfinite(part)]
            center = float(finite.mean()) if len(finite) else 0.0
            spread = float(finite.std()) if len(finite) > 1 else 0.0
            t = TargetTransform(kind, center, spread if spread > 0 else 1.0)
        out[lo:hi] = t.apply(part)
        fitted.append(t)
    return out, fitted


def feature_names(target: str, lags: Sequence[int], rolling: Sequence[RollingFeature]) -> list[str]:
    """The derived feature names for ``lags`` and ``rolling`` (as ``LagPlan.columns``)."""
    return LagPlan(target, tuple(lags), tuple(rolling)).columns
