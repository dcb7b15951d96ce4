"""``local_hours.advance`` before each distinct wall time was placed once: every partition's
wall time at every step placed in the zone on its own (``tz_localize``), ~5× the time of plain
``3h`` at 100,000 partitions.

Kept once, here, for the two that need the old stepping: ``local_hours.py`` times it against
the committed one, and ``tests/test_local_clock_hours.py`` checks that the committed one gives
its times (an oracle). It imports only numpy and pandas, so the test loads it by its path
without the benchmarks' helpers, and no benchmark imports anything of ``tests/``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def stepped_each(base: pd.DatetimeIndex, step: pd.DateOffset, horizon: int) -> pd.DatetimeIndex:
    """The ``horizon`` times after each of ``base`` (one a partition, tz-aware) on a local
    clock's ``step`` (``DateOffset(hours=…)``): a wall time the spring change skips is no
    step, a repeated one is its first instant. The signature of ``local_hours.advance``, so
    the benchmark can put this in its place."""
    hours = int(step.kwds["hours"])
    spare = 2 + (horizon * hours) // (365 * 24)
    wall = base.tz_localize(None)
    first = np.ones(len(base), dtype=bool)
    steps = [
        (wall + pd.Timedelta(hours=hours * k)).tz_localize(
            base.tz, nonexistent="NaT", ambiguous=first
        )
        for k in range(1, horizon + spare + 1)
    ]
    grid = steps[0].append(steps[1:])
    order = np.arange(len(grid)).reshape(horizon + spare, len(base)).T
    exists = ~np.asarray(grid.isna())[order]
    keep = exists & (np.cumsum(exists, axis=1) <= horizon)
    stamps = grid.as_unit("ns").asi8[order[keep]]
    utc = pd.DatetimeIndex(stamps.astype("datetime64[ns]")).tz_localize("UTC")
    return utc.tz_convert(base.tz).as_unit(base.unit)
