"""Time-series features, computed for a whole table at once: calendar parts, the table's
frequency and the times of future steps. Target lags and rolling statistics live in
``manymodels.lagfeatures``.

Training derives them in ``data.prepare`` (calendar parts before the split); forecasting derives
the same features for future times from what each version recorded
(``training.schema.feature_schema``). Everything here is vectorised over rows; nothing is per
partition.

Times are either dates (``datetime64``, possibly with a time zone) or numbers (period indexes).
The frequency of a dated table is an offset alias: month, quarter and year starts or ends when
every time sits on one (``MS``, ``QE`` …), a month or quarter start and a number of days when
every time sits on the same day of its month (``MS+14D``: the 15th), business days (``B``:
daily on weekdays only, at one time of day, over a week or more) and a month's first or
last business day (``BMS``, ``BME``), whole months (``6MS``, ``3MS+14D``:
``month_steps``), else the median spacing, ``7D`` for weekly data; a
numbered table's frequency is its median step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from pandas.tseries.frequencies import to_offset

from manymodels import local_hours
from manymodels.local_hours import local_clock_hours
from manymodels.month_steps import month_multiple, semi_month
from manymodels.weekdays import offset_of, shift_open, week_calendar

Frequency = str | int | float

_DAY = 86_400 * 10**9  # nanoseconds
# (shortest, longest spacing in days, start alias, end alias, start test, end test)
_ANCHORED = (
    (28, 31, "MS", "ME", "is_month_start", "is_month_end"),
    (89, 92, "QS", "QE", "is_quarter_start", "is_quarter_end"),
    (365, 366, "YS", "YE", "is_year_start", "is_year_end"),
)


def is_datetime(values: Any) -> bool:
    """Dates (naive or zone-aware), as opposed to numbered periods."""
    if ptypes.is_datetime64_any_dtype(values):
        return True
    arr = np.asarray(values)
    return arr.dtype == object and len(arr) > 0 and isinstance(arr[0], pd.Timestamp)


def calendar_values(times: Any, parts: Sequence[str]) -> dict[str, np.ndarray]:
    """``{part: int64 array}`` for dates; ``week`` is the ISO week, ``day_of_week`` Monday = 0."""
    index = pd.DatetimeIndex(times)
    out: dict[str, np.ndarray] = {}
    for part in parts:
        if part == "week":
            out[part] = index.isocalendar()["week"].to_numpy(dtype=np.int64)
        else:
            out[part] = np.asarray(getattr(index, part), dtype=np.int64)
    return out


def infer_frequency(time: Any, offsets: np.ndarray) -> Frequency | None:
    """The median spacing of consecutive times within partitions (repeated times ignored), as
    an offset alias for dates or a number for periods; ``None`` when no partition has two
    distinct times."""
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
    return _date_frequency(int(median), index)


def _written_step(median: float) -> float:
    """2.8 - 2.7 is 0.10000000000000009: the step as written (0.1) when rounding to 12
    digits gives a short decimal; the median itself otherwise (a third stays exact)."""
    rounded = float(f"{median:.12g}")
    return rounded if _decimals(rounded) <= 9 else median


def _stamps(time: Any) -> np.ndarray:
    """Times as exact numbers: int64 nanoseconds for dates, the values themselves otherwise
    (as float64, nanoseconds of today's dates, or integers past 2**53, that differ by less
    than a few hundred would compare equal)."""
    if is_datetime(time):
        return pd.DatetimeIndex(time).as_unit("ns").asi8
    return np.asarray(time)


def comparable_times(time: Any) -> np.ndarray:
    """``time`` as exact numbers that order as the times do (see ``_stamps``)."""
    return _stamps(time)


def later_than(time: Any, offsets: np.ndarray, cutoffs: Sequence[Any]) -> np.ndarray:
    """Which of ``time``'s rows come after their partition's cutoff (``cutoffs[p]``: a time
    as ``time_to_json`` writes it, or ``None``: no row of that partition), compared exactly
    — nanoseconds for dates (in UTC when zone-aware), the values otherwise — in one pass
    over the column, not one per partition."""
    sizes = np.diff(offsets)
    known = np.array([c is not None for c in cutoffs], dtype=bool)
    out = np.zeros(len(time), dtype=bool)
    if not known.any():
        return out
    given = [c for c in cutoffs if c is not None]
    if is_datetime(time):
        zoned = time_zone(time) is not None
        parsed = pd.DatetimeIndex(pd.to_datetime(given, format="ISO8601", utc=zoned))
        bounds = np.full(len(cutoffs), np.iinfo(np.int64).max, dtype=np.int64)
        bounds[known] = parsed.as_unit("ns").asi8
    else:
        bounds = np.full(len(cutoffs), np.inf)
        bounds[known] = np.asarray(given, dtype=np.float64)
    return np.asarray(_stamps(time) > np.repeat(bounds, sizes))


def latest_time(time: Any, rows: np.ndarray) -> str | int | float | None:
    """The latest of ``time``'s ``rows`` as JSON (``time_to_json``); ``None`` without rows."""
    if not len(rows):
        return None
    stamps = _stamps(time)[rows]
    at = int(rows[int(np.argmax(stamps))])
    return time_to_json(time[at])


def repeated_times(
    time: Any, offsets: np.ndarray, keys: Sequence[str], needs: str = "target lags"
) -> str | None:
    """What is wrong when some partition holds two rows at one time (``time`` sorted within
    each partition), or ``None``. A lag is "the target one period before"; with two rows in
    a period it is whichever row the sort put first, so the model depended on the input's
    row order — which the data fingerprint ignores."""
    stamps = _stamps(time)
    if len(stamps) < 2:
        return None
    part = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    same = (part[1:] == part[:-1]) & (stamps[1:] == stamps[:-1])
    if not same.any():
        return None
    first = int(np.flatnonzero(same)[0])
    where = int(part[first])
    n = len(np.unique(part[1:][same]))
    at = time_to_json(np.asarray(time)[first]) if is_datetime(time) else time[first]
    return (
        f"{n} partition(s) hold two or more rows at one time, e.g. '{keys[where]}' at {at}: "
        f"{needs} need one row per period — sum or average such rows, or drop the duplicates"
    )


def off_frequency(
    time: Any, offsets: np.ndarray, frequency: Frequency | None, keys: Sequence[str]
) -> str | None:
    """A warning naming the partitions whose own median spacing is neither the table's (its
    median) nor a multiple of it (gaps), or ``None``. Weekly and monthly partitions in one
    table got one frequency, and the weekly ones' forecasts stepped by months, silently."""
    stamps = _stamps(time).astype(np.float64)  # to subtract
    n_parts = len(offsets) - 1
    if len(stamps) < 2 or n_parts < 2:
        return None
    part = np.repeat(np.arange(n_parts), np.diff(offsets))
    steps = np.diff(stamps)
    keep = (part[1:] == part[:-1]) & (steps > 0)
    if not keep.any():
        return None
    if not _regular(frequency):  # irregular event times: no frequency to step unlike
        return None
    # a partition's smallest step: gaps (a month missing) only make steps longer
    own = pd.Series(steps[keep]).groupby(part[1:][keep]).min()
    ratio = own.to_numpy() / float(np.median(steps[keep]))
    odd = (ratio < 0.8) | ((ratio > 1.25) & (np.abs(ratio - np.round(ratio)) > 0.1))
    if not odd.any():
        return None
    first = int(np.flatnonzero(odd)[0])
    return (
        f"{int(odd.sum())} partition(s) step unlike the table (frequency {frequency}), e.g. "
        f"'{keys[int(own.index[first])]}', whose times are {ratio[first]:.2g}× as far apart: "
        f"their lags and forecasts step at {frequency}; train a table per frequency"
    )


def _regular(frequency: Frequency | None) -> bool:
    """A frequency people name (days, hours, month starts…), not a median of scattered times
    (``206926283431540ns``)."""
    if frequency is None or isinstance(frequency, float):
        return False
    if isinstance(frequency, int):
        return True
    return not frequency.endswith(("ns", "us", "ms"))


def _date_frequency(median_ns: int, index: pd.DatetimeIndex) -> str:
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
            if start == "MS" and (business := _business_month(index)) is not None:
                return business
            if start != "MS" and (other := _other_anchor(index, start, end)) is not None:
                return other
            quarters = start == "QS" and bool(np.all(index.month % 3 == 1))  # Jan, Apr…
            if (start == "MS" or quarters) and (shifted := _same_day_of_month(index)) is not None:
                return f"{start}+{shifted}D"
    if (months := month_multiple(median_ns, index) or semi_month(median_ns, index)) is not None:
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


def _business_month(index: pd.DatetimeIndex) -> str | None:
    """``BME`` / ``BMS`` when every time is its month's last / first business day, at one
    time of day (a month end on a Saturday is reported on the Friday): stepped by ``30D`` or
    ``31D``, they ran off the calendar."""
    if len(index) == 0 or not _one_time_of_day(index):
        return None
    naive = index.tz_localize(None) if index.tz is not None else index
    days = naive.normalize()
    for alias, offset in (("BME", pd.offsets.BMonthEnd(0)), ("BMS", pd.offsets.BMonthBegin(0))):
        if bool(np.all((days + offset) == days)):
            return alias
    return None


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


def time_zone(time: Any) -> str | None:
    """The zone of zone-aware times (``Europe/Berlin``), for ``advance``; ``None`` otherwise.
    A version records it: its last time is kept as ISO text, whose offset (``+01:00``) is
    not the zone."""
    first = time[0] if len(time) else None
    tz = getattr(first, "tz", None) or getattr(getattr(time, "dtype", None), "tz", None)
    return str(tz) if tz is not None else None


def advance(
    last: Sequence[Any], frequency: Frequency, horizon: int, zone: str | None = None
) -> Any:
    """The next ``horizon`` times after each of ``last``, partition-major: rows
    ``p * horizon : (p + 1) * horizon`` continue ``last[p]``. A ``DatetimeIndex`` for dates
    (``last`` as ISO text or timestamps), a numpy array for periods.

    In a time ``zone`` days are calendar days: daily data at local midnight stays at local
    midnight across a change of daylight saving time (a fixed 24 hours landed at 01:00), and
    the times are in that zone, not a fixed offset."""
    if isinstance(frequency, str):
        if zone:
            base = pd.DatetimeIndex(pd.to_datetime(list(last), format="ISO8601", utc=True))
            base = base.tz_convert(zone)
        else:
            base = pd.DatetimeIndex(pd.to_datetime(list(last), format="ISO8601"))
        step, within = step_offset(frequency, base.tz is not None)
        if base.tz is not None and local_hours.is_local_step(step):
            return local_hours.advance(base, step, horizon)  # 3h-local: a skipped 02:00 no step
        shifted = [shift(base, step, within, k) for k in range(1, horizon + 1)]
        by_step = shifted[0].append(shifted[1:])  # step-major: all partitions' step 1, then 2 …
        order = np.arange(len(base) * horizon).reshape(horizon, len(base)).T.ravel()
        return by_step[order]
    start = np.asarray(last, dtype=np.float64)
    out = (start[:, None] + float(frequency) * np.arange(1, horizon + 1)).ravel()
    if isinstance(frequency, int) and np.all(out == np.round(out)):
        return out.astype(np.int64)
    # 2.8 + 3 × 0.1 is 3.0999999999999996: round each partition's steps to the digits its
    # start and the step are written with, so a step matches the 3.1 a future table gives
    step = _decimals(frequency)
    rows = out.reshape(len(start), horizon)
    for p, value in enumerate(start.tolist()):
        decimals = max(step, _decimals(value))
        if decimals < 15:
            rows[p] = np.round(rows[p], decimals)
    return out


def _decimals(value: Any) -> int:
    """The digits after the point in a number's shortest repr (``0.1`` → 1; 15 when it is
    written with an exponent or is not finite: no rounding then)."""
    text = repr(float(value))
    if "e" in text or "n" in text:  # 1e-07, nan, inf
        return 15
    return len(text.partition(".")[2].rstrip("0"))


def step_offset(frequency: str, zoned: bool) -> tuple[Any, Any]:
    """``(step, within)`` of a date frequency: the offset one period moves by, and for an
    anchored-plus-days frequency ("MS+14D": month starts, 14 days on) the days within the
    anchor's period (else ``None``). In a time zone days are calendar days (see ``advance``)."""
    anchor, plus, days = frequency.partition("+")
    step = offset_of(anchor)
    if zoned and isinstance(step, pd.offsets.Day):
        step = pd.DateOffset(days=step.n)
    within = pd.DateOffset(days=int(days.removesuffix("D"))) if plus else None
    return step, within


def shift(base: pd.DatetimeIndex, step: Any, within: Any, k: int) -> pd.DatetimeIndex:
    """``base`` moved ``k`` steps (``step_offset``'s ``step`` and ``within``). In a time zone a
    calendar step (a day, a month) moves the wall clock, and a wall time that a change of
    daylight saving time skips (02:30 on the last Sunday of March in Berlin) becomes the
    first time after it, one it repeats (02:30 in October) its first occurrence — where
    pandas raised, and a forecast crossing the change failed. Fixed steps (hours, minutes)
    move the instant, as before."""
    if base.tz is None and isinstance(step, pd.offsets.CustomBusinessDay):
        return shift_open(base, str(step.weekmask), k)  # C-Mon-...-Sat, vectorised
    if base.tz is None or isinstance(step, pd.offsets.Tick):
        return base + step * k if within is None else (base - within) + step * k + within
    wall = shift(base.tz_localize(None), step, within, k)
    if local_hours.is_local_step(step):
        return local_hours.on_grid(wall, base.tz, step, forward=k > 0)
    return _localize(wall, base.tz)


def _localize(wall: pd.DatetimeIndex, tz: Any) -> pd.DatetimeIndex:
    first = np.ones(len(wall), dtype=bool)  # a repeated wall time: its summer-time instant
    return wall.tz_localize(tz, nonexistent="shift_forward", ambiguous=first)


def retreat(times: Sequence[Any], frequency: Frequency, zone: str | None = None) -> Any:
    """The period before each of ``times``, as ``advance`` would step from it to each — or
    NaT / NaN where no period steps to it (a time off the series' steps). Vectorised: one
    ``advance`` back over every time."""
    if not isinstance(frequency, str):
        return np.asarray(times, dtype=np.float64) - float(frequency)
    base = pd.DatetimeIndex(pd.to_datetime(list(times), format="ISO8601", utc=bool(zone)))
    if zone:
        base = base.tz_convert(zone)
    step, within = step_offset(frequency, base.tz is not None)
    on_wall = not isinstance(step, pd.offsets.Tick) and not local_hours.is_local_step(step)
    if base.tz is not None and on_wall:  # on the wall clock (3h-local: shift skips 02:00)
        wall = base.tz_localize(None)
        wall_back = shift(wall, step, within, -1)
        lands = shift(wall_back, step, within, 1).as_unit("ns").asi8 == wall.as_unit("ns").asi8
        return _localize(wall_back, base.tz).where(lands)
    back = shift(base, step, within, -1)
    lands = shift(back, step, within, 1).as_unit("ns").asi8 == base.as_unit("ns").asi8
    return back.where(lands)


def time_to_json(value: Any) -> str | int | float:
    """A time as JSON: ISO text for dates, a number for periods."""
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
