"""The next periods after a partition's last time, as comparable keys, and which of them a
row's time is: how ``rowlags`` places a row that leaves out its lags (the router's rows, a
``score`` table's).

Kept apart from ``rowlags`` (which fills the rows) because it is a cache with its own
rules: ``score`` fills a table a partition at a time, and its partitions mostly end at one
time and repeat the same few text dates, so the date arithmetic (~3 ms a partition) and the
reading of a text time (~1 ms) are done once for them all. Both caches are bounded, and keyed
only on hashable values that fix the answer: the last time, the frequency, the reach (rounded
up to a power of two), the zone and the holidays.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from manymodels import timefeatures, timekeys

CACHED_REACH = 1024  # a request posting 10,000 actuals keeps no 16,384 periods in the cache


def as_keys(times: Any) -> list[Any]:
    """``advance``'s times as ``timekeys.time_key`` writes a row's: ns for dates, floats for
    numbered periods."""
    if isinstance(times, pd.DatetimeIndex):
        return [t.value for t in times.as_unit("ns")]
    return [float(t) for t in np.asarray(times, dtype=np.float64)]


def upcoming(
    last: Any, frequency: Any, reach: int, zone: str | None, off: Sequence[str]
) -> Sequence[Any]:
    """The keys of the ``reach`` periods after ``last``, from the cache where ``last`` is
    hashable and ``reach`` modest (for a reach rounded up to a power of two, cut back to
    ``reach``: the k-th period after a time does not depend on how many follow)."""
    if not isinstance(last, str | int | float) or reach > CACHED_REACH:  # not kept
        return as_keys(timefeatures.advance([last], frequency, reach, zone, off))
    return _advanced(last, frequency, 1 << max(reach - 1, 7).bit_length(), zone, tuple(off))[:reach]


@lru_cache(maxsize=1024)
def _advanced(
    last: Any, frequency: Any, reach: int, zone: str | None, off: tuple[str, ...]
) -> tuple[Any, ...]:
    return tuple(as_keys(timefeatures.advance([last], frequency, reach, zone, off)))


def step(value: Any, periods: Sequence[Any], frequency: Any, aware: bool) -> int | None:
    """Which of the next ``periods`` ``value`` is (1-based), or ``None``."""
    key = _text_key(value, frequency, aware) if isinstance(value, str) else (
        timekeys.time_key(value, frequency, aware))  # fmt: skip
    return periods.index(key) + 1 if key is not None and key in periods else None


@lru_cache(maxsize=65536)
def _text_key(value: str, frequency: Any, aware: bool) -> int | float | None:
    """``timekeys.time_key`` of a text time, read once."""
    return timekeys.time_key(value, frequency, aware)
