"""A table's frequency, inferred from its times: what a forecast steps by and what lags count in.

The frequency of a dated table is an offset alias: month, quarter and year starts or ends when
every time sits on one (``MS``, ``QE`` …), a month or quarter start and a number of days when
every time sits on the same day of its month (``MS+14D``: the 15th), business days (``B``:
daily on weekdays only, at one time of day, over a week or more) and a month's first or
last business day (``BMS``, ``BME``), whole months (``6MS``, ``3MS+14D``:
``month_steps``), else the median spacing, ``7D`` for weekly data; a
numbered table's frequency is its median step.

Apart from ``manymodels.timefeatures`` (calendar parts, and stepping times forward and back
by a frequency) because naming the calendar a table's times sit on is one job of its own,
read once per training; everything here is vectorised over rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from manymodels.local_hours import local_clock_hours
from manymodels.month_steps import business_anchor, month_multiple, semi_month
from manymodels.timefeatures import Frequency, decimal_places, is_datetime
from manymodels.weekdays import week_calendar

_DAY = 86_400 * 10**9  # nanoseconds
# (shortest, longest spacing in days, start alias, end alias, start test, end test)
_ANCHORED = (
    (28, 31, "MS", "ME", "is_month_start", "is_month_end"),
    (89, 92, "QS", "QE", "is_quarter_start", "is_quarter_end"),
    (365, 366, "YS", "YE", "is_year_start", "is_year_end"),
)


def infer_frequency(
    time: Any, offsets: np.ndarray, holidays: Sequence[str] = ()
) -> Frequency | None:
    """The median spacing of consecutive times within partitions (repeated times ignored), as
    an offset alias for dates or a number for periods; ``None`` when no partition has two
    distinct times. A month's first (last) business day that one of the spec's ``holidays``
    moved (2025-01-02 after New Year's Day) is still ``BMS`` (``BME``)."""
    dated = is_datetime(time)
    index = pd.DatetimeIndex(time) if dated else None
    stamps = index.as_unit("ns").asi8 if index is not None else np.asarray(time, dtype=np.float64)
    if len(stamps) < 2:
        return None
    steps = np.diff(stamps)
    within = np.ones(len(steps), dtype=bool)
    starts = np.asarray(offsets[1:-1], dtype=np.int64) - int(offsets[0])
    within[starts[(starts > 0) & (starts <= len(steps))] - 1] = False
    steps = steps[within & (steps > 0)]
    if not len(steps):
        return None
    median = np.median(steps)
    if index is None:
        return int(median) if float(median).is_integer() else _written_step(float(median))
    return _date_frequency(int(median), index, holidays)


def _written_step(median: float) -> float:
    """2.8 - 2.7 is 0.10000000000000009: the step as written (0.1) when rounding to 12
    digits gives a short decimal; the median itself otherwise (a third stays exact)."""
    rounded = float(f"{median:.12g}")
    return rounded if decimal_places(rounded) <= 9 else median


def _date_frequency(median_ns: int, index: pd.DatetimeIndex, holidays: Sequence[str]) -> str:
    days = median_ns / _DAY
    if median_ns == _DAY and _business_days(index):
        return "B"
    if (week := week_calendar(median_ns, index)) is not None:
        return week  # C-Mon-Tue-Wed-Thu-Fri-Sat: a shop closed on Sundays
    for low, high, start, end, is_start, is_end in _ANCHORED:
        if low <= days <= high:
            if bool(np.all(getattr(index, is_start))):
                return start
            if bool(np.all(getattr(index, is_end))):
                return end
            if start == "MS" and (business := business_anchor(index, holidays)) is not None:
                return business
            if start != "MS" and (other := _other_anchor(index, start, end)) is not None:
                return other
            quarters = start == "QS" and bool(np.all(index.month % 3 == 1))  # Jan, Apr…
            if (start == "MS" or quarters) and (shifted := _same_day_of_month(index)) is not None:
                return f"{start}+{shifted}D"
    months = month_multiple(median_ns, index, holidays) or semi_month(median_ns, index)
    if months is not None:
        return months  # 6MS, 3MS+14D, SMS: a step of months, not days
    if median_ns % _DAY == 0:
        return f"{median_ns // _DAY}D"
    if (local_hours := local_clock_hours(median_ns, index)) is not None:
        return local_hours  # 3h-local: 00:00, 03:00 … on the zone's clocks, before and after DST
    return str(to_offset(pd.Timedelta(median_ns, unit="ns")).freqstr)


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _other_anchor(index: pd.DatetimeIndex, start: str, end: str) -> str | None:
    """``QS-MAR`` / ``QE-NOV`` / ``YS-JUL`` / ``YE-JUN`` when every time is a month's start (or
    every one its end) in one cycle of quarters or years that does not begin in January
    (fiscal quarters and years): such data stepped by its median spacing (``2196h``,
    ``365D``) ran off the calendar (March quarters forecast at 03-03, 06-03, 09-03, 12-04)."""
    cycle = 3 if start == "QS" else 12
    first = (int(index.month[0]) - 1) % cycle  # 0 … cycle - 1: where the cycle begins
    if not bool(np.all((index.month - 1) % cycle == first)):
        return None
    if bool(np.all(index.is_month_start)):
        return f"{start}-{_MONTHS[first]}"  # QS-MAR: quarters starting Mar, Jun, Sep, Dec
    if bool(np.all(index.is_month_end)):
        return f"{end}-{_MONTHS[first + 12 - cycle]}"  # QE-NOV: ending Nov, Feb, May, Aug
    return None


def _business_days(index: pd.DatetimeIndex) -> bool:
    """Daily times on weekdays only, at one time of day (midnight, a market's close), over a
    week or more (so a weekend was crossed, not merely unseen): stepped by ``1D``, a
    forecast from a Friday fell on Saturday and Sunday."""
    if len(index) < 6 or bool(np.any(index.day_of_week >= 5)) or not _one_time_of_day(index):
        return False
    return bool((index.max() - index.min()) >= pd.Timedelta(days=7))


def _one_time_of_day(index: pd.DatetimeIndex) -> bool:
    """Every time at the same time of day, as its zone's clocks read it (business offsets
    step by days and keep it)."""
    local = index.tz_localize(None) if index.tz is not None else index
    clock = np.asarray(local - local.normalize())
    return bool(np.all(clock == clock[0]))


def _same_day_of_month(index: pd.DatetimeIndex) -> int | None:
    """Days after the month's start when every time falls on the same day of its month, at
    midnight, between the 2nd and the 28th (``MS+14D``: the 15th of each month): such data
    stepped by a median spacing of ``31D`` ran off the calendar (10-16, …, 07-22 at step 12)."""
    day = index.day
    if len(day) == 0 or not bool(np.all(day == day[0])) or not 2 <= day[0] <= 28:
        return None
    if not bool(np.all(index == index.normalize())):
        return None
    return int(day[0]) - 1
