"""What a CSV reader makes of some cells that their writer did not mean: key columns of codes
taken for numbers (``007`` and ``7`` become one), and class labels taken for missing values
(``NA``, ``None``, ``null``…).

Kept apart from ``data`` (reading and checking a table): it re-reads a CSV's columns as
text, which only CSV sources need.
"""

from __future__ import annotations

import io
from csv import QUOTE_NONE
from pathlib import Path

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


def literal_labels(
    csv: Path | bytes, df: pd.DataFrame, target: str, *, source: str
) -> tuple[pd.DataFrame, str | None]:
    """``df`` with the class labels a CSV reader took for missing values read as written, and
    a warning saying so (``None`` when there were none).

    pandas reads ``NA``, ``N/A``, ``None``, ``null``, ``nan``… as missing values: a region
    ``NA`` (North America) or a severity ``None`` was a missing target, and its rows were left
    out of training — the whole class, the run saying only "N missing target". In a column of
    text labels such a cell is a label; an empty cell stays a missing target. A column of
    number labels (``0``/``1``) is left as read: there ``NA`` is a missing value. So is an
    unquoted ``NA`` where every label is quoted (``"yes"``, ``"no"``, ``NA``): R's
    ``write.csv``, and any writer that quotes all text, writes a missing value so and a label
    ``NA`` quoted (a writer that quotes only what needs it, a label with a comma, does not). Costs a
    second read of the target column (a third for its quotes), and only when it is text with
    missing values."""
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
    labels = missing.to_numpy() & written.ne("").to_numpy()
    if labels.any():  # a writer that quotes its labels wrote an unquoted NA for a missing one
        quoted = _quoted(csv, list(df.columns).index(target), len(df))
        if quoted is not None and quoted[~missing.to_numpy()].all():  # every label quoted
            labels &= quoted
    if not labels.any():
        return df, None
    df = df.copy(deep=False)
    df[target] = df[target].where(~labels, written.to_numpy())
    tokens = pd.Series(written.to_numpy()[labels]).value_counts()
    shown = ", ".join(f"{t!r} ({n:,} row(s))" for t, n in tokens.head(3).items())
    return df, (
        f"{source}: target '{target}' holds {shown}, which a CSV reader takes for missing "
        "values: read as class labels, as written (an empty cell is a missing target)"
    )


def _quoted(csv: Path | bytes, position: int, rows: int) -> np.ndarray | None:
    """Which cells of the column at ``position`` were written in quotes; ``None`` when that
    cannot be told (read with quotes as characters, a quoted comma or line break moves the
    cells: then every such cell is taken as a label, as before)."""
    where = io.BytesIO(csv) if isinstance(csv, bytes) else csv
    try:
        raw = pd.read_csv(
            where, usecols=[position], dtype=str, keep_default_na=False, quoting=QUOTE_NONE
        ).iloc[:, 0]
    except (ValueError, OSError):  # a quoted comma: another count of fields on its line
        return None
    if len(raw) != rows:
        return None
    return (raw.str.len().ge(2) & raw.str.startswith('"') & raw.str.endswith('"')).to_numpy()


def _text(present: pd.Series) -> bool:
    """Whether a column's present values are all text: pandas 3 reads such a column as
    ``str``, pandas 2 as objects (asked one by one)."""
    if isinstance(present.dtype, pd.StringDtype):
        return True
    return present.dtype == object and bool(present.map(type).eq(str).all())
