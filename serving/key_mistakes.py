"""The 422 problems of key text that is almost a key: columns no spec keys by, a column named
twice, a stray ',', a key percent-encoded whole. Each is never the fallback's to answer (a
misspelt key would get a plausible answer); ``serving.resolution`` detects them on the path
where a key is not in production, so nothing here runs for a served key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from manymodels.exceptions import DataError
from manymodels.partition import decode_key, normalize_key
from serving.key_shapes import SHOWN_SPECS, key_forms, key_problem, quoted, shown_specs, specs


def other_columns(
    text: str, named: Sequence[str], known: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """The 422's problem for ``text``, a key naming the columns ``named`` where the registry's
    specs key by ``known``: both listed (``known`` cut to ``SHOWN_SPECS``), and a column a
    letter or two off one of the nearest spec's is ``did you mean``'d (the CLI's hint for a
    table's header, ``manymodels.tables.close_names``)."""
    from manymodels.tables import close_names, did_you_mean  # an error's path only: pandas

    expected = shown_specs(known)
    nearest = max(expected, key=lambda c: len(set(c) & set(named)))
    unknown = [c for c in named if c not in nearest]
    hint = did_you_mean(close_names(unknown, [c for c in nearest if c not in named]))
    more = f" (and {len(known) - SHOWN_SPECS} more)" if len(known) > SHOWN_SPECS else ""
    given = f"column{'s' if len(named) > 1 else ''} {quoted(named)}"
    msg = (
        f"the key '{text}' names the {given}, which no model in this registry is keyed by: "
        f"its keys name {specs(expected)}{more}{f'; {hint}' if hint else ''}"
    )
    return key_problem(text, msg, given=list(named), expected=expected)


def column_named_twice(text: str) -> str | None:
    """The first column ``text`` names twice when it is otherwise ``col=value,…`` (which
    ``decode_key`` refuses as no key at all, so the fallback answered it); ``None`` for
    anything else."""
    seen: set[str] = set()
    for part in text.split(","):
        col, sep, _ = part.partition("=")
        if not sep or not col:
            return None
        column = unquote(col)
        if column in seen:
            return column
        seen.add(column)
    return None


def repeated_column(text: str, column: str, known: Sequence[Sequence[str]]) -> dict[str, Any]:
    """The 422's problem for ``text``, a key naming ``column`` twice; the key columns of the
    registry's specs (``known``, cut to ``SHOWN_SPECS``) say what a key names once."""
    expected = shown_specs(known)
    msg = f"the key '{text}' names the column {column!r} twice: a key names each of "
    return key_problem(text, f"{msg}{specs(expected)} once", expected=expected)


def has_stray_comma(text: str) -> bool:
    """Whether ``text`` is a ``col=value,…`` key but for empty parts (a ',' at its start or
    end, or two together), which ``decode_key`` refuses as no key at all."""
    parts = text.split(",")
    kept = [p for p in parts if p]
    if not kept or len(kept) == len(parts):
        return False
    try:
        decode_key(",".join(kept))
    except DataError:
        return False
    return True


def stray_comma(text: str, known: Sequence[Sequence[str]]) -> dict[str, Any]:
    """The 422's problem for ``text``, a key with an empty part; the key columns of the
    registry's specs (``known``, cut to ``SHOWN_SPECS``) say what a key reads."""
    expected = shown_specs(known)
    msg = f"the key '{text}' has an empty part (a stray ','): a key reads {key_forms(expected)}"
    return key_problem(text, msg, expected=expected)


def encoded_key(text: str, known: dict[frozenset[str], tuple[str, ...]]) -> str | None:
    """The canonical key ``text`` is once decoded, when ``text`` holds no '=' of its own and
    its decoding is a key of a spec's columns: a key percent-encoded whole, separators too
    (``store%3D2%2Cbrand%3Dx``); ``None`` for anything else."""
    if "=" in text or "%" not in text or not known:
        return None
    try:
        whole = unquote(text)
        if frozenset(decode_key(whole)) not in known:
            return None
        return normalize_key(whole)
    except DataError:
        return None


def encoded_whole(text: str, key: str) -> dict[str, Any]:
    """The 422's problem for ``text``, the key ``key`` percent-encoded whole."""
    msg = (
        f"the key '{text}' is percent-encoded whole, its '=' and ',' too: send it as "
        f"'{key}' (the values are encoded, not the '=' and ',' between them)"
    )
    return key_problem(text, msg, key=key)  # not "expected": the others' key column sets
