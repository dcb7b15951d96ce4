"""A warning when a table's dates keep a calendar its one frequency cannot (``off_calendar``).

A table gets one frequency (``frequencies.infer_frequency``). Month starts become ``MS``,
weekday-only days ``B`` — but only when *every* time fits: month-start partitions beside
month-end ones, one mistyped date among month starts, or a weekday-only partition beside
daily ones fell back to a fixed step (``31D``, ``1D``). Forecasts then stepped off the
calendar (March 3rd, then April 3rd; a Saturday for a series that never has one), with
calendar features read from those dates, and nothing said so: the spacing looked regular,
so ``timefeatures.off_frequency`` had nothing to name. Weekly times are ``7D`` on any day
of the week: one Wednesday among a partition's Mondays moved its forecasts to Wednesdays
(named too; a partition's days are its own). Vectorised over the table, as a
partition's own frequency check would not be at 100,000 partitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import Day, Tick

from manymodels.timefeatures import Frequency, is_datetime, time_to_json

_PERIODS = (
    (28, 31, "month", "is_month_start", "is_month_end"),
    (89, 92, "quarter", "is_quarter_start", "is_quarter_end"),
    (365, 366, "year", "is_year_start", "is_year_end"),
)
_ADVICE = "correct such times, or train a table per calendar"


def off_calendar(
    time: Any,
    offsets: np.ndarray,
    frequency: Frequency | None,
    keys: Sequence[str],
    holidays: Sequence[str] = (),
) -> str | None:
    """A warning naming where the table's dates keep a calendar that ``frequency`` (a fixed
    step: ``31D``, or ``2196h`` between quarter starts and ends, ``44610min`` between a zone's
    month starts and ends) does not, or ``None``. A period's first or last business day (less
    the spec's ``holidays``) is no odd time to name."""
    if isinstance(frequency, str) and frequency.startswith("C-") and is_datetime(time):
        return _fewer_open_days(pd.DatetimeIndex(time), offsets, keys, frequency)
    days = _fixed_days(frequency)
    if days is None or not is_datetime(time) or len(time) < 2:
        return None
    index = pd.DatetimeIndex(time)
    local = index.tz_localize(None) if index.tz is not None else index  # its clocks' dates
    if days == 1:
        return _weekdays_only(local, offsets, keys)
    if days % 7 == 0 and days < 28:  # 91D is a quarter's step: judged by its anchors below
        return _other_weekdays(local, index, offsets, keys, str(frequency))
    for low, high, name, is_start, is_end in _PERIODS:
        if low <= days <= high:
            part = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
            starts = np.asarray(getattr(local, is_start))
            ends = np.asarray(getattr(local, is_end))
            business = _business_anchors(local, high, holidays)
            return _mixed_anchors(index, part, keys, str(frequency), name, starts, ends, business)
    return None


def _fixed_days(frequency: Frequency | None) -> float | None:
    """A fixed step's length in days (days, hours, minutes…), or ``None`` for an anchored
    one (``MS``, ``B``…) or periods."""
    if not isinstance(frequency, str):
        return None
    try:
        offset = to_offset(frequency)
    except ValueError:
        return None
    if not isinstance(offset, Tick | Day):  # pandas 3: a Day is a calendar day, no Tick
        return None
    return float(pd.Timedelta(offset) / pd.Timedelta(days=1))


def _mixed_anchors(
    index: pd.DatetimeIndex,
    part: np.ndarray,
    keys: Sequence[str],
    frequency: str,
    period: str,
    starts: np.ndarray,
    ends: np.ndarray,
    business: np.ndarray,
) -> str | None:
    """Times a ``period`` apart, most of them its starts or ends, yet not all one of them.
    Series every 30 days exactly meet a month's start or end now and then: those are no
    calendar, and mostly neither. ``index`` is shown as given; ``starts`` and ``ends`` were read
    on its own clocks. Among times neither, those that are no ``business`` anchor either are
    named: business month starts with one day a closure moved (2022-01-04 after an unlisted
    2022-01-03) were "36 time(s)", shown at 2021-05-03, a Monday that is May's first business
    day, not the one odd date."""
    anchored = starts | ends
    if starts.all() or ends.all():  # one calendar (the frequency would be anchored)
        return None
    if anchored.all():  # each a start or an end, and not all the same: two calendars
        s, e = int(np.flatnonzero(starts)[0]), int(np.flatnonzero(~starts)[0])
        return (
            f"some partitions' times are {period} starts (e.g. '{keys[part[s]]}' at "
            f"{_day(index, s)}) and others' {period} ends (e.g. '{keys[part[e]]}' at "
            f"{_day(index, e)}): the table's one frequency is {frequency}, so forecasts step "
            f"off the calendar and calendar features are read from those dates; train a "
            f"table per calendar"
        )
    if anchored.mean() < 0.5:
        return None
    odd = ~anchored
    moved = bool((odd & ~business).any() and (odd & business).any())
    if moved:  # business anchors beside the odd ones: those are no calendar's
        odd &= ~business
    first = int(np.flatnonzero(odd)[0])
    hint = " (nor its first or last business day, less the spec's holidays)" if moved else ""
    return (
        f"{int(odd.sum())} time(s) are neither a {period}'s start nor its end{hint}, among "
        f"times that are (e.g. '{keys[part[first]]}' at {_day(index, first)}): the table's "
        f"one frequency is {frequency}, so forecasts step off the calendar and calendar "
        f"features are read from those dates; {_ADVICE}"
    )


def _business_anchors(local: pd.DatetimeIndex, days: int, holidays: Sequence[str]) -> np.ndarray:
    """Which of ``local`` are their month's first or last business day, less ``holidays``, in
    a month that starts or ends a period of ``days`` (a quarter's: January, April…; a year's:
    January or December). numpy's ``busday_offset`` over the table's distinct dates (a few
    hundred months however many partitions), where pandas' ``CustomBusinessMonthBegin``
    steps one date per call."""
    codes, distinct = pd.factorize(local.normalize().to_numpy().astype("datetime64[D]"))
    day = np.asarray(distinct, dtype="datetime64[D]")
    month = day.astype("datetime64[M]")
    listed = np.array(list(holidays), dtype="datetime64[D]")
    first = np.busday_offset(month.astype("datetime64[D]"), 0, "forward", holidays=listed)
    last_day = (month + 1).astype("datetime64[D]") - 1
    last = np.busday_offset(last_day, 0, "backward", holidays=listed)
    cycle = 1 if days <= 31 else 3 if days <= 92 else 12
    number = month.astype(np.int64) % cycle  # months since 1970-01: January is 0
    on = ((first == day) & (number == 0)) | ((last == day) & (number == cycle - 1))
    return np.asarray(on[codes])


def _weekdays_only(index: pd.DatetimeIndex, offsets: np.ndarray, keys: Sequence[str]) -> str | None:
    """Partitions of daily times that never fall on a weekend over a week or more, beside
    ones that do (a table of weekdays only is ``B`` already). In numpy over the partitions'
    offsets: a daily table of 10 million rows is checked as it is prepared."""
    at = _starts(offsets)
    weekend = np.logical_or.reduceat(np.asarray(index.day_of_week >= 5), at)
    stamps = index.as_unit("ns").asi8
    span = np.maximum.reduceat(stamps, at) - np.minimum.reduceat(stamps, at)
    odd = ~weekend & (np.diff(offsets) >= 6) & (span >= 7 * 86_400 * 10**9)
    if not odd.any():
        return None
    first = int(np.flatnonzero(odd)[0])
    return (
        f"{int(odd.sum())} partition(s) have times on weekdays only (e.g. '{keys[first]}') in "
        f"a table of daily times: the table's one frequency is 1D, so their forecasts fall on "
        f"weekends, a day of the week they never trained on; train a table per calendar"
    )


def _fewer_open_days(
    index: pd.DatetimeIndex, offsets: np.ndarray, keys: Sequence[str], frequency: str
) -> str | None:
    """Partitions open on fewer days of the week than the table's ``C-<days>`` frequency
    (their union), over two weeks or more: Monday-to-Friday shops beside ones open on
    Saturdays got ``C-Mon-…-Sat``, and their forecasts fall on Saturdays they never trained
    on (with ``1D`` they were named by ``_weekdays_only``)."""
    local = index.tz_localize(None) if index.tz is not None else index
    at = _starts(offsets)
    bits = np.left_shift(1, np.asarray(local.day_of_week, dtype=np.int64))
    held = np.bitwise_or.reduceat(bits, at)
    wanted = np.bitwise_or.reduce(bits)
    stamps = local.as_unit("ns").asi8
    span = np.maximum.reduceat(stamps, at) - np.minimum.reduceat(stamps, at)
    odd = (held != wanted) & (np.diff(offsets) >= 6) & (span >= 14 * 86_400 * 10**9)
    if not odd.any():
        return None
    first = int(np.flatnonzero(odd)[0])
    days = ", ".join(_DAYS[d] for d in range(7) if held[first] >> d & 1)
    return (
        f"{int(odd.sum())} partition(s) have times on fewer days of the week than the table "
        f"(frequency {frequency}), e.g. '{keys[first]}' on {days} only: their forecasts "
        "fall on days they never trained on; train a table per calendar"
    )


def _other_weekdays(
    local: pd.DatetimeIndex,
    index: pd.DatetimeIndex,
    offsets: np.ndarray,
    keys: Sequence[str],
    frequency: str,
) -> str | None:
    """Partitions of weekly times on more than one day of the week: one Wednesday posted
    among Mondays moved every later forecast to Wednesdays (a forecast steps from the
    partition's last time), and nothing said so. Each partition keeps its own day (stores
    reporting on Mondays beside stores reporting on Sundays is one calendar per partition)."""
    at = _starts(offsets)
    day = np.asarray(local.day_of_week)
    odd = np.minimum.reduceat(day, at) != np.maximum.reduceat(day, at)
    if not odd.any():
        return None
    first = int(np.flatnonzero(odd)[0])
    rows = slice(int(at[first]), int(at[first]) + int(offsets[first + 1] - offsets[first]))
    usual = int(np.bincount(day[rows], minlength=7).argmax())
    off = rows.start + int(np.flatnonzero(day[rows] != usual)[0])
    return (
        f"{int(odd.sum())} partition(s) have weekly times on more than one day of the week "
        f"(e.g. '{keys[first]}' at {_day(index, off)}, a {_DAYS[day[off]]} among "
        f"{_DAYS[usual]}s): the table's one frequency is {frequency}, so forecasts step from "
        f"such a partition's last time, off its calendar, and calendar features are read from "
        f"those dates; {_ADVICE}"
    )


def _starts(offsets: np.ndarray) -> np.ndarray:
    """Each partition's first row, counted from the table's: what ``reduceat`` groups by."""
    return np.asarray(offsets[:-1], dtype=np.int64) - int(offsets[0])


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _day(index: pd.DatetimeIndex, i: int) -> str:
    return str(time_to_json(index[i]))
