"""Key columns a CSV reader takes for numbers: codes such as ``007`` and ``7`` become one.

Kept apart from ``data`` (reading and checking a table): it re-reads a CSV's numeric key
columns as text, which only CSV sources need.
"""

from __future__ import annotations

from pathlib import Path

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
