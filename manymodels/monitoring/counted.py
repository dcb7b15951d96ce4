"""Which posted actuals were counted already: a short digest of each counted row, kept in the
day window that counted it (``monitor_actuals.counted``) and deleted with it.

A retried request, a cron job run twice, or a file posted again with rows appended sent the
same rows again, and each was added to the sums again (twice the live rows, and a partition
flagged ``degraded`` on errors seen once). As an ``Idempotency-Key`` makes a payment API answer
a repeat without charging twice, a row's identity here is its content: every column it was
posted with (the partition's key columns aside: a path names them, a file has them; so are a
file's ``VERSION_COLUMNS``, a post's ``version``), numbers by value (``1`` is ``1.0``), blanks
left out, and how many rows alike in every column came before it in the same post. So a
post counts only the rows no earlier post of the version counted —
the same rows again count none, a file with rows appended counts the new ones — while rows
alike in every column within one post (two sales of one item at one price) each count. Two
observations alike in every column posted apart count once: a column that tells them apart (a
time, a request id) makes them two.

A digest is 9 bytes of sha256 (12 characters), so a partition's kept windows cost at most
``WINDOWS`` × ``MAX_PER_DAY`` × 12 bytes; past ``MAX_PER_DAY`` rows in a day the oldest of
the day's digests are dropped (a repeat of those rows would count again).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select

from manymodels.registry import schema as t
from manymodels.registry.engine import batches
from manymodels.registry.reads import pairs_in
from manymodels.value_spellings import time_parts

WIDTH = 12
"""Characters of one digest (9 bytes of sha256, base64): collisions ~2⁻⁷² a pair of rows."""
MAX_PER_DAY = 20_000
"""Digests kept per partition, version and day (240 kB at most): bounded like the sums."""
VERSION_COLUMNS = ("version", "model_version")
"""A file's columns naming the version that answered (``manymodels actuals``; score's
output): which version's windows, as a post's ``version`` is, so left out of a row as the key
columns are — the rows of a file naming their version are the rows a post of them was."""


def _plain(value: Any) -> Any:
    """A cell as JSON compares it across a CSV, a Parquet file and a JSON body: ``None`` for a
    blank, a number by value (an integral float as an int), a time as ISO text."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:  # most cells: as they are
        return value
    if kind is float:
        if value != value:  # NaN: a blank cell
            return None
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    return _other(value)


def _other(value: Any) -> Any:
    """``_plain`` of a numpy or pandas value, a date or time, or a JSON list or object."""
    import numpy as np
    import pandas as pd

    if isinstance(value, np.datetime64 | pd.Timestamp | datetime):  # as ``_time`` writes it
        if pd.isna(value):  # (a Parquet date is the text "2026-01-05" of a CSV or JSON)
            return None
        text = pd.Timestamp(value).isoformat()
        return _stamp_text(text) or text  # (one with a zone is written with it)
    if isinstance(value, np.generic):  # a numpy number or boolean: as its Python value
        return _plain(value.item())
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | int | str):  # subclasses (an IntEnum, a str subclass)
        return value
    if isinstance(value, float):
        return _plain(float(value))
    if isinstance(value, date):
        return value.isoformat()
    return value if isinstance(value, list | dict) else str(value)


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
)  # one encoder for every row: ``json.dumps`` with arguments builds one per call


_DATE = re.compile(r"\d{4}-\d\d-\d\d")
"""A time column's text that is a date alone, as it is written already (most cells)."""


def _stamp_text(text: str) -> str | None:
    """A time without a zone as one text: the date alone at midnight, else ``T``, seconds,
    and no trailing zeros of a fraction (``10:00`` is ``10:00:00.000``); ``None`` for a text
    that is no such time (one with a zone among them: pandas reads those). Its parts are
    read as a key's value is (``value_spellings.time_parts``)."""
    parts = time_parts(text)
    if parts is None or parts[1] is None or parts[5] is not None:
        return None
    day, hour, minute, second, fraction, _ = parts
    fraction = (fraction or "").rstrip("0")
    clock = f"{hour}:{minute}:{second or '00'}" + (f".{fraction}" if fraction else "")
    return day if clock == "00:00:00" else f"{day}T{clock}"


def _time(value: Any) -> Any:
    """``_plain`` of a time column's cell: a time's text as the time it names, so that one
    time spelt two ways — "2026-01-05T00:00:00" (a JSON client's, pandas' ``to_json``) and
    "2026-01-05" (a CSV's), "…T10:00:00" and "… 10:00:00", "Z" and "+00:00" — is one."""
    if type(value) is not str or _DATE.fullmatch(value):
        return _plain(value)
    found = _stamp_text(value)
    if found is not None:  # most times: no parse
        return found
    import pandas as pd

    try:
        return _other(pd.Timestamp(value))
    except (ValueError, TypeError, OverflowError):  # not a time: its text
        return value


def digests(
    rows: Sequence[Mapping[str, Any]], skip: Iterable[str] = (), time_column: str | None = None
) -> list[str]:
    """Each row's digest (in ``rows``' order): its cells but ``skip`` (the key columns), and
    how many rows alike came before it in ``rows``. ``time_column``'s cells are read as
    times (``_time``)."""
    left_out = set(skip)
    seen: dict[bytes, int] = {}
    out: list[str] = []
    for row in rows:
        cells = {
            str(k): _time(v) if k == time_column else _plain(v)
            for k, v in row.items()
            if str(k) not in left_out
        }
        text = _CANONICAL.encode({k: v for k, v in cells.items() if v is not None}).encode()
        nth = seen.get(text, 0)
        seen[text] = nth + 1
        raw = hashlib.sha256(text + b"\0" + str(nth).encode()).digest()[:9]
        out.append(base64.urlsafe_b64encode(raw).decode())
    return out


def joined(kept: Sequence[str], new: Sequence[str]) -> str:
    """A window's digests after ``new`` were counted in it: the newest ``MAX_PER_DAY``."""
    return "".join([*kept, *new][-MAX_PER_DAY:])


def split(text: str | None) -> list[str]:
    """A window's ``counted`` text as its digests (none for a window written before schema
    14, whose rows cannot be told again)."""
    if not text:
        return []
    return [text[i : i + WIDTH] for i in range(0, len(text), WIDTH)]


Seen = dict[tuple[str, int], tuple[set[str], str | None]]
"""``{(key, version): (the digests of its kept windows, its newest window's last_actual)}``."""


def seen_in(conn: Connection, pairs: Sequence[tuple[str, int]]) -> Seen:
    """The digests counted in each version's kept windows (at most ``WINDOWS`` rows each, read
    by primary key in batches) and its newest window's ``last_actual``, read in the caller's
    write transaction: what another post counted meanwhile is seen."""
    a = t.monitor_actuals.c
    out: Seen = {}
    newest: dict[tuple[str, int], str] = {}
    for chunk in batches(list(dict.fromkeys(pairs))):
        wanted = set(chunk)
        q = select(a.key, a.version, a.day, a.counted, a.last_actual).where(pairs_in(a, chunk))
        for key, version, day, counted, last in conn.execute(q):
            pair = (key, version)
            if pair not in wanted:
                continue
            found = out.setdefault(pair, (set(), None))
            found[0].update(split(counted))
            if day > newest.get(pair, ""):
                newest[pair] = day
                out[pair] = (found[0], last)
    return out
