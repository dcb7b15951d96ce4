"""The KPSS test behind ``target_transform = "auto_difference"``."""

from __future__ import annotations

import numpy as np
import pytest

from manymodels.stationarity import kpss_statistic, needs_difference

PI_DIGITS = np.array([3.0, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # statsmodels 0.15.0: kpss(x, regression="c", nlags=int(3 * sqrt(len(x)) / 13))[0],
        # the lags statsforecast's ndiffs (and R's forecast::ndiffs) give it
        (PI_DIGITS, 0.23967482426050965),
        (np.arange(20.0) + PI_DIGITS / 10, 1.081708956633056),
        (np.cumsum(PI_DIGITS - PI_DIGITS.mean()), 0.6234015927689177),
    ],
)
def test_statistic_matches_an_independent_implementation(
    values: np.ndarray, expected: float
) -> None:
    assert kpss_statistic(values) == pytest.approx(expected, rel=1e-12)


def test_a_wandering_level_is_differenced_and_a_stable_one_is_not() -> None:
    rng = np.random.default_rng(7)
    shocks = rng.normal(size=(20, 200))
    walks = [needs_difference(np.cumsum(s)) for s in shocks]
    trends = [needs_difference(0.05 * np.arange(200) + s) for s in shocks]
    noise = [needs_difference(s) for s in shocks]
    assert sum(walks) >= 17 and all(trends)  # the test's power on 200 points
    assert sum(noise) <= 3  # ~5 % false positives at the 5 % level


def test_constant_short_and_missing_values() -> None:
    assert not needs_difference(np.full(50, 4.0))  # no variance: nothing to test (ndiffs: 0)
    assert not needs_difference(np.array([1.0, 2.0, 3.0]))  # too short to test
    trend = np.arange(60.0)
    gappy = trend.copy()
    gappy[::7] = np.nan
    assert needs_difference(trend) and needs_difference(gappy)  # NaN left out, not fatal


def test_the_decision_is_ndiffs_and_mlforecasts_auto_differences() -> None:
    """A walk of the digits of pi: coreforecast 0.0.20's ``num_diffs(x, 1)`` (mlforecast's
    ``AutoDifferences(1)``) and statsforecast's ``ndiffs`` difference it (KPSS 0.623 with 1
    lag > 0.463). With tseries' bandwidth (2 lags for 20 values) its statistic was 0.459, and
    ``auto_difference`` left it as it was, its forecast another than mlforecast's; about 5 %
    of random walks of 8-300 values were (29 of 600, 0 now)."""
    walk = np.cumsum(PI_DIGITS - PI_DIGITS.mean())
    assert needs_difference(walk)
    assert not needs_difference(PI_DIGITS)  # num_diffs: 0
