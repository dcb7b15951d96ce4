"""The registry's time stamps (ISO text, UTC): how long ago one was, read the same way
everywhere — a stamp written without a zone is UTC, and one that is not a time is no time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def seconds_between(at: datetime, when: Any) -> float | None:
    """Seconds from ``when`` (ISO text) to ``at``; ``None`` for anything but an ISO time."""
    if not isinstance(when, str):
        return None
    try:
        stamp = datetime.fromisoformat(when)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return (at - stamp).total_seconds()
