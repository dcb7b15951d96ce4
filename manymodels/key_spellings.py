"""A table's key values written as the registry it trains into already spells them.

Training writes a key value as its table holds it: a DataFrame's timestamp by ``isoformat``
(``ts=2024-01-05T10:30:00``, a day ``ts=2024-01-05T00:00:00``), the same column read from a
CSV as its text (``ts=2024-01-05%2010:30:00``, ``ts=2024-01-05``), a boolean column as
``true``/``false`` where a CSV of flags holds ``1``/``0``. A registry trained from one and
trained again from the other made a second partition of each key beside the first (each
spelling then served its own model). Here each key the table's rows name that the registry
lacks as written, but holds in another spelling (``value_spellings.value_forms``, tried in
the order ``trained_keys.trained_forms`` tries them for a key named), is written so.

Kept apart from ``csvkeys`` (which reads a CSV's codes such as ``007`` as text): a DataFrame
or a Parquet file of timestamps into a registry a CSV trained needs the same, and a CSV's
numbers are read as the registry holds them first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from manymodels.exceptions import DataError
from manymodels.keys import encode_texts, format_value
from manymodels.value_spellings import value_forms

Present = Callable[[Sequence[str]], set[str]]
"""Which of some canonical keys are partitions of the registry: one batched read."""


def respellable(df: pd.DataFrame, columns: Sequence[str]) -> bool:
    """Whether a key column of ``df`` may be written otherwise by a registry: timestamps or
    dates (a datetime column, or values whose text reads ``YYYY-…``), text reading as a
    decimal (``2.0``), or a column of ``0`` and ``1`` (a boolean's flags, as a CSV writes
    them). Checks dtypes and one value per column (and ``0``/``1`` in a column of integers):
    a table keyed by plain codes or text pays nothing more."""
    for c in columns:
        if c not in df.columns:
            return False
    for c in columns:
        column = df[c]
        if pd.api.types.is_datetime64_any_dtype(column):
            return True
        if pd.api.types.is_integer_dtype(column) and not pd.api.types.is_bool_dtype(column):
            if len(column) and bool(column.isin((0, 1)).all()):
                return True
            continue
        if column.dtype.kind in "OSUT" or isinstance(column.dtype, pd.StringDtype):
            first = column.first_valid_index()
            if first is not None and _spelt_otherwise(column.loc[first]):
                return True
    return False


def _spelt_otherwise(value: Any) -> bool:
    """Whether one key value's text starts like a date (``2024-01-05…``) or reads as a
    decimal number (``2.0``, a text column's: a named ``store=2.0`` found ``store=2``, and
    the same value in a table trained ``store=2.0`` beside it)."""
    try:
        text = format_value(value)
    except DataError:  # a value no key writes: split names it
        return False
    return (text[4:5] == "-" and text[:4].isdigit()) or _DECIMAL.fullmatch(text) is not None


_DECIMAL = re.compile(r"-?[0-9]+\.[0-9]+", re.ASCII)


def keys_as_spelt(
    df: pd.DataFrame, columns: Sequence[str], present: Present, other: Present | None = None
) -> pd.DataFrame:
    """``df`` with the key ``columns`` of each key absent from the registry (``present``),
    whose other spelling is there, written as that one (the columns it touches hold each
    key's text then, every row's written as its key writes it). A key found as written is
    never respelt, nor one with no partition in any spelling (a new one). ``other``: which of
    the other spellings may be written so (``present`` by default; the spec's own partitions
    when a registry holds two specs, whose keys 0 and 1 are not the other's flags).

    Once per run, over the table's distinct keys: two batched reads of the registry (the
    keys as written; the other spellings of those absent, only when one is), the spellings
    of each absent key (``value_spellings.value_forms``), one merge over the rows. Asked only
    of a table with ``columns`` ``respellable`` found a key another spelling may name
    (``registry_spelling`` asks it once, before it opens a registry: a column of 0 and 1 is
    read whole)."""
    columns = list(columns)
    distinct = df[columns].dropna().drop_duplicates(ignore_index=True)
    if distinct.empty:
        return df
    texts = {c: _texts(distinct[c]) for c in columns}
    keys = encode_texts(columns, [texts[c] for c in columns])
    found = present(keys)
    absent = np.flatnonzero([k not in found for k in keys])
    if not len(absent):
        return df
    given = zip(*(texts[c][absent] for c in columns), strict=True)
    owners, forms = _other_forms([list(values) for values in given])
    if not forms:
        return df
    tried = encode_texts(columns, [np.array(v, dtype=object) for v in zip(*forms, strict=True)])
    there = (other or present)(sorted(set(tried)))
    if not there:
        return df
    spelt = {c: texts[c].copy() for c in columns}
    done = np.zeros(len(absent), dtype=bool)
    for n, form, key in zip(owners, forms, tried, strict=True):
        if not done[n] and key in there:  # the first spelling found, as ``as_trained``
            for c, value in zip(columns, form, strict=True):
                spelt[c][absent[n]] = value
            done[n] = True
    touched = [c for c in columns if not np.array_equal(spelt[c], texts[c])]
    mapping = distinct.assign(**{f"\x00{c}": spelt[c] for c in touched})
    merged = df[columns].merge(mapping, on=columns, how="left", sort=False)
    out = df.copy(deep=False)
    for c in touched:
        column = merged[f"\x00{c}"].to_numpy(dtype=object)  # a missing key stays missing
        flags = pd.unique(column)
        if len(flags) <= 2 and set(flags.tolist()) <= {"true", "false"}:
            column = column == "true"  # booleans, as the registry's: an append casts so
        out[c] = column
    return out


def _texts(column: pd.Series) -> np.ndarray:
    """Each value of a key column as a key writes it (``format_value``): a column of whole
    seconds without a zone at once (``isoformat``'s text, as numpy writes it), any other
    once per value."""
    values = column.to_numpy()
    if values.dtype.kind == "M" and len(values):
        seconds = values.astype("datetime64[s]")
        low, high = np.datetime64("1000-01-01", "s"), np.datetime64("9999-12-31", "s")
        if (seconds == values).all() and seconds.min() >= low and seconds.max() <= high:
            return np.datetime_as_string(seconds, unit="s").astype(object)
    return np.array([format_value(v) for v in column.tolist()], dtype=object)


def _other_forms(keys: list[list[str]]) -> tuple[list[int], list[list[str]]]:
    """Each other spelling of each of ``keys`` (a key's values as text), in the order one
    key's are tried (``value_spellings.value_forms``, as ``trained_keys.trained_forms``): which key
    each is of, and its values. One table's keys are each spelt as any key is named, where
    a table of its own spellings here lacked one (a day beside a timestamp)."""
    owners: list[int] = []
    forms: list[list[str]] = []
    for n, values in enumerate(keys):
        for form in value_forms(values):
            owners.append(n)
            forms.append(form)
    return owners, forms


def registry_spelling(
    registry: Any,
    columns: Sequence[str],
    spec_name: str | None = None,
    *,
    among: Container[str] | None = None,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``keys_as_spelt`` against ``registry`` (a ``Registry``, or where one may be: opened
    only when the table has a key another spelling may name, and nothing when none is there
    yet, none created). ``spec_name``: a key is respelt only to a partition that spec's
    newest version trained (a registry of two specs keyed by the same column: the second's
    stores 0 and 1 were written over the first's ``pid=false``/``pid=true``). ``among``: only
    to one of these keys (a forecast's own partitions, already read: no query)."""
    from manymodels.exceptions import NoRegistry
    from manymodels.registry.client import Registry
    from manymodels.registry.registry_location import RegistryLocation, open_existing

    def targets(reg: Any) -> Present | None:
        if among is not None:
            return lambda keys: {k for k in keys if k in among}
        return _own(reg, spec_name)

    def spelt(df: pd.DataFrame) -> pd.DataFrame:
        if not respellable(df, columns):
            return df
        if isinstance(registry, Registry):
            return keys_as_spelt(df, columns, _present(registry), targets(registry))
        if not isinstance(registry, str | Path | RegistryLocation):
            return df
        try:
            with open_existing(registry) as reg:
                return keys_as_spelt(df, columns, _present(reg), targets(reg))
        except NoRegistry:
            return df

    return spelt


def _present(registry: Any) -> Present:
    """The batched read of which keys are the registry's partitions (by primary key)."""
    return lambda keys: set(registry.store.key_values_of(keys))


def _own(registry: Any, spec_name: str | None) -> Present | None:
    """Which keys are partitions whose newest version ``spec_name`` trained (one batched
    join), or ``None`` (any partition) without a spec to ask of."""
    if spec_name is None:
        return None
    names = registry.store.latest_spec_names
    return lambda keys: {k for k, name in names(keys).items() if name == spec_name}
