"""A version's drift: the rows scored since its training, binned in its profile's bins
(``profile.live_counts``), against the training rows' counts.

Drift is the **population stability index** of one feature, between the training counts
``n_i`` (``n`` rows) and the counts ``m_i`` of rows scored since (``m`` rows), over the ``B``
bins either holds a row of. Each share is smoothed by half a row per bin (Jeffreys), so an
empty bin weighs what its sample size says rather than a floor's ``ln(1/ε)``::

    q_i = (n_i + ½) / (n + B/2),   p_i = (m_i + ½) / (m + B/2)
    PSI = Σ_i (p_i − q_i) · ln(p_i / q_i)

Without drift, ``PSI / (1/n + 1/m)`` is about chi-square with ``B − 1`` degrees of freedom (to
second order it is the chi-square statistic of the 2 × B table of counts): sampling noise alone
gives ``E[PSI] ≈ (B − 1)(1/n + 1/m)``, 0.29 for 10 bins, 60 training and 64 sampled rows —
above the conventional 0.25 for "a major shift". So a feature's **drift score** is the PSI
less that expected noise — an estimate of the PSI of the populations, not of the samples —
and counts only where the PSI is significant: above the ``1 − SIGNIFICANCE / F`` quantile of
its noise (``F`` the partition's features, Bonferroni), otherwise it is 0. So traffic drawn
from the training distribution gives a score above 0 to at most ``SIGNIFICANCE`` (5 %) of
partitions whatever their sizes, and one above the threshold to far fewer once
``(1/n + 1/m)`` is small next to it. A
partition's drift score is its largest over features. With many rows the correction vanishes
and the score is the usual PSI (< 0.1 stable, 0.1–0.25 moderate, > 0.25 major). No score is
given under ``MIN_DRIFT_ROWS`` sampled rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from statistics import NormalDist
from typing import Any

SMOOTHING = 0.5
"""Rows added to every bin of both samples before PSI (Jeffreys' prior): no share is 0."""
SIGNIFICANCE = 0.05
"""Chance that a partition whose traffic is drawn from its training distribution gets a drift
score above 0 (at most: split over its features, Bonferroni)."""
MIN_DRIFT_ROWS = 50


def _with_missing(
    stats: Mapping[str, Any], rows: Any, live: Sequence[float]
) -> tuple[list[float], list[float]]:
    """A feature's training counts and live counts, both with the missing count last: the
    training rows the profile's bins did not count (``rows`` less their sum: missing values,
    which the profile leaves out). Live counts without one (an older router's) are compared
    without it, as they were."""
    expected = list(stats["counts"])
    if len(live) != len(expected) + 1:
        return expected, list(live)
    missed = rows - sum(expected) if isinstance(rows, int | float) else 0
    return [*expected, max(missed, 0)], list(live)


def psi(expected: Sequence[float], actual: Sequence[float]) -> float | None:
    """The population stability index of ``actual`` counts against ``expected`` counts (same
    bins), each bin's count smoothed by ``SMOOTHING`` over the bins either sample holds a row
    of; ``None`` when either is empty."""
    found = _psi(expected, actual)
    return None if found is None else found[0]


def _psi(expected: Sequence[float], actual: Sequence[float]) -> tuple[float, int, float] | None:
    """PSI, the bins it ran over and its noise scale ``1/n + 1/m``."""
    q_total, p_total = float(sum(expected)), float(sum(actual))
    if q_total <= 0 or p_total <= 0 or len(expected) != len(actual):
        return None
    bins = sum(1 for q_n, p_n in zip(expected, actual, strict=True) if q_n > 0 or p_n > 0)
    q_den, p_den = q_total + SMOOTHING * bins, p_total + SMOOTHING * bins
    out = 0.0
    for q_n, p_n in zip(expected, actual, strict=True):
        if q_n > 0 or p_n > 0:
            q = (q_n + SMOOTHING) / q_den
            p = (p_n + SMOOTHING) / p_den
            out += (p - q) * math.log(p / q)
    return out, bins, 1.0 / q_total + 1.0 / p_total


@lru_cache(maxsize=1024)
def noise_quantile(df: int, tail: float) -> float:
    """The ``1 − tail`` quantile of chi-square with ``df`` degrees of freedom: exact for one
    and two, Wilson–Hilferty above (a few percent high at small tails, which is conservative;
    no scipy on the flush path)."""
    if df == 1:
        return NormalDist().inv_cdf(1.0 - tail / 2.0) ** 2
    if df == 2:
        return -2.0 * math.log(tail)
    z = NormalDist().inv_cdf(1.0 - tail)
    h = 2.0 / (9.0 * df)
    return df * max(1.0 - h + z * math.sqrt(h), 0.0) ** 3


def drift_score(
    expected: Sequence[float], actual: Sequence[float], *, features: int = 1
) -> tuple[float, float] | None:
    """One feature's drift score and its noise-corrected PSI (see the module's docstring):
    the score is that estimate where the PSI is significant at ``SIGNIFICANCE / features``,
    else 0. ``None`` when either sample is empty."""
    found = _psi(expected, actual)
    if found is None:
        return None
    value, bins, scale = found
    if bins < 2:
        return 0.0, 0.0
    estimate = value - (bins - 1) * scale
    significant = value > scale * noise_quantile(bins - 1, SIGNIFICANCE / max(features, 1))
    return (estimate if significant else 0.0), estimate


def drift(profile: Mapping[str, Any], live: Mapping[str, Sequence[float]]) -> tuple[float, str]:
    """The drift score (largest over features) and the feature it comes from: of features
    scoring 0, the one whose PSI is furthest above its expected noise. Each feature's bins
    end with its missing values' (``live_counts``)."""
    rows = profile.get("rows")
    pairs = [
        (name, *_with_missing(stats, rows, counts))
        for name, counts in live.items()
        if (stats := profile.get("features", {}).get(name)) is not None
    ]
    pairs = [(name, e, a) for name, e, a in pairs if sum(e) > 0 and sum(a) > 0]
    best: tuple[float, float] = (-1.0, -math.inf)
    worst = ""
    for name, expected, counts in pairs:
        found = drift_score(expected, counts, features=len(pairs))
        if found is not None and found > best:
            best, worst = found, name
    return max(best[0], 0.0), worst
