"""Partitions whose rows end before the newest partition's: the forecast ``note:`` that names them.

Each partition's forecast continues its own last time, as statsforecast's and mlforecast's do.
A series delisted in March of a table that runs to December is forecast from March, and those
rows sat among the others' December steps unremarked: a user reading the file took them for
this week's forecast, or missed that the item is gone. ``forecast`` now counts them and names
the earliest, and says how to take such a partition out of production. Counted per distinct
last time (a few hundred in a daily table, whatever the partitions), so 100,000 partitions
cost a dictionary of that size.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from manymodels.key_lists import listed

SHOWN = 3  # keys the note (and --json's behind_keys) names, earliest first


class Ends:
    """The last times of the partitions a forecast covered, chunk by chunk."""

    def __init__(self) -> None:
        self._times: dict[Any, list[Any]] = {}  # last time → [count, first keys]

    def add(self, ends: Iterable[tuple[str, Any]]) -> None:
        """``(key, last time)`` of each partition of a chunk (``None``: no time)."""
        for key, time in ends:
            if time is None:
                continue
            slot = self._times.setdefault(time, [0, []])
            slot[0] += 1
            if len(slot[1]) < SHOWN:
                slot[1].append(key)

    def behind(self) -> tuple[int, list[str], Any, Any]:
        """How many partitions end before the newest last time, the first few of them
        (earliest first), the earliest last time and the newest; ``(0, [], None, None)``
        when all end together or the times do not compare."""
        try:
            order = sorted(self._times, key=_instant)
        except (TypeError, ValueError):  # naive beside zone-aware, text beside numbers
            return 0, [], None, None
        if len(order) < 2:
            return 0, [], None, None
        count, keys = 0, list[str]()
        for time in order[:-1]:
            n, first = self._times[time]
            count += n
            keys.extend(first[: SHOWN - len(keys)])
        return count, keys, order[0], order[-1]


def _instant(time: Any) -> Any:
    if isinstance(time, str):
        import pandas as pd  # loaded by the forecast already; not by the CLI's start

        return pd.Timestamp(time)
    return time


def note(ends: Ends) -> str | None:
    """The ``note:`` line, or ``None`` when every partition ends at the newest time."""
    count, keys, earliest, newest = ends.behind()
    if not count:
        return None
    return (
        f"{count:,} partition(s) end before the newest last time {newest}, so their steps "
        f"start earlier: {listed(keys, count)} (the earliest ends {earliest}); a series "
        "that stopped (delisted, closed) can be taken out of production with "
        "`manymodels retire KEY`"
    )
