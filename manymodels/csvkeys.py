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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from manymodels.exceptions import DataError
from manymodels.keys import encode_key, format_value


def padded_codes(
    path: Path | bytes, df: pd.DataFrame, keys: list[str], *, source: str, labels: bool = False
) -> str | None:
    """A CSV reader reads a key column of codes such as ``007`` and ``7`` as numbers, and the
    two partitions silently became one (a Parquet file keeps them apart, as text): a
    ``DataError`` naming both. Only codes with a leading zero count (``1`` and ``1.0`` are
    one partition written two ways); costs a second read of the numeric key columns.

    Codes with leading zeros that merge with none are a warning: their partitions are keyed
    by the numbers (``user=7``), and ``models show user=007``, or a request naming ``"007"``,
    found no partition (the fallback answered) with nothing said at training.

    ``labels``: ``keys`` is a classifier's target, whose codes are classes: labels ``01`` and
    ``1`` became one class, its rows pooled and the other label never answered."""
    if isinstance(path, Path) and (path.is_dir() or path.suffix.lower() in {".parquet", ".pq"}):
        return None
    numeric = [
        c for c in keys
        if c in df.columns and ptypes.is_numeric_dtype(df[c]) and not ptypes.is_bool_dtype(df[c])
    ]  # fmt: skip
    if not numeric:
        return None
    texts = pd.read_csv(
        io.BytesIO(path) if isinstance(path, bytes) else path, usecols=numeric, dtype=str
    )
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
            role, merged = ("target", "classes") if labels else ("key column", "partitions")
            raise DataError(
                f"{source}: {role} '{column}' holds '{code}' and '{other}', which read as "
                f"one number ({value:g}): their {merged} would merge. Give the column as "
                "text (a Parquet file, or a DataFrame with it as str)"
            )
        if warning is None and labels:
            first = written[padded].index[0]
            code, label = written[first], format_value(values[first])
            warning = (
                f"target '{column}' holds labels written with leading zeros (e.g. '{code}'), "
                f"read as numbers: the class is {label}, and answers say {label}, not '{code}'. "
                "To keep the zeros, give the column as text (a Parquet file, or a DataFrame "
                "with it as str)"
            )
        elif warning is None:
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
_OPENING = re.compile(rb'(\A|[,\r\n])"')  # a block's first: the file's first byte is a start
_INNER = re.compile(rb'([,\r\n])"')  # a later block's, read with its previous byte before it
_BLOCK = 1 << 20
_PACKED: dict[str, Callable[..., Any] | None] = {
    ".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".zst": None, ".zip": None
}  # fmt: skip


def _quoted(csv: Path | bytes, target: str, written: pd.Series) -> np.ndarray | None:
    """Which cells of column ``target`` were written in quotes; ``None`` when that cannot be
    told (a compressed file pandas can read but this does not, a marker byte in the file).

    A quote that opens a field follows a comma or a line break: each gets a marker after it
    as the file is read again (a block at a time: the file is never whole in memory here);
    a cell that starts with the marker was quoted. A quoted comma or line break stays inside
    its field (a read with quotes as characters split it, and the quotes of every cell were
    unknown). Where a marker landed inside a quoted field and changed how it reads (a ``,""``
    in one), the read differs from ``written`` once the markers are taken out: then ``None``,
    never a wrong answer."""
    raw = None
    for column in (_MARK + target, target):  # the header quoted, or not
        source = _open(csv)
        if source is None:
            return None
        marked = _Marked(source)
        try:
            with io.BufferedReader(marked, _BLOCK) as stream:
                raw = pd.read_csv(stream, usecols=[column], dtype=str, keep_default_na=False).iloc[
                    :, 0
                ]
            break
        except (ValueError, OSError, UnicodeDecodeError):  # no such column, or unreadable
            continue
    if raw is None or marked.had_mark:
        return None
    if len(raw) != len(written) or not raw.str.replace(_MARK, "").eq(written).all():
        return None
    return raw.str.startswith(_MARK).to_numpy()


class _Marked(io.RawIOBase):
    """The bytes of ``source`` with ``_MARK`` after each quote that opens a field, read a
    block at a time; ``had_mark``: the source itself held the marker byte somewhere."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._previous: bytes | None = None  # the last byte of the block before
        self._pending = b""
        self.had_mark = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            block = self._source.read(_BLOCK)
            if not block:
                return 0
            self.had_mark = self.had_mark or _MARK.encode() in block
            if self._previous is None:
                self._pending = _OPENING.sub(rb'\1"' + _MARK.encode(), block)
            else:
                both = _INNER.sub(rb'\1"' + _MARK.encode(), self._previous + block)
                self._pending = both[1:]
            self._previous = block[-1:]
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._source.close()
        super().close()


def _open(csv: Path | bytes) -> IO[bytes] | None:
    """A CSV's bytes to read, uncompressed as pandas reads it; ``None`` for a kind not read
    here."""
    if isinstance(csv, bytes):
        return io.BytesIO(csv)
    suffix = csv.suffix.lower()
    if suffix not in _PACKED:
        return csv.open("rb")
    opener = _PACKED[suffix]
    return None if opener is None else opener(csv, "rb")


def _text(present: pd.Series) -> bool:
    """Whether a column's present values are all text: pandas 3 reads such a column as
    ``str``, pandas 2 as objects (asked one by one)."""
    if isinstance(present.dtype, pd.StringDtype):
        return True
    return present.dtype == object and bool(present.map(type).eq(str).all())


def keys_as_recorded(source: object, df: pd.DataFrame, recorded: Mapping[str, Any]) -> pd.DataFrame:
    """``df`` (read from ``source``) with the key columns that a known partition's key values
    (``recorded``) hold as text read again as text, when ``source`` is a CSV file: its reader
    made codes such as ``007`` the number 7, keyed ``pid=7``, and such rows matched no
    partition of a registry trained from Parquet or a DataFrame (a forecast's future rows went
    unused, a score's rows were answered by the fallback). One read of those columns.
    ``source`` may be a CSV's bytes (a file posted to the router's retrain)."""
    if isinstance(source, pd.DataFrame) or not recorded:
        return df
    where = _csv_file(source)
    if where is None:
        return df
    text = [
        c for c, v in recorded.items()
        if isinstance(v, str) and c in df.columns and df[c].dtype.kind in "iuf"
    ]  # fmt: skip
    if text:
        df = df.copy()
        df[text] = pd.read_csv(where, usecols=text, dtype=str)[text].to_numpy()
    return df


def _csv_file(source: object) -> Path | io.BytesIO | None:
    """Where to read ``source`` again as a CSV, or ``None`` when it is no CSV file."""
    if isinstance(source, bytes):
        return io.BytesIO(source)
    where = Path(str(source))
    if where.is_dir() or where.suffix.lower() in {".parquet", ".pq"} or not where.is_file():
        return None
    return where


def data_keys_recorded(registry: Any, source: object, df: pd.DataFrame) -> dict[str, Any]:
    """The key values, as the registry recorded them, of the partitions ``df``'s own keys
    name (``df`` read from ``source``): what ``keys_as_recorded`` reads a CSV's numeric key
    column as text by. A registry holding keys of both types in one column (a spec trained
    from a CSV of numbers beside one from Parquet of codes such as 007) answered by its
    first partition alone (``known_key``): when that was a number, a CSV of codes was read
    as 7, and every row scored by the fallback. The keys whose text a number would not give
    back (``007``, ``1.50``) are looked up as text, by primary key (O(such keys)); a column
    any found partition holds as text is read as text (``pid=7`` and ``pid=007`` alike find
    theirs then: the text of a number keys as the number does). A key of plain numbers
    reads the same either way, and data of no such key found, or no CSV, is read as before
    (``known_key``): ~0.1 s more for a CSV of 100,000 keys."""
    columns = list(registry.partition_by or [])
    if isinstance(source, pd.DataFrame) or not columns or any(c not in df for c in columns):
        return known_key(registry)
    numeric = [c for c in columns if df[c].dtype.kind in "iuf"]
    where = _csv_file(source) if numeric else None
    if where is None:
        return known_key(registry)
    text = pd.read_csv(where, usecols=numeric, dtype=str)[numeric]
    differs = np.zeros(len(df), dtype=bool)
    for c in numeric:
        differs |= text[c].notna().to_numpy() & (text[c].to_numpy() != _written(df[c]))
    if not differs.any():
        return known_key(registry)
    read = df.loc[differs, columns].copy()
    read[numeric] = text.loc[differs, numeric].to_numpy()
    forms = {
        encode_key(values, columns)
        for values in read.dropna().drop_duplicates().itertuples(index=False, name=None)
    }
    found = registry.store.key_values_of(sorted(forms))
    out = {c: v for values in found.values() for c, v in values.items() if isinstance(v, str)}
    return {c: out[c] for c in numeric if c in out} or known_key(registry)


def _written(column: pd.Series) -> np.ndarray:
    """Each number of a key column as a key writes it (``format_value``), ``None`` where
    missing: integers at once, other numbers once per distinct value."""
    if column.dtype.kind in "iu":
        return column.astype(str).to_numpy()
    distinct = pd.unique(column.dropna())
    written = dict(zip(distinct, map(format_value, distinct), strict=True))
    return column.map(written).to_numpy()


def known_key(registry: Any) -> dict[str, Any]:
    """One partition's key values in a ``Registry`` (the types its keys have: ``"007"``, 7),
    or none; the fallback's key has no values."""
    for partition in registry.list_partitions(limit=2):
        if partition.key_values:
            return dict(partition.key_values)
    return {}


def recorded_key(
    registry: Any, columns: Sequence[str], data: object
) -> Callable[[pd.DataFrame], dict[str, Any]] | None:
    """What ``data_keys_recorded`` finds of ``registry`` (a ``Registry``, or where one may
    be) for the key ``columns`` only, once a run has read its table ``data``: a retrain from a
    CSV of codes such as 007 (the registry trained from Parquet, keyed 'pid=007') trained new
    partitions 'pid=7' beside them, the old ones serving on. ``{}`` when no registry is there
    yet (none is created); ``None`` for a table not given as a file (a DataFrame keeps its
    types)."""
    from manymodels.exceptions import NoRegistry
    from manymodels.registry.client import Registry
    from manymodels.registry.registry_location import open_existing

    if not isinstance(data, str | Path):
        return None

    def recorded(df: pd.DataFrame) -> dict[str, Any]:
        if isinstance(registry, Registry):
            known = data_keys_recorded(registry, data, df)
        else:
            try:
                with open_existing(registry) as reg:
                    known = data_keys_recorded(reg, data, df)
            except NoRegistry:
                return {}
        return {c: v for c, v in known.items() if c in columns}

    return recorded
