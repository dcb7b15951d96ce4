"""What is wrong with a key sent in a URL, for the 422 that refuses it (``Resolver``'s
``refuse_other_columns``): the problem each refusal shares (``key_problem``), the registry's
key columns as a 422 lists them, and the keys that are ``col=value,…`` but for one part — a
part with no ``=`` or no column name, or bytes that are no UTF-8 — which the fallback model
answered with a 200 for a partition the client never meant.

Pure Python on the error path: a key the registry serves never comes here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from manymodels.key_lookup import one_value

SHOWN_SPECS = 5  # key column sets a 422 lists; a registry holds one or a few


def shown_specs(known: Sequence[Sequence[str]]) -> list[list[str]]:
    """The key column sets a 422 lists: the fewest columns first, cut to ``SHOWN_SPECS``."""
    return sorted([list(c) for c in known], key=lambda c: (len(c), c))[:SHOWN_SPECS]


def key_problem(text: str, msg: str, **members: Any) -> dict[str, Any]:
    """One 422 problem at the path's key (``type`` ``key_columns``, as V2's 400 says it
    too): what every refusal of a key's shape shares, beside its own ``members``."""
    return {"loc": ["path", "key"], "msg": msg, "type": "key_columns", "input": text, **members}


def quoted(columns: Sequence[str]) -> str:
    """``'store' and 'brand'``: column names quoted as the did-you-mean hint and the 404's
    parenthesis quote them (``repr``), so a name with a space or a comma reads as one."""
    names = [repr(c) for c in columns]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def specs(expected: Sequence[Sequence[str]]) -> str:
    """Each spec's key columns, ``quoted``: ``'shop', or 'store' and 'brand'``."""
    return ", or ".join(quoted(c) for c in expected)


def key_forms(expected: Sequence[Sequence[str]]) -> str:
    """How a key of each spec reads: ``'store=…,brand=…' or 'shop=…'``."""
    return " or ".join("'" + ",".join(f"{c}=…" for c in cols) + "'" for cols in expected)


def dangling_part(text: str) -> str | None:
    """The first part of ``text`` that has no ``=`` or no column name (``store=2,brand``,
    ``=2``, ``store=2,=x``) when ``text`` is otherwise ``col=value,…`` — it holds an ``=``
    and no empty part, which ``stray_comma`` names; ``None`` for anything else, such as text
    with no ``=`` at all (``../../etc``), which is no key and stays the fallback's."""
    if "=" not in text:
        return None
    parts = text.split(",")
    if not all(parts):
        return None
    for part in parts:
        col, sep, _ = part.partition("=")
        if not sep or not col:
            return part
    return None


def dangling(text: str, part: str, known: Sequence[Sequence[str]]) -> dict[str, Any]:
    """The 422's problem for ``text``, whose ``part`` has no ``=`` (a value's own ','
    sent unencoded splits it: ``brand=a,b``) or no column name; the registry's specs' key
    columns (``known``, cut to ``SHOWN_SPECS``) say what a key reads."""
    expected = shown_specs(known)
    what = "no column name" if part.startswith("=") else "no '='"
    msg = (
        f"the key '{text}' has a part with {what} ('{part}'): a key reads {key_forms(expected)}"
        + (" (a ',' in a value is sent as %2C)" if what == "no '='" else "")
        + (one_value(text, expected[0]) if len(expected) == 1 else "")  # pid=a,b: 'a,b'?
    )
    return key_problem(text, msg, part=part, expected=expected)


_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def undecodable(text: str) -> str | None:
    """The first run of percent-escapes in ``text`` that is no UTF-8 (``%FF``, ``%C3`` cut
    short), which ``unquote`` turned into U+FFFD, so the fallback answered for a value the
    client never sent; ``None`` when every escape decodes (or there is none)."""
    if "%" not in text:
        return None
    for run in _ESCAPES.finditer(text):
        try:
            unquote_to_bytes(run.group()).decode("utf-8")
        except UnicodeDecodeError:
            return run.group()
    return None


def not_utf8(text: str, escapes: str) -> dict[str, Any]:
    """The 422's problem for ``text``, whose percent-escapes ``escapes`` are no UTF-8."""
    msg = (
        f"the key '{text}' holds '{escapes}', which is no UTF-8 text: percent-encode a key's "
        "values as UTF-8 ('ü' is %C3%BC)"
    )
    return key_problem(text, msg, escapes=escapes)
