"""A zone-aware table's readings every few hours on its zone's clocks (``3h-local``).

Readings at 00:00, 03:00, 06:00 … Berlin time were given the fixed step ``3h`` and moved by
elapsed time, as pandas' ``date_range(freq="3h", tz=…)`` moves: a forecast across a change
of daylight saving time came out at 01:00, 04:00 … (or 13:00 and 01:00 for 12-hourly
readings) for good, and a future table on the local grid was refused. ``{n}h-local`` steps
``n`` hours on the wall clock (``weekdays.offset_of``: ``DateOffset(hours=n)``, which
``timefeatures.shift`` moves on the zone's clocks).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_HOUR = 3_600 * 10**9  # nanoseconds


def local_clock_hours(median_ns: int, index: pd.DatetimeIndex) -> str | None:
    """``{n}h-local`` for zone-aware times ``n`` hours apart (2 to 12, a divisor of a day)
    whose every time sits on the ``n``-hour grid of its zone's clocks from local midnight
    (00:00, 03:00, 06:00 … in Berlin): a local clock's readings. Stepped by ``n`` hours of
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
    clock = np.asarray((local - local.normalize()).asi8)
    if not bool(np.all(clock % (hours * _HOUR) == 0)):
        return None
    return f"{hours}h-local"


def _changes_clocks(index: pd.DatetimeIndex) -> bool:
    """Whether the times' zone changes its UTC offset within a year of the first time (a
    zone with daylight saving time), read at four points a season apart."""
    first = index.min()
    seasons = pd.DatetimeIndex([first + pd.Timedelta(days=91 * k) for k in range(4)])
    offsets = {t.utcoffset() for t in seasons.tz_convert(index.tz)}
    return len(offsets) > 1
