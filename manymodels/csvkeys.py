"""What a CSV reader makes of some cells that their writer did not mean: key columns of codes
taken for numbers (``007`` and ``7`` become one), and class labels taken for missing values
(``NA``, ``None``, ``null``…).

Kept apart from ``data`` (reading and checking a table): it re-reads a CSV's columns as
text, which only CSV sources need.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from manymodels.exceptions import DataError
from manymodels.keys import format_value


def padded_codes(path: Path, df: pd.DataFrame, keys: list[str], *, source: str) -> str | None:
    """A CSV reader reads a key column of codes such as ``007`` and ``7`` as numbers, and the
    two partitions silently became one (a Parquet file keeps them apart, as text): a
    ``DataError`` naming both. Only codes with a leading zero count (``1`` and ``1.0`` are
    one partition written two ways); costs a second read of the numeric key columns.

    Codes with leading zeros that merge with none are a warning: their partitions are keyed
    by the numbers (``user=7``), and ``models show user=007``, or a request naming ``"007"``,
    found no partition (the fallback answered) with nothing said at training."""
    if path.is_dir() or path.suffix.lower() in {".parquet", ".pq"}:
        return None
    numeric = [
        c for c in keys
        if c in df.columns and ptypes.is_numeric_dtype(df[c]) and not ptypes.is_bool_dtype(df[c])
    ]  # fmt: skip
    if not numeric:
        return None
    texts = pd.read_csv(path, usecols=numeric, dtype=str)
    warning = None
    for column in numeric:
        written = texts[column].dropna().str.strip().drop_duplicates()
        padded = written.str.match(r"^[+-]?0\d")
        if not padded.any():
            continue
        values = pd.to_numeric(written, errors="coerce")
        shared = written.groupby(values).transform("size") > 1  # one pass: O(distinct codes)
        clash = written[padded & shared]
        if len(clash):
            code, value = clash.iloc[0], values[clash.index[0]]
            other = written[(values == value) & (written != code)].iloc[0]
            raise DataError(
                f"{source}: key column '{column}' holds '{code}' and '{other}', which read as "
                f"one number ({value:g}): their partitions would merge. Give the column as "
                "text (a Parquet file, or a DataFrame with it as str)"
            )
        if warning is None:
            first = written[padded].index[0]
            code, key = written[first], format_value(values[first])
            warning = (
                f"key column '{column}' holds codes written with leading zeros (e.g. '{code}'), "
                f"read as numbers: their partitions are keyed {column}={key}, and a request "
                f"naming '{code}' is answered by the fallback. To keep the zeros, give the "
                "column as text (a Parquet file, or a DataFrame with it as str)"
            )
    return warning


WORDS = frozenset({"NA", "N/A", "n/a", "None"})
"""The tokens pandas reads as missing that are also words a label can be: ``NA`` (North
America, not applicable), ``None`` (no damage). The others (``NULL``, ``null``, ``NaN``,
``nan``, ``#N/A``, ``<NA>``…) are what writers write for a missing value (an SQL export, a
JSON null, numpy's NaN, pandas' NA): unquoted, they stay missing values."""


def literal_labels(
    csv: Path | bytes, df: pd.DataFrame, target: str, *, source: str
) -> tuple[pd.DataFrame, str | None]:
    """``df`` with the class labels a CSV reader took for missing values read as written, and
    a warning saying so (``None`` when there were none).

    pandas reads ``NA``, ``N/A``, ``None``, ``null``, ``nan``… as missing values: a region
    ``NA`` (North America) or a severity ``None`` was a missing target, and its rows were left
    out of training — the whole class, the run saying only "N missing target". In a column of
    text labels an unquoted ``NA``, ``N/A`` or ``None`` is a label, and so is any such token
    written in quotes (``"null"``); an unquoted ``NULL``, ``null``, ``NaN``… is how a writer
    writes a missing value and stays one, as does an empty cell. A column of number labels
    (``0``/``1``) is left as read: there ``NA`` is a missing value. So is an unquoted ``NA``
    where every label is quoted (``"yes"``, ``"no"``, ``NA``): R's ``write.csv``, and any
    writer that quotes all text, writes a missing value so and a label ``NA`` quoted (a writer
    that quotes only what needs it, a label with a comma, does not). Costs a second read of the
    target column (a third for its quotes), and only when it is text with missing values."""
    if isinstance(csv, Path) and (csv.is_dir() or csv.suffix.lower() in {".parquet", ".pq"}):
        return df, None
    if target not in df.columns:
        return df, None
    column = df[target]
    missing = column.isna()
    if not missing.any() or not _text(column[~missing]):
        return df, None
    where = io.BytesIO(csv) if isinstance(csv, bytes) else csv
    written = pd.read_csv(where, usecols=[target], dtype=str, keep_default_na=False)[target]
    tokens = missing.to_numpy() & written.ne("").to_numpy()
    if not tokens.any():
        return df, None
    words = written.str.strip().isin(WORDS).to_numpy()
    quoted = _quoted(csv, target, written)
    if quoted is None:  # quotes unknown: the words are labels, as in a file without quotes
        labels = tokens & words
    elif quoted[~missing.to_numpy()].all():  # every label quoted: an unquoted token is missing
        labels = tokens & quoted
    else:
        labels = tokens & (quoted | words)
    if not labels.any():
        return df, None
    df = df.copy(deep=False)
    df[target] = df[target].where(~labels, written.to_numpy())
    counts = pd.Series(written.to_numpy()[labels]).value_counts()
    shown = ", ".join(f"{t!r} ({n:,} row(s))" for t, n in counts.head(3).items())
    return df, (
        f"{source}: target '{target}' holds {shown}, which a CSV reader takes for missing "
        "values: read as class labels, as written (an empty cell, or an unquoted NULL, null or "
        "NaN, is a missing target)"
    )


_MARK = "\x01"
_OPENING = re.compile(rb'(\A|[,\r\n])"')
_PACKED: dict[str, Callable[..., Any] | None] = {
    ".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".zst": None, ".zip": None
}  # fmt: skip


def _quoted(csv: Path | bytes, target: str, written: pd.Series) -> np.ndarray | None:
    """Which cells of column ``target`` were written in quotes; ``None`` when that cannot be
    told (a compressed file pandas can read but this does not, a marker byte in the file).

    A quote that opens a field follows a comma or a line break: each gets a marker after it,
    and the file is read again; a cell that starts with the marker was quoted. A quoted comma
    or line break stays inside its field (a read with quotes as characters split it, and the
    quotes of every cell were unknown). Where a marker landed inside a quoted field and
    changed how it reads (a ``,""`` in one), the read differs from ``written`` once the
    markers are taken out: then ``None``, never a wrong answer."""
    data = csv if isinstance(csv, bytes) else _raw(csv)
    if data is None or _MARK.encode() in data:
        return None
    marked = _OPENING.sub(rb'\1"' + _MARK.encode(), data)
    try:
        raw = pd.read_csv(
            io.BytesIO(marked), usecols=[_MARK + target], dtype=str, keep_default_na=False
        ).iloc[:, 0]
    except (ValueError, OSError, UnicodeDecodeError):  # the header not quoted, or unreadable
        try:
            raw = pd.read_csv(
                io.BytesIO(marked), usecols=[target], dtype=str, keep_default_na=False
            ).iloc[:, 0]
        except (ValueError, OSError, UnicodeDecodeError):
            return None
    if len(raw) != len(written) or not raw.str.replace(_MARK, "").eq(written).all():
        return None
    return raw.str.startswith(_MARK).to_numpy()


def _raw(path: Path) -> bytes | None:
    """A CSV file's bytes, uncompressed as pandas reads it; ``None`` for a kind not read here."""
    suffix = path.suffix.lower()
    if suffix not in _PACKED:
        return path.read_bytes()
    opener = _PACKED[suffix]
    if opener is None:
        return None
    with opener(path, "rb") as packed:
        return packed.read()


def _text(present: pd.Series) -> bool:
    """Whether a column's present values are all text: pandas 3 reads such a column as
    ``str``, pandas 2 as objects (asked one by one)."""
    if isinstance(present.dtype, pd.StringDtype):
        return True
    return present.dtype == object and bool(present.map(type).eq(str).all())
