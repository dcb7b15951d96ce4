"""A row's time matched to a series' periods: the key a time compares by, whether a series'
times carry a UTC offset, and what to say when a time is of the other kind.

Rows scored by time (``manymodels.rowlags``, ``manymodels.changes``) name their period by its
time. Dates compare as instants (ns since the epoch, UTC), numbered periods as floats. A date
matches only a series of its kind — with a UTC offset where the series' times have one,
without where they do not: read as UTC, a wall time without its offset would match the
period an offset away, and a number on a dated series would read as ns since 1970.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from manymodels.timefeatures import Frequency


def read_time(value: Any) -> Any:
    """A row's time as a ``pd.Timestamp``: text read as ISO 8601, as ``parse_time`` reads a
    training table's time column. ``pd.Timestamp`` alone guesses at other text, month first
    ('11/04/2024' is November 4th): a row would have matched a period, or taken calendar
    parts, of a date its sender did not mean, where training and a retrain refuse the text.
    Raises ``ValueError`` for text that is not ISO 8601."""
    if isinstance(value, str):
        return pd.to_datetime(value, format="ISO8601")
    return pd.Timestamp(value)


def not_iso(value: Any) -> bool:
    """Whether ``value`` is text that is not an ISO 8601 time (``read_time`` refuses it)."""
    if not isinstance(value, str):
        return False
    try:
        read_time(value)
    except (ValueError, OverflowError):
        return True
    return False


def time_key(value: Any, frequency: Frequency, aware: bool | None = None) -> int | float | None:
    """A time as a comparable key — ns since the epoch (UTC) for dates, a float for periods —
    or ``None`` when it does not read as one: how a row's time is matched to a period. On a
    dated series a number is no time, and with ``aware`` given a date matches only a series
    of its kind: with a UTC offset where the series' times have one, without where they do
    not (``zone_hint`` says which was wrong); read as UTC, a wall time without its offset
    would match the period an offset away."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(frequency, str):
            if isinstance(value, int | float | np.number):  # not read as ns since 1970
                return None
            stamp = read_time(value)
            if stamp is pd.NaT or (aware is not None and (stamp.tzinfo is not None) != aware):
                return None
            return int(stamp.as_unit("ns").value)
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def recorded_aware(time: Any) -> bool:
    """Whether a version's recorded last time (JSON: ISO text, or a number) carries a UTC
    offset: its series' times do, whether or not the version records their zone (versions
    from before zones were recorded carry the offset alone)."""
    if not isinstance(time, str):
        return False
    try:
        return pd.Timestamp(time).tzinfo is not None
    except (TypeError, ValueError, OverflowError):
        return False


def series_clock(zone: str | None, last_time: Any) -> Any:
    """The clock a series' times are on: its ``zone``, or for a version from before zones
    were recorded the offset its last time was written with; ``None`` for a series without
    one (naive dates, or numbered periods). Its times carry a UTC offset exactly when it is
    not ``None``."""
    if zone is not None:
        return zone
    return pd.Timestamp(last_time).tzinfo if recorded_aware(last_time) else None


def zone_hint(value: Any, aware: bool, zone: str | None = None) -> str:
    """Why a date ``value`` is no time of a series whose times carry a UTC offset
    (``aware``; in ``zone`` when known) or do not, when that is the reason: ``""`` otherwise."""
    if isinstance(value, int | float | np.number):
        return ""
    try:
        stamp = read_time(value)
    except (TypeError, ValueError, OverflowError):
        return ""
    if stamp is pd.NaT or (stamp.tzinfo is not None) == aware:
        return ""
    if aware:
        where = f"in {zone}" if zone else "given with their UTC offset"
        example = pd.Timestamp("2024-03-04T10:00", tz=zone or "UTC").isoformat()
        return (
            f"; the model's times are {where}: give the time with its UTC offset ({example}), "
            "as the training table's were"
        )
    return "; the model's times have no time zone: give the time without a UTC offset"
