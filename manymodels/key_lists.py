"""Partition keys named in a one-line message: the first few quoted, then how many more.

An error or a note about many partitions names a few and counts the rest: all of 100,000
unknown keys in one line buried what it said. Each key is quoted, as errors quote a key (a
key of two columns holds a comma: ``'store=1,brand=a', 'store=1,brand=b'``), and the rest are
counted, "and 7 more": the notes (partitions behind, held, left out) ended in "…" and hid
how many, so the errors' wording serves both.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_LISTED_KEYS = 10  # keys an error names of those it is about


def listed(keys: Sequence[str], count: int | None = None) -> str:
    """The first ``MAX_LISTED_KEYS`` of ``keys`` quoted, and " and N more" of ``count`` (the
    partitions the message is about, of which ``keys`` are the first; ``len(keys)`` when
    not given) past them."""
    shown = keys[:MAX_LISTED_KEYS]
    more = (len(keys) if count is None else count) - len(shown)
    return ", ".join(f"'{k}'" for k in shown) + (f" and {more} more" if more > 0 else "")
