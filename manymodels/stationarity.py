"""Whether a partition's series needs differencing: the KPSS test, as ``ndiffs`` runs it.

``target_transform = "auto_difference"`` differences a partition's target only where its
level wanders (a trend, a random walk) and leaves a stationary series as it is. One spec-wide
``difference`` helps trending panels and ruins stationary ones — a forecast of summed predicted
changes drifts away from a level that does not move. The decision per series is what
statsforecast's ``AutoARIMA`` makes before fitting (its ``ndiffs``) and what mlforecast's
``AutoDifferences`` target transform makes (coreforecast's ``num_diffs``), both after R's
``forecast::ndiffs``: the KPSS test of level stationarity (Kwiatkowski, Phillips, Schmidt and
Shin, 1992) at the 5 % level, with the Newey–West bandwidth ``ndiffs`` gives it,
``⌊3 √n / 13⌋`` (``urca::ur.kpss(use.lag = …)``; statsforecast's ``ndiffs`` passes the same
``nlags`` to statsmodels' ``kpss``). Here at most one difference is taken (the transform
``difference`` is first differences).

Pure numpy, O(n · bandwidth) per series; no statsmodels.
"""

from __future__ import annotations

import math

import numpy as np

# KPSS level-stationarity critical values (Kwiatkowski et al. 1992, Table 1, η_μ)
CRITICAL = {0.10: 0.347, 0.05: 0.463, 0.025: 0.574, 0.01: 0.739}
MIN_VALUES = 4  # fewer finite values than this: no test, no difference


def kpss_statistic(values: np.ndarray) -> float:
    """The KPSS statistic for level stationarity of ``values`` (finite, oldest first):
    partial sums of the deviations from the mean, against a Bartlett-weighted long-run
    variance with ``⌊3 √n / 13⌋`` lags, as ``ndiffs`` runs it (``tseries::kpss``'s own
    ``⌊4 (n/100)^¼⌋`` took up to 3 lags where ``ndiffs`` takes 1 or 2, a larger variance
    of a wandering series' autocorrelated deviations: ~5 % of random walks were left
    undifferenced where coreforecast's ``num_diffs`` — mlforecast's ``AutoDifferences`` —
    differences them). Large values reject stationarity. NaN for a constant series."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    e = x - x.mean()
    s2 = float(e @ e) / n
    if n < 2 or s2 <= 0.0:
        return math.nan
    bandwidth = min(int(3 * math.sqrt(n) / 13), n - 1)
    for lag in range(1, bandwidth + 1):
        weight = 1.0 - lag / (bandwidth + 1)
        s2 += 2.0 * weight * float(e[lag:] @ e[:-lag]) / n
    partial = np.cumsum(e)
    eta = float(partial @ partial) / n**2
    return eta / s2 if s2 > 0.0 else math.inf


def needs_difference(values: np.ndarray, alpha: float = 0.05) -> bool:
    """Whether a series (NaN ignored) should be differenced once: its KPSS statistic exceeds
    the ``alpha`` critical value. A constant or very short series is left as it is (``ndiffs``
    returns 0 for a constant series)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) < MIN_VALUES:
        return False
    stat = kpss_statistic(x)
    return not math.isnan(stat) and stat > CRITICAL[alpha]
