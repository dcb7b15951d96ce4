"""The head of a big JSON body: what its row lists hold in their first MiB, wherever in the
body they are.

The head was the body's first ``HEAD_BYTES`` read partially. A body whose rows came after
another member (``{"note": "<1 MiB>", "rows": [{}, {}, …]}``) showed no rows there, so 10 MB of
them were parsed in full (~0.45 s, holding the GIL) before their 422: the check depended on
the order of the keys. Now the body's top-level members are walked, each skipped at C speed
(a string by one regular expression, a number by another, a list or object by its brackets
counted with numpy, strings masked), and each row list is read partially from its own start.

What the walk cannot skip cheaply is refused (``Head.buried``) when a row list follows it: a
list or object other than the rows of more than ``HEAD_BYTES``, or keys and values of more
than ``BUDGET`` in all (a string included: a regular expression over 9 MB of one, cut short,
held the event loop 0.3-0.5 s until it was made possessive and bounded). No client sends
megabytes of something the routes ignore ahead of its rows, and reading it is the cost the
head exists to spare.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic_core import from_json

HEAD_BYTES = 1 << 20  # ~20 ms to read partially; more rows in it than the cap: refused
BUDGET = 2 * HEAD_BYTES  # the lists and objects walked over, in all, before giving up

# The members of a body that hold its rows (``/v1``'s rows and a forecast's future rows, V2's
# inputs): read from their start, whatever comes before them.
ROW_MEMBERS = frozenset({"rows", "future", "inputs"})

# Possessive (``*+``): a string cut short is given up on at once, not backtracked over byte by
# byte (9 MB: 0.32 s with ``*``, 0.03 s so); 3 million escapes in 9 MB take ~80 ms.
_WS = re.compile(rb"[ \t\n\r]*+")
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_SCALAR = re.compile(rb"[^,}\] \t\n\r]++")
_ROWS_AHEAD = re.compile(rb'"(?:' + b"|".join(n.encode() for n in ROW_MEMBERS) + rb')"[ \t\n\r]*:')


@dataclass
class Head:
    """The top-level members of a body read so far: each row list (complete, or cut short at
    the end of its window, ``cut[name]`` the body's offset there); ``buried`` names a member
    too big to walk over with a row list after it."""

    body: bytes
    value: Any = None
    cut: dict[str, int] = field(default_factory=dict)
    buried: str | None = None


def buried(name: str) -> str:
    """Why a body whose rows come after ``name`` is refused (``Head.buried``)."""
    return (
        f"the member {json.dumps(name)} comes before the rows and holds more than can be "
        f"passed over ({HEAD_BYTES:,} bytes): send the rows first, or {json.dumps(name)} shorter"
    )


def partial(data: bytes) -> Any:
    """``data`` read as far as it goes (a list cut short holds the items it has so far);
    ``None`` for what is no JSON this parser reads (the full parse then says what is wrong)."""
    try:
        return from_json(data, allow_partial=True)
    except ValueError:
        return None


def scan(body: bytes) -> Head:
    """The ``Head`` of ``body``: its row lists' first ``HEAD_BYTES``, in whatever order the
    members come. A body that is no object (or not UTF-8 without a byte-order mark) is read
    from its start, as before."""
    pos = _WS.match(body).end()  # type: ignore[union-attr]  # matches the empty string
    if body[pos : pos + 1] != b"{":
        return Head(body, partial(body[:HEAD_BYTES]))
    out: dict[str, Any] = {}
    head = Head(body, out)
    budget = BUDGET
    pos += 1
    while True:
        pos = _WS.match(body, pos).end()  # type: ignore[union-attr]
        key = _STRING.match(body, pos, pos + budget)
        if key is None:  # no key, or one too long to pass over
            _give_up(head, body[pos + 1 : pos + 51].decode(errors="replace"), pos + 1)
            break
        budget -= key.end() - pos
        try:
            name = json.loads(key.group())
        except ValueError:
            break
        pos = _WS.match(body, key.end()).end()  # type: ignore[union-attr]
        if body[pos : pos + 1] != b":":
            break
        pos = _WS.match(body, pos + 1).end()  # type: ignore[union-attr]
        first = body[pos : pos + 1]
        if first in (b"[", b"{"):
            # A row list is read up to ``HEAD_BYTES`` whatever was passed over before it:
            # a window cut by the budget let 2 MiB of text before the rows leave them a few
            # bytes (none seen, the whole body parsed) or none at all (numpy's argmax of an
            # empty window, a 500).
            size = HEAD_BYTES if name in ROW_MEMBERS else min(HEAD_BYTES, budget)
            window = body[pos : pos + size]
            end = container_end(window)
            if name in ROW_MEMBERS:
                out[name] = partial(window[:end] if end is not None else window)
                if end is None:
                    head.cut[name] = pos + len(window)
                    break  # the rows' bulk, in a body of legitimate size: parsed in full
        else:
            skip = (_STRING if first == b'"' else _SCALAR).match(body, pos, pos + budget)
            end = skip.end() - pos if skip is not None else None
        if end is None:  # a value other than the rows too long to pass over
            _give_up(head, name, pos + 1)
            break
        budget = max(0, budget - end)
        pos = _WS.match(body, pos + end).end()  # type: ignore[union-attr]
        if body[pos : pos + 1] != b",":
            break
        pos += 1
    return head


def _give_up(head: Head, name: str, at: int) -> None:
    """The walk stops at member ``name``, too long to pass over (or no JSON): a row list
    after ``at`` would go unseen, so such a body is refused (``Head.buried``)."""
    if at < len(head.body) and _ROWS_AHEAD.search(head.body, at):
        head.buried = name[:50]


_OPEN, _CLOSE, _QUOTE, _ESCAPE = (np.uint8(ord(c)) for c in "[]" + '"' + "\\")


def container_end(window: bytes) -> int | None:
    """The length of the list or object ``window`` starts with, its brackets counted outside
    its strings (a quote after an odd run of backslashes is no string's end); ``None`` when
    it does not end within ``window``. numpy, not a loop over the bytes: ~10-20 ms a MiB."""
    if not window:
        return None
    b = np.frombuffer(window, dtype=np.uint8)
    folded = b & np.uint8(0xDF)  # '{' and '}' are '[' and ']' with bit 0x20 set
    step = (folded == _OPEN).view(np.int8) - (folded == _CLOSE).view(np.int8)
    if b'"' in window:
        quote = b == _QUOTE
        if b"\\" in window:
            quote[_escaped(b, np.flatnonzero(quote))] = False
        inside = (np.cumsum(quote, dtype=np.int32) & 1).astype(np.bool_)
        step[inside] = 0  # an opening quote counts itself: it is no bracket either
    depth = np.cumsum(step, dtype=np.int32)
    first = int(np.argmax(depth == 0))  # from 1 (the opening bracket) to 0: the end
    return first + 1 if depth[first] == 0 else None


def _escaped(b: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """Which of the ``quotes`` (positions in ``b``) follow an odd run of backslashes."""
    quotes = quotes[quotes > 0]
    quotes = quotes[b[quotes - 1] == _ESCAPE]
    if not quotes.size:
        return quotes
    at = np.arange(b.size, dtype=np.int32)
    last_plain = np.maximum.accumulate(np.where(b == _ESCAPE, np.int32(-1), at))
    return quotes[(quotes - 1 - last_plain[quotes - 1]) % 2 == 1]
