"""The warnings a partition's fits raise, kept with its version, and no other thread's.

``warnings.catch_warnings(record=True)`` is process-wide state: while one thread trained, a
host's own threads had their warnings recorded as the models' training warnings and kept
from stderr, and two trains in two threads interleaved its save and restore, leaving every
later warning of the process appended to a finished training's list. ``captured`` instead
installs one dispatcher for the whole process while any thread captures (a count, under a
lock): a warning raised in a capturing thread joins that thread's list, any other thread's
goes on to the ``showwarning`` that was there before. The ``always`` filter that makes a
fit's repeated warnings visible is process-wide too (Python 3.11's filters have no
per-thread form), so while a train runs, other threads' repeated warnings are shown each
time rather than once; nothing is lost or misfiled, and the filters are restored when the
last capture ends.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_local = threading.local()
_users = 0
_saved: tuple[Any, list[Any]] | None = None  # showwarning and filters before the first capture


def _dispatch(message: Any, category: Any, filename: str, lineno: int,
              file: Any = None, line: str | None = None) -> None:  # fmt: skip
    """``warnings.showwarning`` while any thread captures."""
    mine: list[warnings.WarningMessage] | None = getattr(_local, "caught", None)
    if mine is not None:
        mine.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
        return
    before = _saved[0] if _saved is not None else warnings._showwarning_orig  # type: ignore[attr-defined]
    before(message, category, filename, lineno, file, line)


@contextmanager
def captured() -> Iterator[list[warnings.WarningMessage]]:
    """The warnings this thread raises inside the block, each one (``always``), as
    ``catch_warnings(record=True)`` records them; other threads' are untouched."""
    global _users, _saved
    outer: list[warnings.WarningMessage] | None = getattr(_local, "caught", None)
    caught: list[warnings.WarningMessage] = []
    with _lock:
        if _users == 0:
            _saved = (warnings.showwarning, list(warnings.filters))
            warnings.showwarning = _dispatch
            warnings.simplefilter("always")
        _users += 1
    _local.caught = caught
    try:
        yield caught
    finally:
        _local.caught = outer  # a capture inside another keeps its own, as catch_warnings
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                shown, filters = _saved
                _saved = None
                if warnings.showwarning is _dispatch:  # unless someone replaced it since
                    warnings.showwarning = shown
                warnings.filters[:] = filters  # type: ignore[index]
                warnings._filters_mutated()  # type: ignore[attr-defined]
