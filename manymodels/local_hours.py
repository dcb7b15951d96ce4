"""A zone-aware table's readings every few hours on its zone's clocks (``3h-local``).

Readings at 00:00, 03:00, 06:00 … Berlin time were given the fixed step ``3h`` and moved by
elapsed time, as pandas' ``date_range(freq="3h", tz=…)`` moves: a forecast across a change
of daylight saving time came out at 01:00, 04:00 … (or 13:00 and 01:00 for 12-hourly
readings) for good, and a future table on the local grid was refused. ``{n}h-local`` steps
``n`` hours on the wall clock (``weekdays.offset_of``: ``DateOffset(hours=n)``, which
``timefeatures.shift`` moves on the zone's clocks).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_HOUR = 3_600 * 10**9  # nanoseconds
_NAT = np.iinfo(np.int64).min  # NaT among int64 times


def local_clock_hours(median_ns: int, index: pd.DatetimeIndex) -> str | None:
    """``{n}h-local`` for zone-aware times ``n`` hours apart (2 to 12, a divisor of a day)
    whose every time sits on one ``n``-hour grid of its zone's clocks (00:00, 03:00, 06:00 …
    in Berlin; or 06:00 and 18:00, 06:00, 14:00 and 22:00: a grid need not hold midnight,
    such twice-daily readings were forecast at 07:00 and 19:00 after the spring change):
    a local clock's readings. Stepped by ``n`` hours of
    elapsed time (pandas' ``date_range(freq="3h", tz=…)``), forecasts across a change of
    daylight saving time left that grid for good (01:00, 04:00 … after the spring change;
    12-hourly 13:00 and 01:00). Times ``n`` hours of elapsed time apart across a change
    (UTC readings shown in the zone) leave the local grid there, so they keep ``{n}h``."""
    if index.tz is None or median_ns % _HOUR or len(index) == 0:
        return None
    hours = median_ns // _HOUR
    if not 2 <= hours <= 12 or 24 % hours:
        return None
    if not _changes_clocks(index):
        return None  # UTC, a fixed offset, Tokyo: elapsed hours are its clocks' hours
    local = index.tz_localize(None).as_unit("ns")
    clock = np.asarray((local - local.normalize()).asi8) % (hours * _HOUR)
    if not bool(np.all(clock == clock[0])):  # 06:00 and 18:00 too: a grid off midnight
        return None
    return f"{hours}h-local"


def _changes_clocks(index: pd.DatetimeIndex) -> bool:
    """Whether the times' zone changes its UTC offset within a year of the first time (a
    zone with daylight saving time), read once a week: Casablanca's clocks go back for
    Ramadan only, about a month, which four points a season apart missed (its readings,
    both offsets among them, were stepped by elapsed hours, 04:00 and 07:00 after the
    change back)."""
    weeks = index.min() + pd.to_timedelta(np.arange(54) * 7, unit="D")
    local = weeks.tz_localize(None).as_unit("ns").asi8
    return len(np.unique(local - weeks.tz_convert("UTC").tz_localize(None).as_unit("ns").asi8)) > 1


def is_local_step(step: Any) -> bool:
    """Whether ``step`` (``weekdays.offset_of``'s) is ``{n}h-local``'s wall-clock hours."""
    # type, not isinstance: pandas deprecates isinstance(Day(1), DateOffset) with a warning
    return type(step) is pd.DateOffset and set(step.kwds) == {"hours"} and step.n == 1


def on_grid(
    wall: pd.DatetimeIndex, tz: Any, step: pd.DateOffset, forward: bool
) -> pd.DatetimeIndex:
    """Wall times ``wall`` in ``tz``; one that the spring change skips (02:00 in Berlin
    on a 2-hour grid, 03:00 in Helsinki on a 3-hour one) becomes the grid's next time
    after it (``forward``) or the one before it: a local clock never shows 02:00 that
    night, and its readings go from 00:00 to 04:00 (shifted forward to 03:00, the step was
    off the grid, and a reading at 04:00 was warned of as a gap). A repeated wall time is
    its first (summer-time) instant, as ``timefeatures.shift`` takes it."""
    first = np.ones(len(wall), dtype=bool)
    out = wall.tz_localize(tz, nonexistent="NaT", ambiguous=first)
    for _ in range(3):  # a skipped hour is one grid time, two where a change is of 2 hours
        skipped = np.asarray(out.isna())
        if not skipped.any():
            break
        wall = wall.where(~skipped, wall + step if forward else wall - step)
        out = wall.tz_localize(tz, nonexistent="NaT", ambiguous=first)
    return out


def advance(base: pd.DatetimeIndex, step: pd.DateOffset, horizon: int) -> pd.DatetimeIndex:
    """The next ``horizon`` grid times after each of zone-aware ``base``, partition-major,
    skipping the wall times a spring change skips (``on_grid``): counted along the clock,
    a skipped time takes no step of the horizon. Vectorised: ``horizon`` plus a spare step
    for each spring change the horizon can cross, then each partition's first ``horizon``
    that exist. Each distinct wall time is placed in the zone once (``lattice``), not once
    per partition and step: that placing was most of the time, ~5× plain ``3h``'s."""
    hours = int(step.kwds["hours"])
    width = horizon + 2 + (horizon * hours) // (365 * 24)
    unit = base.unit
    stride = int(np.timedelta64(hours, "h").astype(f"m8[{unit}]").astype(np.int64))
    times, starts = lattice(np.asarray(base.tz_localize(None).asi8), stride, width)
    first = np.ones(len(times), dtype=bool)  # a repeated wall time: its first instant
    local = pd.DatetimeIndex(times.view(f"M8[{unit}]"))
    placed = np.asarray(local.tz_localize(base.tz, nonexistent="NaT", ambiguous=first).asi8)
    skipped = np.concatenate(([0], np.cumsum(placed == _NAT)))
    take = starts[:, None] + np.arange(horizon)
    short = skipped[starts + horizon] > skipped[starts]  # a skipped time within the horizon
    if short.any():
        some = _first_existing(placed, starts[short], horizon, width)
        if len(some) == int(short.sum()) * horizon:  # each its horizon (at most that)
            take[short] = some.reshape(-1, horizon)
        else:  # more skipped than spare steps (Samoa skipped a day): each its own count
            take = _first_existing(placed, starts, horizon, width)
    stamps = placed[take.ravel()]  # since 1970 in UTC, in the base's unit
    utc = pd.DatetimeIndex(stamps.view(f"M8[{unit}]"), dtype=pd.DatetimeTZDtype(unit, "UTC"))
    return utc.tz_convert(base.tz)


def _first_existing(placed: np.ndarray, starts: np.ndarray, horizon: int, width: int) -> np.ndarray:
    """Positions among ``placed`` of each run's first ``horizon`` times that exist (not NaT),
    run after run; a run is ``width`` times from each of ``starts``."""
    window = starts[:, None] + np.arange(width)
    exists = placed[window] != _NAT
    return window[exists & (np.cumsum(exists, axis=1) <= horizon)]


def lattice(wall: np.ndarray, stride: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct wall times ``wall + k × stride`` (``k`` 1 to ``width``) and, for each
    of ``wall``, where its ``width`` times start among them. Times on one grid (a phase
    modulo ``stride``) form one run from the earliest to the latest, so partitions that end
    together share theirs: 100,000 partitions on Berlin's 3-hour grid place a few thousand
    times in the zone, not 100,000 × ``width``. When the runs would hold more times than
    that (a few partitions years apart), each time has a run of its own."""
    phases, which = np.unique(wall % stride, return_inverse=True)
    low = np.full(len(phases), np.iinfo(np.int64).max)
    high = np.full(len(phases), np.iinfo(np.int64).min)
    np.minimum.at(low, which, wall)
    np.maximum.at(high, which, wall)
    sizes = (high - low) // stride + width
    if int(sizes.sum()) >= len(wall) * width:
        starts = np.arange(len(wall), dtype=np.int64) * width
        return (wall[:, None] + stride * np.arange(1, width + 1)).ravel(), starts
    firsts = np.cumsum(sizes) - sizes  # each phase's run's place among the times
    run = np.repeat(np.arange(len(phases)), sizes)
    times = np.repeat(low, sizes) + stride * (np.arange(len(run)) - firsts[run] + 1)
    return times, firsts[which] + (wall - low[which]) // stride
