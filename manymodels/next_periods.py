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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
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


@dataclass(frozen=True)
class Periods:
    """The next ``reach`` periods after a last time: their keys in order, and each key's
    1-based step (read-only, shared through the cache), so that placing a row is one dict
    look-up. A list's ``index`` made placing the rows of a partition posting 5,000 actuals
    (the reach grows with them) quadratic: ~1 s, 16 s at 20,000."""

    keys: tuple[Any, ...]
    steps: Mapping[Any, int]
    reach: int


def upcoming(
    last: Any, frequency: Any, reach: int, zone: str | None, off: Sequence[str]
) -> Periods:
    """The ``reach`` periods after ``last``, from the cache where ``last`` is hashable and
    ``reach`` modest (for a reach rounded up to a power of two, cut back to ``reach``: the
    k-th period after a time does not depend on how many follow)."""
    if not isinstance(last, str | int | float) or reach > CACHED_REACH:  # not kept
        keys, steps = _indexed(last, frequency, reach, zone, tuple(off))
    else:
        kept = 1 << max(reach - 1, 7).bit_length()
        keys, steps = _cached(last, frequency, kept, zone, tuple(off))
    return Periods(keys[:reach], steps, reach)


def _indexed(
    last: Any, frequency: Any, reach: int, zone: str | None, off: tuple[str, ...]
) -> tuple[tuple[Any, ...], Mapping[Any, int]]:
    keys = tuple(as_keys(timefeatures.advance([last], frequency, reach, zone, off)))
    steps = {key: n for n, key in reversed(list(enumerate(keys, 1)))}  # the first of equals
    return keys, MappingProxyType(steps)


_cached = lru_cache(maxsize=1024)(_indexed)


def step(value: Any, periods: Periods, frequency: Any, aware: bool) -> int | None:
    """Which of the next ``periods`` ``value`` is (1-based), or ``None``."""
    key = time_key(value, frequency, aware)
    if key is None:
        return None
    n = periods.steps.get(key)
    return n if n is not None and n <= periods.reach else None


def time_key(value: Any, frequency: Any, aware: bool) -> int | float | None:
    """``timekeys.time_key``, a text time read once: a score table's partitions repeat the
    same few dates, and reading one costs ~0.2-1 ms (``changes`` reads its times here too)."""
    if isinstance(value, str):
        return _text_key(value, frequency, aware)
    return timekeys.time_key(value, frequency, aware)


@lru_cache(maxsize=65536)
def _text_key(value: str, frequency: Any, aware: bool) -> int | float | None:
    """``timekeys.time_key`` of a text time, read once."""
    return timekeys.time_key(value, frequency, aware)
