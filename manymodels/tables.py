"""Tables in: a DataFrame or a CSV / Parquet file read as a plain frame. Tables out (scores
and forecasts written whole or not at all) are ``manymodels.table_output``'s, re-exported here
for the callers that import them from this module.

What a table means under a spec (its columns' roles, bad rows, derived features) is
``manymodels.data``'s job; this module only moves rows between files and frames, and says
which file when it cannot.
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from manymodels.argument_order import refuse_registry_as_data, swapped_hint
from manymodels.csv_rows import not_utf8, refuse_overflowed, refuse_shifted
from manymodels.exceptions import DataError, pandas_first_line
from manymodels.parquet_schema import repeated_field
from manymodels.store_urls import data_path

# the writers, re-exported: callers import them from here (table_output imports nothing from
# this module at run time: no cycle)
from manymodels.table_output import OLD_OUT_TMP as OLD_OUT_TMP
from manymodels.table_output import OUT_TMP_PREFIX as OUT_TMP_PREFIX
from manymodels.table_output import output_format as output_format
from manymodels.table_output import write_table as write_table
from manymodels.table_output import write_tables as write_tables

DataSource: TypeAlias = pd.DataFrame | str | Path


def describe_source(source: DataSource) -> str:
    return "<DataFrame>" if isinstance(source, pd.DataFrame) else str(source)


def require_table(source: object, what: str = "data") -> DataSource:
    """``source`` as the readers open it, or ``DataError`` unless it is a DataFrame or a
    path: a list of dicts was read as a file name ("File name too long", quoting every row),
    ``None`` failed in ``pathlib``. ``what``: the argument, as the caller named it
    (``future``). A path is read as ``--artifacts`` is (``store_urls.data_path``: a ``file``
    URL is its local path, a scheme's case does not matter); a caller that goes on to look
    at the path itself keeps what this returns."""
    if isinstance(source, pd.DataFrame):
        refuse_registry_as_data(source)
        return source
    if isinstance(source, str) and not source:  # `score "$DATA"` with DATA unset: read as
        # the current directory, a Parquet dataset ("Could not read schema from './notes.txt'")
        raise DataError(f"{what} is an empty path (''): name a .csv or .parquet file")
    if isinstance(source, str | os.PathLike):
        source = data_path(source if isinstance(source, str | Path) else Path(source))
        refuse_registry_as_data(source)  # score(registry, frame): arguments swapped
        return source
    rows = isinstance(source, list | tuple | dict) or hasattr(source, "shape")  # an array
    hint = " (pandas.DataFrame(…) makes one)" if rows else swapped_hint(source)
    raise DataError(
        f"{what} must be a pandas DataFrame or the path of a CSV or Parquet file, not "
        f"{type(source).__name__}{hint}"
    )


def require_found(source: object, what: str = "data") -> DataSource:
    """``require_table``, and ``DataError`` ("data file not found") for a path on this
    machine that does not exist: the one check of a missing file, made by the reader and by
    ``train`` before it opens (and makes) a registry: a typo in the data's name, checked only
    when the data was read, left an empty registry behind (``append``, which opens the
    registry first; the CLI's ``--registry-db``, opened by the CLI). A frame, or another
    machine's URL (read by the run), passes."""
    source = require_table(source, what)
    if not isinstance(source, pd.DataFrame) and "://" not in str(source):
        path = Path(source).expanduser()  # '~/sales.csv', as pandas reads it
        try:
            found = path.exists()
        except OSError as e:  # a name too long for the filesystem: a traceback, not a line
            raise DataError(f"{path}: cannot look for the data file ({e.strerror})") from None
        if not found:
            raise DataError(f"{path}: data file not found")
    return source


def refuse_repeated_columns(df: pd.DataFrame, source: str, used: Iterable[Any]) -> None:
    """``DataError`` for a column of ``used`` named twice: which of the two a feature (or a
    key) is, is anyone's guess, and pandas answers ``df[name]`` with a frame, which failed
    far inside (``'DataFrame' object has no attribute 'dtype'``). A column nothing reads may
    be named twice, as it always could."""
    if not df.columns.is_unique:
        wanted = set(used)
        twice = [c for c in df.columns[df.columns.duplicated()] if c in wanted]
        if twice:
            raise DataError(f"{source}: column {str(twice[0])!r} is named twice")


def column_hint(missing: Sequence[str], columns: Iterable[Any]) -> str:
    """What a table's header most likely got wrong, for the "missing column(s)" error: a
    column that matches a missing one but for spaces or case (a header written ``store,
    date`` reads as ' date'), or one header cell holding several names (a file separated by
    ``;`` or tabs, which the CSV reader takes as one column), or one a letter or two off
    (``'unit'`` for ``'units'``: a typo in the spec or the header, which the table's list of
    columns left to spot by eye). ``""`` when none."""
    columns = [str(c) for c in columns]
    loose = {c.strip().casefold(): c for c in columns}
    near = [(m, loose[m.strip().casefold()]) for m in missing if m.strip().casefold() in loose]
    for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
        if not near and len(columns) == 1 and sep in columns[0]:
            return f"; its header is one column holding {name}: give the table comma-separated"
    cased = {wanted for wanted, _ in near}
    typos = close_names([m for m in missing if m not in cased], columns)
    # both said: a case slip beside a typo hid the typo until the next run
    said = [f"the table has {_pairs(near)}: names differ in spaces or case"] if near else []
    said += [did_you_mean(typos)] if typos else []
    return "".join(f"; {part}" for part in said)


def close_names(wanted: Sequence[str], names: Iterable[str]) -> list[tuple[str, str]]:
    """``(wanted, name)`` for each wanted name that one of ``names`` is a letter or two off
    (``'unit'`` for ``'units'``), compared case-blind: 'unit' for 'Units' (a letter and a case
    off) scored 0.67 as written, under the cutoff, and was not suggested. One did-you-mean for
    a table's header and a router's key columns alike."""
    import difflib

    loose = {str(c).strip().casefold(): str(c) for c in names}
    close = [(m, difflib.get_close_matches(m.strip().casefold(), list(loose), n=1, cutoff=0.8))
             for m in wanted]  # fmt: skip
    return [(m, loose[found[0]]) for m, found in close if found]


def did_you_mean(found: list[tuple[str, str]]) -> str:
    """``did you mean 'store' for 'stor'?`` (each pair's name for its wanted one) of
    ``close_names``' pairs, or nothing."""
    return f"did you mean {_pairs(found)}?" if found else ""


def _pairs(found: list[tuple[str, str]]) -> str:
    """``'units' for 'unit', …``: the first five of a hint's (wanted, found) pairs."""
    return ", ".join(f"{column!r} for {wanted!r}" for wanted, column in found[:5])


def read_table(source: DataSource) -> pd.DataFrame:
    """A DataFrame (``plain``), or a CSV / Parquet file by its extension. A CSV header or a
    Parquet file naming a column twice is refused (pyarrow refuses the latter); a frame's is
    refused where its columns are read by role (``refuse_repeated_columns``)."""
    return plain(read_given(source))


def read_given(source: DataSource) -> pd.DataFrame:
    """``read_table`` before ``plain``: the frame as the caller gave it (or as pandas reads
    the file), its ``category`` columns and index names kept, for an output that returns
    the caller's columns as they were (``score``'s)."""
    source = require_found(source)
    if not isinstance(source, pd.DataFrame) and "://" in str(source):
        # data_path leaves only another machine's URL (s3://b/x.csv): read as a local path, it
        # was "s3:/b/x.csv: data file not found". Only train's batches read one (datasets): a
        # CSV, a score's table and a global spec's data are read whole, here
        raise DataError(
            f"{source}: a table read whole comes from a path on this machine, not a URL: copy "
            "it here (only train reads a Parquet file or directory by URL, for a spec without "
            "global candidates)"
        )
    if isinstance(source, pd.DataFrame):
        if source.columns.nlevels > 1:  # a pivot's or a groupby().agg()'s: a raw KeyError
            raise DataError(
                f"<DataFrame>: its columns have {source.columns.nlevels} levels (a MultiIndex, "
                "as pivot_table and agg make): flatten them to one name each first"
            )
        return source
    path = Path(source).expanduser()  # found by require_found
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"} or path.is_dir():
            return read_parquet(path)
        if suffix in {".csv", ".txt"} or path.name.endswith(".csv.gz"):
            refuse_repeated_header(path)
            df = refuse_shifted(pd.read_csv(path), path, csv=path)
            return refuse_overflowed(df, path, csv=path)
    except DataError:  # said already, naming the file
        raise
    except UnicodeDecodeError as e:
        raise DataError(not_utf8(path, e)) from None
    except pd.errors.EmptyDataError:  # pandas said "No columns to parse from file"
        raise DataError(f"{path}: the file is empty (no header, no rows)") from None
    except (OSError, ValueError, EOFError, zlib.error) as e:
        # EOFError: a .csv.gz cut short; zlib.error: one damaged inside (a bad copy)
        twice = repeated_field(path) if suffix in {".parquet", ".pq"} else None
        if twice is not None:  # pyarrow said "Multiple matches for FieldRef.Name(price) in
            # store: int64 …", its whole schema, of the one name the CSV refusal states
            raise DataError(f"{path}: column '{twice}' is named twice in the file") from None
        raise DataError(
            f"{path}: cannot read table ({type(e).__name__}: {pandas_first_line(e)})"
        ) from None
    raise DataError(f"{path}: unknown data format '{suffix}' (expected .csv or .parquet)")


def read_parquet(source: Path | bytes) -> pd.DataFrame:
    """A Parquet file (or directory, or a file's bytes) as ``pd.read_parquet`` reads it; one
    whose pandas metadata (the b"pandas" key of its schema: JSON that pyarrow's and pandas'
    Python code interpret) does not fit its columns is read as stored, the metadata ignored,
    as a reader without pandas would read it. That metadata, written by hand or by a tool
    that changed the columns and kept it, raised anything: ``KeyError``, ``TypeError``,
    ``ValueError`` (a column index level text that is no literal, a time zone over text
    columns), ``OverflowError`` (a range index of 10**30 rows: a traceback of ``train``, a
    500 of a retrain's upload). What the second read raises is the file's own fault (bytes
    pyarrow cannot decode, pyarrow's ``ArrowIndexError`` among them): the caller refuses it
    as a file it cannot read."""

    def source_() -> Path | io.BytesIO:
        return io.BytesIO(source) if isinstance(source, bytes) else source

    try:
        return pd.read_parquet(source_())
    except Exception:  # the metadata's fault, or the file's: the second read tells them apart
        pass
    return pd.read_parquet(source_(), to_pandas_kwargs={"ignore_metadata": True})


def plain(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its ``category`` columns as their categories' values, and no index level
    named like a column; the same frame when it has neither.

    A category is how pandas stores a column, not what its values are: a feature of number
    categories was recorded as text, every later request had to send text, and the encoder,
    fitted on the numbers, took that text for an unknown value (every one-hot column 0:
    wrong answers, silently); category keys also changed the data's fingerprint, so
    ``--changed-only`` retrained unchanged partitions. An index level named like a key
    column (``set_index("store", drop=False)``) made pandas' groupby refuse the name."""
    if not df.columns.is_unique:  # a name twice: refused where it is read, naming it
        return df
    categories = {
        c: _values(df[c]) for c, t in df.dtypes.items() if isinstance(t, pd.CategoricalDtype)
    }
    names = list(df.index.names)
    clash = [n for n in names if n is not None and n in df.columns]
    if not categories and not clash:
        return df
    out = df.copy(deep=False)  # the other columns shared, not copied (pandas 2 too)
    for column, values in categories.items():
        out[column] = values
    if clash:
        out.index = out.index.set_names([None if n in clash else n for n in names])
    return out


def _values(s: pd.Series) -> pd.Series:
    """A categorical column as its categories' dtype: booleans, and whole numbers, with a
    missing value as floats (a model holds them as numbers: as text, no request matched
    them); intervals (``pd.cut``) as their text (no model holds an interval)."""
    kind = s.cat.categories.dtype
    if isinstance(kind, pd.IntervalDtype):
        return s.astype(str).where(s.notna(), np.nan)
    if s.isna().any() and kind.kind in "iub":
        return s.astype(np.float64)
    return s.astype(kind)


def refuse_repeated_header(csv: Path | bytes, name: str | None = None) -> None:
    """A CSV naming one column twice: pandas renames the second ``x`` to ``x.1``, which then
    trained as a feature under a name nobody wrote (or, with ``features = ["x"]``, the first
    ``x`` alone, silently). Its header row is read on its own, as text. ``csv``: a file, or
    the bytes of one (a router's upload), called ``name`` in the error."""
    where = io.BytesIO(csv) if isinstance(csv, bytes) else csv
    name = name or ("the file" if isinstance(csv, bytes) else str(csv))
    first = pd.read_csv(where, nrows=1, header=None, dtype=str)
    names = first.iloc[0].tolist() if len(first) else []
    seen: set[str] = set()
    for column in names:
        if isinstance(column, str) and column in seen:
            raise DataError(f"{name}: column '{column}' is named twice in the header row")
        seen.add(column)


def in_table(e: DataError, name: str, source: DataSource) -> DataError:
    """A grouping's error (``split``'s, ``group_rows``': a key column's missing values, said
    with no table) named in the table ``name`` it is in, as training and an append both say
    it. A CSV's with what its reader takes for missing: a Parquet file's values are missing
    in the file itself (the hint to give them "as a Parquet file" was said of one too)."""
    read = _READ_AS_MISSING if _is_csv(source) and "missing value" in str(e) else ""
    return DataError(f"{name}: {e}{read}")


def _is_csv(source: DataSource) -> bool:
    if isinstance(source, pd.DataFrame):
        return False
    name = Path(source).name.lower()
    return name.endswith((".csv", ".txt", ".csv.gz"))


_READ_AS_MISSING = (
    " (empty cells, or codes the CSV reader takes for missing values: 'NA', 'nan', 'null'…; "
    "give such keys as a Parquet file)"
)
