"""Time-series features, computed for a whole table at once: calendar parts, the table's
frequency and the times of future steps. Target lags and rolling statistics live in
``manymodels.lagfeatures``.

Training derives them in ``data.prepare`` (calendar parts before the split); forecasting derives
the same features for future times from what each version recorded
(``training.schema.feature_schema``). Everything here is vectorised over rows; nothing is per
partition.

Times are either dates (``datetime64``, possibly with a time zone) or numbers (period indexes).
The table's frequency is inferred by ``manymodels.frequencies``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from manymodels import local_hours
from manymodels.weekdays import offset_of, shift_each_date, shift_open

Frequency = str | int | float
_CUSTOM_MONTHS = (pd.offsets.CustomBusinessMonthBegin, pd.offsets.CustomBusinessMonthEnd)


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
    median = float(np.median(steps[keep]))
    if not _regular(frequency) or _scattered(steps[keep] / median):
        return None  # irregular event times: no frequency to step unlike
    # a partition's smallest step: gaps (a month missing) only make steps longer
    own = pd.Series(steps[keep]).groupby(part[1:][keep]).min()
    ratio = own.to_numpy() / median
    odd = (ratio < 0.8) | ((ratio > 1.25) & (np.abs(ratio - np.round(ratio)) > 0.1))
    if not odd.any():
        return None
    first = int(np.flatnonzero(odd)[0])
    return (
        f"{int(odd.sum())} partition(s) step unlike the table (frequency {frequency}), e.g. "
        f"'{keys[int(own.index[first])]}', whose times are {ratio[first]:.2g}× as far apart: "
        f"their lags and forecasts step at {frequency}; train a table per frequency"
    )


def _scattered(ratio: np.ndarray) -> bool:
    """Whether the steps (each over the table's median step) are those of events (a click, a
    purchase) rather than of periods: fewer than half of them a whole number of periods, and
    fewer than half of one of five lengths (to 5 %). Event times' median step rounds to a
    frequency people name when they are whole minutes or seconds (``218min``), and 85 % of
    3,000 users' partitions were warned about as stepping "unlike the table", told to train a
    table per frequency. Periods with gaps, months of 28 to 31 days and business days (1 or
    3 days) are whole numbers of periods nearly always, and a table of daily, weekly and
    monthly partitions (its median weekly: the days and months are not whole weeks) steps by
    a few lengths; scattered times (exponential spacing) do neither."""
    whole = (ratio > 0.8) & (np.abs(ratio - np.round(ratio)) <= 0.1)
    if whole.mean() >= 0.5:
        return False
    _, counts = np.unique(np.round(np.log(ratio) / 0.05), return_counts=True)
    return bool(np.sort(counts)[-5:].sum() < 0.5 * len(ratio))


def _regular(frequency: Frequency | None) -> bool:
    """A frequency people name (days, hours, month starts…), not a median of scattered times
    (``206926283431540ns``)."""
    if frequency is None or isinstance(frequency, float):
        return False
    if isinstance(frequency, int):
        return True
    return not frequency.endswith(("ns", "us", "ms"))


def time_zone(time: Any) -> str | None:
    """The zone of zone-aware times (``Europe/Berlin``), for ``advance``; ``None`` otherwise.
    A version records it: its last time is kept as ISO text, whose offset (``+01:00``) is
    not the zone."""
    first = time[0] if len(time) else None
    tz = getattr(first, "tz", None) or getattr(getattr(time, "dtype", None), "tz", None)
    return str(tz) if tz is not None else None


def advance(
    last: Sequence[Any],
    frequency: Frequency,
    horizon: int,
    zone: str | None = None,
    holidays: Sequence[str] = (),
) -> Any:
    """The next ``horizon`` times after each of ``last``, partition-major: rows
    ``p * horizon : (p + 1) * horizon`` continue ``last[p]``. A ``DatetimeIndex`` for dates
    (``last`` as ISO text or timestamps), a numpy array for periods.

    In a time ``zone`` days are calendar days: daily data at local midnight stays at local
    midnight across a change of daylight saving time (a fixed 24 hours landed at 01:00), and
    the times are in that zone, not a fixed offset. Business days (``B``, ``C-<days>``) skip
    ``holidays`` (the version's plan records the spec's)."""
    if isinstance(frequency, str):
        if zone:
            base = pd.DatetimeIndex(pd.to_datetime(list(last), format="ISO8601", utc=True))
            base = base.tz_convert(zone)
        else:
            base = pd.DatetimeIndex(pd.to_datetime(list(last), format="ISO8601"))
        step, within = step_offset(frequency, base.tz is not None, holidays)
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
    step = decimal_places(frequency)
    rows = out.reshape(len(start), horizon)
    for p, value in enumerate(start.tolist()):
        decimals = max(step, decimal_places(value))
        if decimals < 15:
            rows[p] = np.round(rows[p], decimals)
    return out


def decimal_places(value: Any) -> int:
    """The digits after the point in a number's shortest repr (``0.1`` → 1; 15 when it is
    written with an exponent or is not finite: no rounding then)."""
    text = repr(float(value))
    if "e" in text or "n" in text:  # 1e-07, nan, inf
        return 15
    return len(text.partition(".")[2].rstrip("0"))


def step_offset(frequency: str, zoned: bool, holidays: Sequence[str] = ()) -> tuple[Any, Any]:
    """``(step, within)`` of a date frequency: the offset one period moves by, and for an
    anchored-plus-days frequency ("MS+14D": month starts, 14 days on) the days within the
    anchor's period (else ``None``). In a time zone days are calendar days (see ``advance``)."""
    anchor, plus, days = frequency.partition("+")
    step = offset_of(anchor, holidays)
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
        # C-Mon-...-Sat, or B with holidays: vectorised
        return shift_open(base, str(step.weekmask), k, step.holidays)
    if base.tz is None and isinstance(step, _CUSTOM_MONTHS):  # BMS, 3BME with holidays
        return shift_each_date(base, step * k)
    if base.tz is None or isinstance(step, pd.offsets.Tick):
        return base + step * k if within is None else (base - within) + step * k + within
    wall = shift(base.tz_localize(None), step, within, k)
    if local_hours.is_local_step(step):
        return local_hours.on_grid(wall, base.tz, step, forward=k > 0)
    return _localize(wall, base.tz)


def _localize(wall: pd.DatetimeIndex, tz: Any) -> pd.DatetimeIndex:
    first = np.ones(len(wall), dtype=bool)  # a repeated wall time: its summer-time instant
    return wall.tz_localize(tz, nonexistent="shift_forward", ambiguous=first)


def retreat(
    times: Sequence[Any],
    frequency: Frequency,
    zone: str | None = None,
    holidays: Sequence[str] = (),
) -> Any:
    """The period before each of ``times``, as ``advance`` would step from it to each — or
    NaT / NaN where no period steps to it (a time off the series' steps). Vectorised: one
    ``advance`` back over every time."""
    if not isinstance(frequency, str):
        return np.asarray(times, dtype=np.float64) - float(frequency)
    base = pd.DatetimeIndex(pd.to_datetime(list(times), format="ISO8601", utc=bool(zone)))
    if zone:
        base = base.tz_convert(zone)
    step, within = step_offset(frequency, base.tz is not None, holidays)
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
