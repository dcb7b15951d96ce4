"""The other spellings training may have written a named key in: ``store=2`` for a client's
``store=2.0``, a DataFrame's ``day=2024-01-01T00:00:00`` for a CSV's ``day=2024-01-01``, a
boolean's ``true`` for ``True`` or ``1``, a value's other Unicode normal form.

Apart from ``keys`` (the canonical form) because this is a search among a bounded few
rewrites of one key, asked of the registry or the router's alias table only when the key as
written is absent; its callers (lookups, actuals, scoring, forecasts, run plans) batch it.
The spellings of one value are ``value_spellings``'.

Pure Python on purpose, as ``keys`` is: no numpy, no pandas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from manymodels.exceptions import AmbiguousKey, DataError
from manymodels.keys import decode_key, quote_text
from manymodels.value_spellings import maybe_boolean, value_forms

T = TypeVar("T")


def as_trained(key: str, present: Callable[[str], bool]) -> str:
    """``key``, or the form training wrote it in when ``key`` is not ``present`` and that
    form is (``trained_forms``): ``store=2`` for ``store=2.0`` (a client's float, a JSON
    number), ``day=2024-01-01T00:00:00`` for ``day=2024-01-01`` or the other way (a
    DataFrame's date against a CSV's text), a timestamp's ``T`` or space spelling, a
    boolean's ``true`` for ``True`` or ``1``, or several at once. ``present`` is asked only
    for a key with another form: the router's alias table, the registry, the data.

    A key found as written is itself. Absent, and two or more of its forms present (two
    specs on one column: ``pid=1.0`` is one's ``pid=1`` and the other's ``pid=true``), it is
    an ``AmbiguousKey`` naming them: the first form tried was taken without a word. Every
    form is asked then, a bounded few, only for a key absent as written."""
    found = trained_forms(key)
    if not found or present(key):
        return key
    there = [v for v in found if present(v)]
    if len(there) > 1:
        raise AmbiguousKey(key, there)
    return there[0] if there else key


def trained_spellings(
    keys: Iterable[str], read: Callable[[list[str]], Mapping[str, T]], *, plain: bool = True
) -> tuple[dict[str, str | None], dict[str, T]]:
    """``{key: the spelling training wrote it in}`` for each distinct one of ``keys`` (itself
    when found, else the first of its other forms found, in ``as_trained``'s order, else
    ``None``), and the rows ``read`` gave. ``read``: the rows of those of some keys that are
    there (partitions, versions at an alias), asked at most twice: the keys as written, then
    the other forms of those absent, if any. One helper for actuals, scoring and forecasts.
    ``plain=False``: a key with no other form is taken as written, unread."""
    distinct = list(dict.fromkeys(keys))
    forms: dict[str, list[str]] = {}
    if not plain:  # only the keys with another form are read
        forms = {k: f for k in distinct if (f := trained_forms(k))}
    first = distinct if plain else list(forms)
    rows = dict(read(first)) if first else {}
    absent = {k: forms[k] if k in forms else trained_forms(k) for k in first if k not in rows}
    asked = set(first)
    others = [f for fs in absent.values() for f in fs if f not in asked]
    if others:
        rows.update(read(list(dict.fromkeys(others))))
    spelt = {
        k: next((f for f in absent[k] if f in rows), None) if k in absent else k for k in distinct
    }
    return spelt, rows


def trained_forms(key: str) -> list[str]:
    """The other forms ``as_trained`` tries for ``key``, in its order: a caller that reads
    the registry for a few named keys reads these with them, in one batched query.

    A bounded few whatever the key (each rewrite applies to every value at once: one table
    writes its timestamps one way), found from the key's text alone: ``ts=2024-01-05 10:30``
    was "no partition" for the ``ts=2024-01-05T10:30:00`` a DataFrame trained (a CSV's
    ``2024-01-05 10:30:00`` for it the other way), ``flag=True`` or ``flag=1`` for
    ``flag=true``. The spellings are ``value_spellings.value_forms``', as a table's keys
    are respelt (``key_spellings``)."""
    unicode = "%" in key  # a value beyond ASCII: its other normal form (``_normal_forms``)
    if not ("." in key or "-" in key or maybe_boolean(key) or unicode):  # no parse without a sign
        return []
    try:
        parsed = decode_key(key)
    except DataError:
        return []
    given = list(parsed.values())
    written = [quote_text(c) + "=" for c in parsed]  # each value's text: quoted once, if changed
    quoted = [w + quote_text(v) for w, v in zip(written, given, strict=True)]
    keys = (
        ",".join(
            q if v == g else w + quote_text(v)
            for w, q, v, g in zip(written, quoted, f, given, strict=True)
        )
        for f in (*value_forms(given), *(_normal_forms(given) if unicode else ()))
    )
    return [k for k in dict.fromkeys(keys) if k != key]


def _normal_forms(values: list[str]) -> list[list[str]]:
    """``values`` in Unicode's composed (NFC) and decomposed (NFD) forms, one text to the eye:
    a key typed as NFD (macOS file names) was "no partition 'store=cafe%CC%81'" beside the
    NFC 'store=caf%C3%A9' a CSV trained."""
    import unicodedata

    return [[unicodedata.normalize(form, v) for v in values] for form in ("NFC", "NFD")]
