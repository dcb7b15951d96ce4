"""The other spellings of one key value that name the same partition: a number, a timestamp
or a boolean as a user types it against the form training wrote (``trained_keys.trained_forms``).

Training writes a value as its table holds it: a DataFrame's timestamp by ``isoformat``
(``2024-01-05T10:30:00``), the same column read from a CSV as its text (``2024-01-05
10:30:00``, a midnight-only column ``2024-01-05``), a boolean as ``true``/``false``. A user
types ``ts=2024-01-05 10:30`` or ``flag=True``: each was "no partition". Each rewrite here is
textual and constant-time (one regular expression per value, never a scan of the keys), and
callers try its forms only when the key as given is absent.

Pure Python on purpose, as ``keys`` is: no numpy, no pandas.
"""

from __future__ import annotations

import re

INTEGRAL_DECIMAL = re.compile(r"(-?)(0|[1-9][0-9]*)\.0+", re.ASCII)
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)

_TIMESTAMP = re.compile(
    r"(?P<day>\d{4}-\d\d-\d\d)"
    r"(?:[T ](?P<h>\d\d):(?P<m>\d\d)(?::(?P<s>\d\d)(?:\.(?P<frac>\d+))?)?)?"
    r"(?P<tz>Z|[+-]\d\d:\d\d)?"
)
"""A date or date-time in an ISO spelling (``T`` or a space, minutes or seconds, a fraction,
a zone). ``\\d`` is any decimal digit on purpose: the posted actuals' digests
(``monitoring.counted``) were computed so, and a stored digest must not change."""

TimeParts = tuple[str, str | None, str | None, str | None, str | None, str | None]
"""A time's text as its parts: the day, hour, minute, second, fraction and zone, as written."""
_BOOLS = {"true": "true", "1": "true", "false": "false", "0": "false"}
_BOOLISH = re.compile(r"=(?:true|false|1|0)(?:,|$)", re.ASCII | re.IGNORECASE)


def maybe_boolean(key: str) -> bool:
    """Whether canonical ``key`` has a value that may be a boolean as a user types it
    (``flag=True``, ``flag=1``): the cheap test before any parse, a substring scan first."""
    return any(s in key for s in ("=1", "=0", "=t", "=T", "=f", "=F")) and bool(
        _BOOLISH.search(key)
    )


def integral(value: str) -> str | None:
    """``2.0`` → ``2`` (``format_value``'s integral number), or ``None`` if not one."""
    match = INTEGRAL_DECIMAL.fullmatch(value)
    if match is None:
        return None
    sign, digits = match.groups()
    return f"{sign}{digits}" if digits != "0" else "0"


def time_parts(value: str) -> TimeParts | None:
    """``value``'s parts if it is a date or date-time in an ISO spelling (``_TIMESTAMP``),
    else ``None``. The one reading of a time's text: a key's value respelt
    (``time_spellings``) and a posted actual's time made one text (``monitoring.counted``)
    parse it alike; each writes the parts its own way."""
    match = _TIMESTAMP.fullmatch(value) if value[4:5] == "-" else None
    if match is None:
        return None
    day, h, m, s, frac, tz = match.group("day", "h", "m", "s", "frac", "tz")
    return (day, h, m, s, frac, tz)


def time_spellings(value: str) -> tuple[str | None, str | None, str | None]:
    """``value``, a date or date-time in any ISO spelling (``T`` or a space, with or without
    seconds, ``Z`` for UTC), as a DataFrame's timestamp is written (``isoformat``:
    ``2024-01-05T10:30:00``), as a CSV's day (``2024-01-05``, a midnight without a zone only)
    and as a CSV's timestamp (``2024-01-05 10:30:00``), each ``None`` where it is written so
    already or cannot be. One match for the three: a key tries them on every miss."""
    parts = time_parts(value) if value.isascii() else None
    if parts is None or len(parts[4] or "") > 6:  # past microseconds: no datetime writes it
        return (None, None, None)
    day, h, m, s, frac, tz = parts
    micro = (frac or "").ljust(6, "0")
    fraction = f".{micro}" if micro.strip("0") else ""
    zone = "+00:00" if tz == "Z" else (tz or "")
    clock = f"{h or '00'}:{m or '00'}:{s or '00'}{fraction}{zone}"
    iso, csv = f"{day}T{clock}", f"{day} {clock}"
    midnight = clock == "00:00:00" and day != value
    return (
        iso if iso != value else None,
        day if midnight else None,
        csv if csv != value else None,
    )


def boolean(value: str) -> str | None:
    """``True``, ``TRUE``, ``1`` → ``true`` (``0`` and the falses → ``false``): a boolean key
    column as ``format_value`` writes it, or ``None`` if not one or written so already."""
    text = _BOOLS.get(value.lower())
    return text if text is not None and text != value else None


def time_forms(values: list[str]) -> list[list[str]]:
    """A key's ``values`` with its dates and times written each way a table writes them
    (``time_spellings``: every one the same way, as one table writes all its timestamps),
    and, when it holds a bare day beside a time, those ways with the days kept: a column of
    dates is written ``2024-01-05`` beside a timestamp's ``2024-01-05T10:30:00``, and
    ``d=2024-01-05,ts=2024-01-05 10:30`` respelt at once was ``d=2024-01-05T00:00:00,…``,
    "no partition". At most five forms."""
    spelt = [time_spellings(v) for v in values]
    if not any(map(any, spelt)):  # no date or time in the key: nothing more to build
        return []
    ways = [[s[i] or v for v, s in zip(values, spelt, strict=True)] for i in (0, 1, 2)]
    days = [DAY.fullmatch(v) is not None for v in values]
    if any(days) and not all(days):
        ways += [[v if day else w for v, w, day in zip(values, way, days, strict=True)]
                 for way in (ways[0], ways[2])]  # fmt: skip
    unique = {tuple(w): w for w in ways if w != values}
    return list(unique.values())


def boolean_forms(values: list[str]) -> list[list[str]]:
    """A key's ``values`` with its booleans as a user types them written ``true``/``false``:
    every one at once, the words only (``True``, ``FALSE``), and the words with each ``1``
    or ``0`` alone. An integer column holds ``1`` too: ``store=1,flag=True`` respelt at once
    was ``store=true,flag=true``, "no partition" for the ``store=1,flag=true`` training wrote.
    At most two more forms than the key has values."""
    out = [o if o is not None else v for v, o in zip(values, map(boolean, values), strict=True)]
    words = [o if v not in ("0", "1") else v for v, o in zip(values, out, strict=True)]
    ways = [out, words]
    for i, value in enumerate(values):
        if value in ("0", "1") and len(values) > 1:
            ways.append([*words[:i], out[i], *words[i + 1 :]])
    unique = {tuple(w): w for w in ways if w != values}
    return list(unique.values())


def value_forms(values: list[str]) -> list[list[str]]:
    """The other spellings of a key's ``values`` that training may have written, in the
    order they are tried: integral numbers (``2.0`` as ``2``), then each of those with its
    dates and times written each way (``time_forms``), then each of all those with its
    booleans as ``true``/``false`` (``boolean_forms``); the values as given left out, and
    each form once. The one list of spellings: a key named (``trained_keys.trained_forms``) and a
    table's keys (``key_spellings``) try the same ones, in the same order. A bounded few
    whatever the values, each found from their text alone; nothing parsed for values
    without a ``.``, a ``-`` or a boolean's word."""
    forms = [values]
    if any("." in v for v in values):
        whole = [integral(v) for v in values]
        if any(w is not None for w in whole):
            forms.append([w if w is not None else v for v, w in zip(values, whole, strict=True)])
    if any("-" in v for v in values):
        forms += [way for form in forms for way in time_forms(form)]
    if any(v.lower() in _BOOLS for v in values):
        forms += [way for form in forms for way in boolean_forms(form)]
    unique = {tuple(f): f for f in forms[1:]}
    unique.pop(tuple(values), None)
    return list(unique.values())


def same_value(given: str, trained: str) -> bool:
    """Whether the key value text ``given`` names the value training wrote as ``trained``:
    the same text, or one of its other spellings (a row's ``"2024-01-05 10:30"`` for the
    URL's ``2024-01-05T10:30:00``). Constant time."""
    if given == trained:
        return True
    if trained in time_spellings(given):
        return True
    return any(rewrite(given) == trained for rewrite in (integral, boolean))
