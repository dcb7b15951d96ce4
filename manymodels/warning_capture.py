"""The warnings a partition's fits raise, kept with its version, and no other thread's.

``warnings.catch_warnings(record=True)`` is process-wide state: while one thread trained, a
host's own threads had their warnings recorded as the models' training warnings and kept
from stderr, and two trains in two threads interleaved its save and restore, leaving every
later warning of the process appended to a finished training's list. ``captured`` instead
installs one dispatcher for the whole process while any thread captures (a count, under a
lock): a warning raised in a capturing thread joins that thread's list, any other thread's
goes on to the ``showwarning`` the host had.

What Python 3.11 cannot scope to a thread, and so still reaches other threads while a train
runs: the filters. A fit's repeated warnings are recorded because an ``always`` filter is
put first, so meanwhile other threads' warnings are shown each time, and a host's own
``ignore`` or ``error`` filter does not apply to them. When the last capture ends, that one
filter entry is taken out again (a filter the host added meanwhile stays). A warning raised
by a thread a fit starts itself (joblib's threading backend) is not the capturing thread's:
it is shown, not kept with the version.

Another thread's ``catch_warnings()`` (scikit-learn's ``check_array`` opens one on every
predict) can save the dispatcher and the filter during a capture and put them back after
it ended. Both are harmless then: the dispatcher passes everything to the host's
``showwarning`` (never to itself), and the next capture restores the host's.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_local = threading.local()
_users = 0
# Our own ``always`` entry, told from a host's by identity: its message pattern matches any text
_ALWAYS = ("always", re.compile(""), Warning, None, 0)
_host: Any = None  # the showwarning the host had before the first capture


def _host_showwarning() -> Any:
    """Where other threads' warnings go: the host's ``showwarning``, or the standard one."""
    host = _host
    return host if host is not None and host is not _dispatch else warnings._showwarning_orig  # type: ignore[attr-defined]


def _dispatch(message: Any, category: Any, filename: str, lineno: int,
              file: Any = None, line: str | None = None) -> None:  # fmt: skip
    """``warnings.showwarning`` while any thread captures."""
    mine: list[warnings.WarningMessage] | None = getattr(_local, "caught", None)
    if mine is not None:
        mine.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
        return
    _host_showwarning()(message, category, filename, lineno, file, line)


@contextmanager
def captured() -> Iterator[list[warnings.WarningMessage]]:
    """The warnings this thread raises inside the block, each one (``always``), as
    ``catch_warnings(record=True)`` records them; other threads' go where they went."""
    global _users, _host
    outer: list[warnings.WarningMessage] | None = getattr(_local, "caught", None)
    caught: list[warnings.WarningMessage] = []
    with _lock:
        if _users == 0:
            if warnings.showwarning is not _dispatch:  # else left by another's restore
                _host = warnings.showwarning
            warnings.showwarning = _dispatch
            filters: list[Any] = warnings.filters  # type: ignore[assignment]
            filters.insert(0, _ALWAYS)
            warnings._filters_mutated()  # type: ignore[attr-defined]
        _users += 1
    _local.caught = caught
    try:
        yield caught
    finally:
        _local.caught = outer  # a capture inside another keeps its own, as catch_warnings
        with _lock:
            _users -= 1
            if _users == 0:
                if warnings.showwarning is _dispatch:  # unless someone replaced it since
                    warnings.showwarning = _host_showwarning()
                _drop_always()


def _drop_always() -> None:
    """Take out the ``always`` entry a capture put first (only ours: a host's own, or a
    filter added since, stays), and make the warnings module read its filters again."""
    filters: list[Any] = warnings.filters  # type: ignore[assignment]
    filters[:] = [f for f in filters if f is not _ALWAYS]
    warnings._filters_mutated()  # type: ignore[attr-defined]
