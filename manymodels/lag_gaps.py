"""A warning when a partition's times skip periods and the spec has target lags (``lag_gaps``).

A lag is the target a number of *rows* back (as mlforecast computes it), so a daily series
missing January 4th and 5th gives January 6th the target of January 3rd as its "lag 1", and
its rolling means span more days than they say. Training did that silently: the spacing was
a multiple of the table's frequency, which ``timefeatures.off_frequency`` accepts as gaps.
A row for each missing period, its target left empty, keeps every lag at its period (the
rows after it lose the lags that read it, as any missing target does). Vectorised over the
table: one comparison of each row's time with the period after the row before it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.offsets import Day, Tick

from manymodels.timefeatures import Frequency, is_datetime, shift, step_offset, time_to_json
from manymodels.weekdays import weekmask


def lag_gaps(
    time: Any,
    offsets: np.ndarray,
    frequency: Frequency | None,
    keys: Sequence[str],
    holidays: Sequence[str] = (),
) -> str | None:
    """A warning naming how many partitions skip periods of the table's ``frequency`` and the
    first one's first gap, or ``None`` (no gap, or no frequency people name to step by).
    Business days skip the spec's ``holidays``: a row after one follows the day before it."""
    n_parts = len(offsets) - 1
    if len(time) < 2 or n_parts < 1 or frequency is None or isinstance(frequency, float):
        return None
    part = np.repeat(np.arange(n_parts), np.diff(offsets))
    same = part[1:] == part[:-1]
    if not same.any():
        return None
    if is_datetime(time):
        if not isinstance(frequency, str) or frequency.endswith(("ns", "us", "ms")):
            return None  # a median of scattered event times, not a period
        index = pd.DatetimeIndex(time)
        try:
            expected = _next_periods(index[:-1], frequency, holidays)
        except (ValueError, TypeError, OverflowError):
            return None
        gap = same & (index[1:] > expected)
        if (mask := weekmask(frequency)) is not None and gap.any():
            gap &= ~_holidays(index, part, gap, mask, holidays)
    elif isinstance(frequency, int) and frequency > 0:
        values = np.asarray(time)
        gap = same & (values[1:] > values[:-1] + frequency)
    else:
        return None
    if not gap.any():
        return None
    where = np.flatnonzero(gap)
    first = int(where[0])
    before, after = _shown(time, first), _shown(time, first + 1)
    n = len(np.unique(part[1:][where]))
    return (
        f"{n} partition(s) skip periods of their {frequency} times, e.g. "
        f"'{keys[int(part[first])]}' from {before} to {after}: a lag counts rows, so after a "
        "gap a lag reads an older period's target; add a row for each missing period (its "
        "target left empty)"
    )


def _next_periods(
    index: pd.DatetimeIndex, frequency: str, holidays: Sequence[str] = ()
) -> pd.DatetimeIndex:
    """The latest time the row after each of ``index`` may hold without skipping a period.

    An anchored frequency (``MS``, ``B``, ``W-SUN``, ``MS+14D``) is its next anchor. A fixed
    step (``1D``, ``h``) stands also for calendars it only approximates: quarters starting in
    March step 90 to 92 days (median ``2196h``), fiscal years starting in July 365 or 366
    (``365D``), the 30th of each month 28 to 31 (``30D``), none of them a skipped period; a
    step short of 1.5 periods is no gap (a skipped period makes it about two)."""
    step, within = step_offset(frequency, index.tz is not None, holidays)
    if within is None and isinstance(step, Tick | Day):
        return index + pd.Timedelta(step) * 1.5
    with warnings.catch_warnings():  # a non-tick offset over many rows: a hint only
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        return shift(index, step, within, 1)


_HOLIDAY_RUN = 4  # business days in a row: Japan's new year, a Golden Week, Easter's Fri-Mon
_HOLIDAY_SHARE = 1 / 12  # of a partition's business days: 10 to 16 holidays in 250 to 260
_WORKED = 3 / 4  # of the partitions spanning a day: with rows in that many, it is no holiday


def _holidays(
    index: pd.DatetimeIndex,
    part: np.ndarray,
    gap: np.ndarray,
    mask: str,
    listed: Sequence[str] = (),
) -> np.ndarray:
    """Which of business-day ``gap`` (row ``i`` to ``i + 1``; business days: ``mask``, a
    ``B`` or ``C-<days>`` frequency's) are a market's or an office's holidays: every gap of
    its partition skips at most ``_HOLIDAY_RUN`` business days and together at most
    ``_HOLIDAY_SHARE`` of them. A closed day has no row to add, and its "lag 1" is the
    business day before, as the user means it: each holiday was warned of as a gap to fill.
    A partition missing more (a week, one day in four) is still named. The spec's ``listed``
    holidays are no business days here either."""
    local = index.tz_localize(None) if index.tz is not None else index
    days = local.normalize().to_numpy().astype("datetime64[D]")
    skipped = np.zeros(len(gap), dtype=np.int64)
    at = np.flatnonzero(gap)
    skipped[at] = np.busday_count(days[at] + 1, days[at + 1], weekmask=mask, holidays=listed)
    pairs = part[1:]
    n_parts = int(part[-1]) + 1
    longest = np.zeros(n_parts, dtype=np.int64)
    np.maximum.at(longest, pairs, skipped)
    missing = np.bincount(pairs, weights=skipped, minlength=n_parts)
    firsts = np.searchsorted(part, np.arange(n_parts))
    lasts = np.searchsorted(part, np.arange(n_parts), side="right") - 1
    ends = days[np.maximum(lasts, firsts)]
    span = np.busday_count(days[firsts], ends, weekmask=mask, holidays=listed) + 1
    closed = (longest <= _HOLIDAY_RUN) & (missing <= span * _HOLIDAY_SHARE)
    return np.asarray(closed[pairs] & gap & ~_worked_through(days, part, at, firsts, lasts))


def _worked_through(
    days: np.ndarray, part: np.ndarray, at: np.ndarray, firsts: np.ndarray, lasts: np.ndarray
) -> np.ndarray:
    """Which gaps (rows ``at`` to ``at + 1``) skip a day on which most partitions have a row
    (``_WORKED`` of those whose times span it): no holiday of the table's market, a feed
    down for one partition. A shop missing four days that twenty others have rows on was no
    longer warned of, as if closed. A day held by some partitions only (one country's
    holiday in a table of two) stays a holiday. Counted per day over the table's span."""
    d = days.astype(np.int64)
    lo = int(d.min())
    n_days = int(d.max()) - lo + 1
    first_of_day = np.ones(len(d), dtype=bool)  # a partition's rows on a day count once
    first_of_day[1:] = (part[1:] != part[:-1]) | (d[1:] != d[:-1])
    held = np.bincount(d[first_of_day] - lo, minlength=n_days)
    change = np.zeros(n_days + 1, dtype=np.int64)  # partitions whose span covers each day
    np.add.at(change, d[firsts] - lo, 1)
    np.add.at(change, d[lasts] - lo + 1, -1)
    spanning = np.cumsum(change)[:n_days]
    worked = np.concatenate([[0], np.cumsum(held >= _WORKED * np.maximum(spanning, 1))])
    out = np.zeros(len(part) - 1, dtype=bool)
    out[at] = worked[d[at + 1] - lo] - worked[d[at] - lo + 1] > 0  # days strictly between
    return out


def _shown(time: Any, i: int) -> str:
    if is_datetime(time):
        return str(time_to_json(pd.DatetimeIndex(time)[i]))
    return str(time_to_json(np.asarray(time)[i]))
