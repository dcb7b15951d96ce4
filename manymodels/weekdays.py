"""A dated table open on some days of the week only: a shop closed on Sundays (Monday to
Saturday), a market on Mondays, Wednesdays and Fridays. Its frequency is a custom business
day of those days, written ``C-Mon-Tue-Wed-Thu-Fri-Sat`` (pandas' ``C`` alias has no
weekdays of its own: its offset is ``CustomBusinessDay(weekmask=...)``).

Such data was given a fixed step (``1D``, ``2D``): a forecast after a Saturday fell on the
Sunday the shop is closed, one after Friday's market on Sunday and Tuesday, and the lag-gap
check warned of every closed day. Monday-to-Friday data keeps its ``B``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

_DAY = 86_400 * 10**9  # nanoseconds
_BUSINESS_MONTH = re.compile(r"(\d*)(BMS|BME)")  # BMS, 3BME: a month's first / last business day
_CUSTOM_MONTHS = {
    "BMS": pd.offsets.CustomBusinessMonthBegin,
    "BME": pd.offsets.CustomBusinessMonthEnd,
}
_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def week_calendar(median_ns: int, index: pd.DatetimeIndex) -> str | None:
    """``C-<days>`` when consecutive times are one to three days apart (median), at one time
    of day, over two weeks or more (each closed day crossed twice, not merely unseen), and
    some days of the week never hold a time; ``None`` otherwise (Monday to Friday is ``B``,
    named by the caller)."""
    if not _DAY <= median_ns <= 3 * _DAY or len(index) < 6:
        return None
    local = index.tz_localize(None) if index.tz is not None else index
    clock = np.asarray(local - local.normalize())
    if not bool(np.all(clock == clock[0])) or (local.max() - local.min()) < pd.Timedelta(days=14):
        return None
    open_days = np.unique(np.asarray(local.day_of_week))
    if len(open_days) in (0, 7) or list(open_days) == [0, 1, 2, 3, 4]:
        return None
    if not _next_open_days(local, open_days):
        return None  # every 3 days (Mon, Thu, Sun, Wed, Sat, Tue): a fixed step, no week
    return "C-" + "-".join(_NAMES[d] for d in open_days)


def _next_open_days(local: pd.DatetimeIndex, open_days: np.ndarray) -> bool:
    """Whether most consecutive times (a week apart or less: not a partition's first) are the
    next open day (``open_days``: Monday 0) after the one before, as a shop's are (a holiday
    now and then skips one). Six times every 3 days over 15 days left a Friday unseen and
    were given ``C-…`` without Fridays: forecasts came daily, not every 3 days. Integer
    arithmetic on day numbers (``np.busday_count`` took 7 s over 10 million rows)."""
    days = local.as_unit("ns").asi8 // _DAY  # since 1970-01-01, a Thursday
    weekday = (days + 3) % 7
    is_open = np.zeros(14, dtype=bool)
    is_open[open_days] = is_open[open_days + 7] = True
    # days from each weekday to the next open one (1 to 7)
    ahead = np.array([1 + int(np.argmax(is_open[w + 1 : w + 8])) for w in range(7)])
    step = np.diff(days)
    near = (step > 0) & (step <= 7)
    if not near.any():
        return False
    return bool(np.mean(step[near] == ahead[weekday[:-1][near]]) >= 0.5)


def weekmask(alias: str) -> str | None:
    """The weekmask of a ``C-<days>`` alias (``Mon Tue Wed``), ``B``'s for ``B``, else
    ``None``."""
    if alias == "B":
        return "Mon Tue Wed Thu Fri"
    if alias.startswith("C-"):
        return " ".join(alias[2:].split("-"))
    return None


def takes_holidays(frequency: Any) -> bool:
    """Whether a spec's ``holidays`` move this frequency's steps: business days (``B``,
    ``C-<days>``) skip them, a business month's first (last) day (``BMS``, ``3BME``) moves
    past them. Other steps (days, weeks, calendar months) are no business calendar."""
    if not isinstance(frequency, str):
        return False
    return weekmask(frequency) is not None or _BUSINESS_MONTH.fullmatch(frequency) is not None


def offset_of(anchor: str, holidays: Sequence[str] = ()) -> pd.DateOffset:
    """The offset of a frequency's anchor: ``to_offset``'s, a ``CustomBusinessDay`` of a
    ``C-<days>`` alias, or hours on the wall clock of ``{n}h-local`` (both of which
    ``to_offset`` refuses). With ``holidays`` (ISO dates, the spec's) a business-day anchor
    (``B``, ``C-<days>``) is a ``CustomBusinessDay`` that skips them, and a business month's
    (``BMS``, ``3BME``) a ``CustomBusinessMonthBegin`` / ``End`` whose first (last) business
    day is none of them, as pandas' do."""
    if holidays and (mask := weekmask(anchor)) is not None:
        return pd.offsets.CustomBusinessDay(weekmask=mask, holidays=list(holidays))
    if holidays and (month := _BUSINESS_MONTH.fullmatch(anchor)) is not None:
        n = int(month.group(1) or 1)
        return _CUSTOM_MONTHS[month.group(2)](n=n, holidays=list(holidays))
    if anchor.startswith("C-"):
        return pd.offsets.CustomBusinessDay(weekmask=weekmask(anchor))
    if anchor.endswith("h-local"):  # hours on a zone's clocks (local_hours.local_clock_hours)
        return pd.DateOffset(hours=int(anchor.removesuffix("h-local")))
    return to_offset(anchor)


def shift_open(
    base: pd.DatetimeIndex, mask: str, k: int, holidays: Sequence[Any] = ()
) -> pd.DatetimeIndex:
    """Naive ``base`` moved ``k`` open days (``mask``, less ``holidays``), its time of day
    kept, as ``CustomBusinessDay(k)`` moves each (from a closed day, the ``k``-th open day
    after or before it) — vectorised with numpy's business days, where pandas applies that
    offset one time at a time (a ``PerformanceWarning``; seconds at 100,000 partitions)."""
    days = base.normalize()
    clock = base - days
    stamps = days.to_numpy().astype("datetime64[D]")
    if k > 0:
        moved = np.busday_offset(stamps, k, roll="backward", weekmask=mask, holidays=holidays)
    else:
        moved = np.busday_offset(stamps, k, roll="forward", weekmask=mask, holidays=holidays)
    return pd.DatetimeIndex(moved.astype("datetime64[ns]")).as_unit(base.unit) + clock


def shift_each_date(base: pd.DatetimeIndex, offset: pd.DateOffset) -> pd.DatetimeIndex:
    """Naive ``base`` moved by ``offset`` (a ``CustomBusinessMonthBegin`` / ``End``), pandas
    applying it once per distinct time: it has no vectorised form (a ``PerformanceWarning``
    and one Python call per row), and a business month's times are few distinct dates
    however many partitions share them."""
    distinct = base.unique()
    moved = pd.DatetimeIndex([t + offset for t in distinct]).as_unit(base.unit)
    return moved[distinct.get_indexer(base)]


def on_business_month(days: pd.DatetimeIndex, holidays: Sequence[str] = ()) -> str | None:
    """``BME`` / ``BMS`` when every one of midnight ``days`` is its month's last / first
    business day; with ``holidays``, one a listed holiday moved (Thursday 2025-01-02 when
    New Year's Day is listed) is one too. The plain test is vectorised; only the dates it
    refuses are tried against the holidays, and at most one per listed holiday can fit (a
    holiday moves one month's first or last day), so a table of other dates costs no more
    than ``len(holidays)`` of pandas' one-date steps."""
    for alias, offset in (("BME", pd.offsets.BMonthEnd(0)), ("BMS", pd.offsets.BMonthBegin(0))):
        off = np.asarray((days + offset) != days)
        if not off.any():
            return alias
        if not holidays:
            continue
        odd = days[off].unique()
        if len(odd) > len(holidays):
            continue
        custom = _CUSTOM_MONTHS[alias](n=0, holidays=list(holidays))
        if all(t + custom == t for t in odd):
            return alias
    return None


def unused_holidays(frequency: Any) -> str | None:
    """A warning when the spec lists holidays but the table (its inferred ``frequency``) is
    no business-day series: the version records none (calendar steps, which a holiday
    cannot skip), and a user who expected them skipped hears why, not a forecast landing on
    one. ``None`` for ``B``, ``C-<days>`` and business months (``BMS``, ``3BME``)."""
    if takes_holidays(frequency):
        return None
    shown = frequency if frequency is not None else "irregular"
    return (
        f"holidays are not used: the table's frequency is {shown}, not business days (B, or "
        "C-<days> for some weekdays) nor business months (BMS, BME); holidays only skip "
        "business days"
    )


def rows_on_holidays(
    time: Any, offsets: np.ndarray, keys: Sequence[str], holidays: Sequence[str]
) -> str | None:
    """A warning naming how many partitions have rows on dates the spec lists as holidays,
    and the first: lags count such a row as a period, where forecasts step over the date,
    so the model learnt a calendar its forecasts do not keep. ``None`` when none has. One
    ``isin`` over the table's days."""
    if not holidays or len(time) == 0:
        return None
    index = pd.DatetimeIndex(time)
    local = index.tz_localize(None) if index.tz is not None else index
    days = local.normalize().to_numpy().astype("datetime64[D]")
    on = np.isin(days, np.array(list(holidays), dtype="datetime64[D]"))
    if not on.any():
        return None
    part = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    first = int(np.flatnonzero(on)[0])
    n = len(np.unique(part[on]))
    return (
        f"{n} partition(s) have rows on dates the spec lists as holidays, e.g. "
        f"'{keys[int(part[first])]}' on {days[first]}: lags count them as periods, forecasts "
        "skip them; drop those rows or the dates from holidays"
    )
