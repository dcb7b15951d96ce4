"""A business-day calendar's holidays stored once per distinct content, not in every version.

A spec's ``holidays`` (405 dates of a market's years: 5.3 kB) went into the feature schema of
every version trained on them: gigabytes at 100,000 partitions and a few versions each. Now
the registry keeps each distinct set once (``holiday_sets``, keyed by the sha256 of its sorted
dates as compact JSON, schema 13) and a version's plan only its hash (``holidays_sha256``);
a plan of an older version still holds its list inline, and is read as before.

The sets are content-addressed, so a set read in one registry is that set in any: this
process keeps each it has seen by hash (a router loads a set once, whatever the partitions
or versions on it), and asks an open registry (``watch``) for one it has not seen. What a
registry hands back is checked against its hash before it is used.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from manymodels.exceptions import RegistryError

HASH_FIELD = "holidays_sha256"
"""The plan's field (``feature_schema.ForecastPlan``) holding its set's hash."""

_KNOWN: dict[str, tuple[str, ...]] = {}
_LOCK = threading.Lock()
_SOURCES: list[weakref.WeakMethod[Callable[[str], str | None]]] = []


def encoded(dates: Iterable[str]) -> str:
    """A set as stored: its distinct dates sorted, as compact JSON (what its hash is of)."""
    return json.dumps(sorted(set(dates)), separators=(",", ":"))


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stored_form(schema: Mapping[str, Any]) -> tuple[Mapping[str, Any], tuple[str, str] | None]:
    """``schema`` as a version stores it: its plan's inline ``holidays`` replaced by their
    set's hash, and ``(hash, the set as stored)`` to keep once; ``schema`` itself (and None)
    when its plan lists none."""
    plan = schema.get("forecast")
    if not isinstance(plan, Mapping) or not plan.get("holidays"):
        return schema, None
    sha, text = _stored(tuple(plan["holidays"]))
    rest = {k: v for k, v in plan.items() if k != "holidays"}
    return {**schema, "forecast": {**rest, HASH_FIELD: sha}}, (sha, text)


@functools.lru_cache(maxsize=16)
def _stored(listed: tuple[str, ...]) -> tuple[str, str]:
    """A plan's dates as stored and their hash, worked out once per distinct list: every
    version of a run lists the same dates (sorting, encoding and hashing 405 dates took
    0.5 ms: 50 s of a run of 100,000 partitions)."""
    text = encoded(str(d) for d in listed)
    sha = digest(text)
    remember(sha, text)
    return sha, text


def remember(sha: str, text: str) -> tuple[str, ...]:
    """Keep a set read or written here, once its text is checked against its hash."""
    if digest(text) != sha:
        raise RegistryError(f"holiday set {sha[:12]}… does not match its sha256: tampered with")
    dates = tuple(json.loads(text))
    with _LOCK:
        return _KNOWN.setdefault(sha, dates)


def watch(source: Callable[[str], str | None]) -> None:
    """Have ``source`` (a registry store's bound read of one set's text, or None) asked for
    sets not seen yet, while the store lives."""
    with _LOCK:
        _SOURCES[:] = [w for w in _SOURCES if w() is not None]
        _SOURCES.append(weakref.WeakMethod(source))


def unwatch(source: Callable[[str], str | None]) -> None:
    """Stop asking ``source``: its store is closed (asked, a closed SQLite store reopened its
    file, and one whose files were removed raised "unable to open database file" in the
    read of another registry's set)."""
    with _LOCK:
        _SOURCES[:] = [w for w in _SOURCES if w() is not None and w() != source]


def dates(sha: str) -> list[str]:
    """The dates of the set ``sha``: this process's copy, or read from an open registry;
    ``RegistryError`` when none holds it."""
    with _LOCK:
        known = _KNOWN.get(sha)
        sources = [w() for w in _SOURCES]
    if known is not None:
        return list(known)
    failed: Exception | None = None
    for source in reversed(sources):  # the newest store first
        if source is None:
            continue
        try:
            text = source(sha)
        except Exception as e:  # one registry that cannot answer (its database down) ended
            failed = failed or e  # the search before one holding the set was asked
            continue
        if text is not None:
            return list(remember(sha, text))
    if failed is not None:  # maybe the one holding it: its error, as any read of it says
        raise failed
    raise RegistryError(f"holiday set {sha[:12]}… is not in the registry (its versions name it)")


def inline(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` with its plan's set hash replaced by the dates (the older, inline form):
    what a version's ``feature_schema`` shows, and what leaves the registry (an export)."""
    plan = schema.get("forecast")
    if not isinstance(plan, Mapping) or HASH_FIELD not in plan:
        return schema
    rest = {k: v for k, v in plan.items() if k != HASH_FIELD}
    return {**schema, "forecast": {**rest, "holidays": dates(str(plan[HASH_FIELD]))}}


def plan_dates(plan: Mapping[str, Any]) -> Sequence[str]:
    """A stored plan's holidays, in either form: inline (older versions) or by hash."""
    if (sha := plan.get(HASH_FIELD)) is not None:
        return dates(str(sha))
    return [str(d) for d in plan.get("holidays") or []]
