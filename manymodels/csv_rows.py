"""Two checks of a CSV as pandas read it. Rows holding more fields than its header names:
pandas takes the extra leading fields as row labels and moves every column's name one column
on; refused, unless those fields are R's row names (``write.table``), which R and pandas read
so. A number past float64 among decimals (400 digits), which pandas reads as ``inf``:
refused in the words every door uses for such a number (``huge_numbers``).

Kept apart from ``tables`` (reading and writing tables), which calls it for every CSV read
whole, as the router's upload does.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from manymodels.exceptions import DataError
from manymodels.huge_numbers import too_large
from manymodels.row_numbers import data_row

_INFINITIES = frozenset({"inf", "infinity", "+inf", "+infinity", "-inf", "-infinity"})


def refuse_shifted(df: pd.DataFrame, source: Any, *, csv: Path | bytes) -> pd.DataFrame:
    """``df``, read by ``pd.read_csv`` from ``csv`` (a file, or an upload's bytes), unless its
    first data row held more fields than its header row names and those are no row-names
    column: pandas then takes the first fields of every row as row labels and moves each
    column's name onto the next column's values (``store,x,y`` over ``1,2.0,3.0,`` read store
    as 2.0, x as 3.0, y as empty), and ``train`` trained the shifted columns without a word:
    a comma at the end of each row, as some exports write, or a value holding an unquoted
    comma. A ``DataError`` naming the counts instead. Row labels 0, 1, 2 … are pandas' own;
    a row-names column the header does not name (R's ``write.table(df, sep=",")`` writes
    ``"store","x","y"`` over ``"1","s1",1,2``, and R and pandas read it so) is let through,
    as its columns hold what their names say (``_row_names``). Labels 0 … n-1 are also what
    pandas makes of a first column holding exactly 0 … n-1 under a comma ending each row
    (``id,x,y`` over ``0,1.0,2.0,``): that file was let through, ``id`` read as 1.0; so the
    rows' widths decide then, not the labels' values."""
    if df.index.nlevels == 1 and df.index.equals(pd.RangeIndex(len(df))) and not _wider(csv):
        return df
    if df.index.nlevels == 1 and _row_names(df, csv):
        return df.reset_index(drop=True)
    extra, names = df.index.nlevels, len(df.columns)
    raise DataError(
        f"{source}: its first data row holds {names + extra} fields, {extra} more than the "
        f"{names} its header row names (a comma at the end of each row, or a value holding "
        "an unquoted comma?): the columns would be read shifted; give every row the header's "
        "fields"
    )


def refuse_overflowed(df: pd.DataFrame, source: Any, *, csv: Path | bytes) -> pd.DataFrame:
    """``df`` (as ``refuse_shifted`` returned it), unless a float column holds ``inf`` where
    its cell was a number: pandas reads a 400-digit number among decimals as ``inf`` (among
    integers it keeps it exact, which every door names as too large), and ``train`` failed
    the partition with scikit-learn's "Input X contains infinity", ``score`` with the same,
    naming neither the column nor the row. A ``DataError`` naming them instead. A cell that
    says ``inf`` stays as before (a value the caller judges). The text of the columns holding
    an infinity is read again, only then: other files pay one ``isinf`` a column."""
    floats = [j for j in range(df.shape[1]) if ptypes.is_float_dtype(df.dtypes.iloc[j])]
    infinite = {
        j: np.flatnonzero(np.isinf(df.iloc[:, j].to_numpy(dtype=np.float64, na_value=np.nan)))
        for j in floats
    }
    infinite = {j: rows for j, rows in infinite.items() if len(rows)}
    if not infinite:
        return df
    # the infinite columns alone, where the header names every field (a file of literal
    # ``inf`` cells, as ``to_csv`` writes numpy's, was read again whole as text: 14 times
    # the read's time at 1,000,000 rows); R's row names shift positions: the whole file
    only = sorted(infinite) if not _wider(csv) else None
    with _opened(csv) as stream:  # the same shape: the same row labels, the same columns
        text = pd.read_csv(stream, dtype=str, keep_default_na=False, usecols=only)
    for j, rows in infinite.items():
        at = only.index(j) if only is not None else j
        for i in rows:
            cell = str(text.iat[int(i), at]).strip()
            if cell.lower() in _INFINITIES:
                continue
            value: Any = int(cell) if cell.lstrip("+-").isdigit() else cell
            what = f"column '{df.columns[j]}'"
            raise DataError(f"{source}: {too_large(what, value, data_row(int(i)))}")
    return df


def _wider(csv: Path | bytes) -> bool:
    """Whether the first data row holds more fields than the header row: then pandas took
    the first ones as row labels. Reads those two rows only."""
    with _opened(csv) as stream:
        rows = (row for row in _records(stream) if not _blank(row))
        header, first = next(rows, None), next(rows, None)
    return header is not None and first is not None and len(first) > len(header)


_FIELD_LIMIT = 2**31 - 1
"""The ``csv`` module's most a field may hold (a C ``long`` on every platform): its default,
128 KiB, made a cell pandas reads whole (a long text, a JSON document) a ``_csv.Error``."""


def _records(stream: Any) -> Iterator[list[str]]:
    """The ``csv`` module's records of ``stream``, with no bound on a field's length but the
    one pandas has: ``read_table`` read a CSV whose first data row held a cell of 131,073
    characters or more, then ``_wider`` raised "field larger than field limit (131072)", a
    traceback of ``train`` (and a 500 of the router's upload) for a file pandas had read.
    The limit is the process's; it is only ever raised, never lowered."""
    import csv as csv_

    if csv_.field_size_limit() < _FIELD_LIMIT:
        csv_.field_size_limit(_FIELD_LIMIT)
    return csv_.reader(stream)


def _blank(row: list[str]) -> bool:
    """A line pandas skips: empty, or only spaces and tabs (the ``csv`` module reads the latter
    as one field, which, taken for the header, made a file pandas read whole "shifted")."""
    return not row or (len(row) == 1 and not row[0].strip(" \t"))


def _opened(csv: Path | bytes) -> Any:
    """``csv`` as text, as pandas decodes it (a UTF-8 byte-order mark dropped, gzip opened)."""
    if isinstance(csv, bytes):
        return io.TextIOWrapper(io.BytesIO(csv), "utf-8-sig", "replace", newline="")
    if csv.name.endswith(".gz"):
        return gzip.open(csv, "rt", encoding="utf-8-sig", errors="replace", newline="")
    return open(csv, encoding="utf-8-sig", errors="replace", newline="")


def _row_names(df: pd.DataFrame, csv: Path | bytes) -> bool:
    """Whether ``df``'s row labels are a row-names column, the convention of R's
    ``write.table`` (a header one field short of every row, which R's ``read.csv`` and
    pandas both read as row names): labels unique and none missing, every data row exactly
    one field more than the header, and not every row's last field empty (a comma ending
    each row). A value holding an unquoted comma in some rows leaves others a field short:
    not row names. Read with the ``csv`` module (pandas' parser fills a missing field as an
    empty one), only for a file pandas read with row labels: other files pay nothing."""
    if not df.index.is_unique or df.index.hasnans:
        return False
    width, any_last = len(df.columns) + 1, False
    with _opened(csv) as stream:
        rows = _records(stream)
        next(rows, None)  # the header row
        for row in rows:
            if _blank(row):
                continue
            if len(row) != width:
                return False
            any_last = any_last or row[-1] != ""
    return any_last


def not_utf8(path: Path, error: UnicodeDecodeError) -> str:
    """Which byte of a CSV is no UTF-8, by its line: pandas' error said "can't decode byte
    0xf6 in position 1", a position in some block of the file (a Latin-1 export's 'ö'). The
    file is read again on this path only, a block at a time up to that byte: read whole, a
    file larger than the memory left (a 20 GB export) ended in a ``MemoryError`` or the
    process killed, for a message."""
    where = f"byte 0x{error.object[error.start]:02x}"
    opened: Any = gzip.open if path.name.lower().endswith(".gz") else open
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 1  # the line the decoder's next input starts in
    try:
        with opened(path, "rb") as stream:
            while True:
                block = stream.read(_BLOCK)
                pending = decoder.getstate()[0]  # bytes of a character cut by the last block
                try:
                    decoder.decode(block, final=not block)
                except UnicodeDecodeError as e:
                    data = pending + block
                    line = lines + data.count(b"\n", 0, e.start)
                    where = (
                        f"byte 0x{data[e.start]:02x} in line {line}, counting the header as line 1"
                    )
                    break
                if not block:
                    break
                lines += block.count(b"\n")
    except (OSError, EOFError, zlib.error):
        pass
    return f"{path}: is not UTF-8 text ({where}): save it as UTF-8, or as Parquet"


_BLOCK = 1 << 20
"""How much of a file ``not_utf8`` holds at a time."""
