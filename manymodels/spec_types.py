"""Text, bytes or a boolean where a spec's key takes numbers: refused, naming the key.

Pydantic's lax mode read ``min_rows = "20"`` as 20, ``enabled = "yes"`` as true,
``levels = ["80"]`` as 80 and ``min_rows = true`` as 1 ("must be ≥ 2" said nothing), while
``lags = ["8"]`` was refused: one spec, two rules. Strict mode would also refuse what a
notebook's spec holds (numpy numbers, tuples for lists), so only these confusions are refused:
text (or bytes, a Python dict's ``b"20"``) for a number or a boolean, and a boolean for a
number.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

NUMBERS = frozenset({int, float, bool})


@dataclass(frozen=True)
class Takes:
    """What a field's annotation takes: scalar kinds and literal words, alone (``kinds``,
    ``words``) or as a list's items (``items``, ``item_words``)."""

    kinds: frozenset[Any] = frozenset()
    words: frozenset[str] = frozenset()
    items: frozenset[Any] = frozenset()
    item_words: frozenset[str] = frozenset()
    other: bool = False  # it takes something else too (any text, a mapping): nothing refused

    def listed(self) -> Takes:
        """The same, as a list's items."""
        return Takes(items=self.kinds, item_words=self.words, other=self.other)


def refuse_text_for_numbers(annotation: Any, value: Any) -> None:
    """``ValueError`` when ``value`` (or an item of a list of them) is text, bytes or a boolean
    and the field ``annotation`` describes takes numbers (and booleans) only, beside at most
    some literal words (``prior_rows: float | "auto"``)."""
    listed = isinstance(value, list | tuple)
    items = value if listed else [value]
    odd = [v for v in items if isinstance(v, str | bytes | bytearray | bool)]
    if not odd:
        return
    found = takes_of(annotation)
    # a list's items are judged as the list's member takes them; a scalar as a scalar
    # (``lags = "1"`` is not a list: pydantic says so, where "not the text" misled)
    kinds, words = (found.items, found.item_words) if listed else (found.kinds, found.words)
    if found.other or not kinds or not kinds <= NUMBERS:
        return
    meant = "true or false" if kinds == {bool} else "a number"
    if words:
        meant += " or " + " or ".join(f"'{w}'" for w in sorted(words))
    text = next((v for v in odd if isinstance(v, str) and v not in words), None)
    if text is not None:
        raise ValueError(f"must be {meant}, not the text {str(text)!r} (write it without quotes)")
    raw = next((v for v in odd if isinstance(v, bytes | bytearray)), None)
    if raw is not None:  # pydantic read b"20" as 20 and b"yes" as true, as it read text
        raise ValueError(f"must be {meant}, not the bytes {bytes(raw)!r}")
    flag = next((v for v in odd if isinstance(v, bool)), None)
    if flag is not None and bool not in kinds:
        raise ValueError(f"must be {meant}, not {str(flag).lower()}")


def takes_of(annotation: Any) -> Takes:
    """What an annotation takes, through ``Annotated``, unions, ``None`` and lists
    (``list[float]`` takes floats)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return takes_of(get_args(annotation)[0])
    if origin is Literal:
        words = get_args(annotation)
        if all(isinstance(w, str) for w in words):
            return Takes(words=frozenset(words))
        return Takes(other=True)
    if origin in (Union, UnionType):
        parts = [takes_of(a) for a in get_args(annotation) if a is not type(None)]
        return Takes(
            kinds=frozenset().union(*(p.kinds for p in parts)),
            words=frozenset().union(*(p.words for p in parts)),
            items=frozenset().union(*(p.items for p in parts)),
            item_words=frozenset().union(*(p.item_words for p in parts)),
            other=any(p.other for p in parts),
        )
    if origin in (list, tuple):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return takes_of(args[0]).listed() if len(args) == 1 else Takes(other=True)
    if annotation in NUMBERS:
        return Takes(kinds=frozenset({annotation}))
    return Takes(other=True)
