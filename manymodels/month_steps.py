"""A dated table's frequency when its times are a number of months apart other than one,
three or twelve on the calendar's own anchors (``timefeatures`` names those ``MS``, ``QS``,
``YS`` and their fiscal cycles): half-years (``6MS``), two-monthly data (``2MS``), every
other year (``24MS``), quarters on the 15th of February, May, August and November
(``3MS+14D``), a year's February 10th (``12MS+9D``), each quarter's first or last
business day (``3BMS``, ``3BME``).

Such data was given its median spacing (``182D``, ``61D``, ``731D``, ``92D``, ``365D``) and
its forecasts drifted off the calendar: half-years from 2023-07-01 were forecast at
2023-12-30, 2024-06-29 … Months are counted as the calendar counts them (pandas'
``MonthBegin`` and ``MonthEnd``), so a step is always whole months.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from manymodels.weekdays import on_business_month

_DAY = 86_400 * 10**9  # nanoseconds
_MONTH = 365.2425 / 12  # a month's mean length in days
_SLACK = 2.5  # days: n months span n × 30.44 days give or take under two (Jan + Feb: 59)


def month_multiple(
    median_ns: int, index: pd.DatetimeIndex, holidays: Sequence[str] = ()
) -> str | None:
    """``{n}MS`` / ``{n}ME`` when the median spacing is ``n`` ≥ 2 months and every time is
    its month's start (or every one its end), ``{n}BMS`` / ``{n}BME`` its first (last)
    business day (less the spec's ``holidays``); ``{n}MS+{d}D`` when every time falls at
    midnight on the same day of its month (the 2nd to the 28th: every month has it);
    ``None`` otherwise (the caller's fixed step stands)."""
    days = median_ns / _DAY
    months = round(days / _MONTH)
    if months < 2 or abs(days - months * _MONTH) > _SLACK or len(index) == 0:
        return None
    if bool(np.all(index.is_month_start)):
        return f"{months}MS"
    if bool(np.all(index.is_month_end)):
        return f"{months}ME"
    if (business := business_anchor(index, holidays)) is not None:
        return f"{months}{business}"  # 3BMS: each quarter's first business day
    day = index.day
    if (
        bool(np.all(day == day[0]))
        and 2 <= day[0] <= 28
        and bool(np.all(index == index.normalize()))
    ):
        return f"{months}MS+{int(day[0]) - 1}D"
    return None


def business_anchor(index: pd.DatetimeIndex, holidays: Sequence[str] = ()) -> str | None:
    """``BME`` / ``BMS`` when every time is its month's last / first business day, at one
    time of day (a quarter's end on a Saturday is reported on the Friday; with the spec's
    ``holidays``, one on a listed holiday the business day before)."""
    naive = index.tz_localize(None) if index.tz is not None else index
    days = naive.normalize()
    clock = np.asarray(naive - days)
    if not bool(np.all(clock == clock[0])):
        return None
    return on_business_month(days, holidays)


def semi_month(median_ns: int, index: pd.DatetimeIndex) -> str | None:
    """``SMS`` when every time is a month's 1st or 15th, ``SME`` its 15th or last day (pay
    days), at one time of day, about 15 days apart: stepped by ``14D`` or ``15D``, they left
    the calendar at once (2020-04-29, 05-13 after 04-15)."""
    days = median_ns / _DAY
    if not 13 <= days <= 17 or len(index) == 0:
        return None
    naive = index.tz_localize(None) if index.tz is not None else index
    clock = np.asarray(naive - naive.normalize())
    if not bool(np.all(clock == clock[0])):
        return None
    if bool(np.all((naive.day == 1) | (naive.day == 15))):
        return "SMS"
    if bool(np.all((naive.day == 15) | naive.is_month_end)):
        return "SME"
    return None
