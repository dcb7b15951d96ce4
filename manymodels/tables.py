"""Tables in and out: a DataFrame or a CSV / Parquet file read as a plain frame, and scores or
forecasts written whole or not at all.

What a table means under a spec (its columns' roles, bad rows, derived features) is
``manymodels.data``'s job; this module only moves rows between files and frames, and says
which file when it cannot.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from manymodels.argument_order import refuse_registry_as_data, swapped_hint
from manymodels.csv_rows import not_utf8, refuse_overflowed, refuse_shifted
from manymodels.durable_files import fsync_dir, fsync_file
from manymodels.exceptions import DataError, pandas_first_line
from manymodels.huge_numbers import shown
from manymodels.tempnames import LEFTOVER_GRACE_SECONDS, remove_dead_leftovers, writer_tag

DataSource: TypeAlias = pd.DataFrame | str | Path


def describe_source(source: DataSource) -> str:
    return "<DataFrame>" if isinstance(source, pd.DataFrame) else str(source)


def require_table(source: object) -> None:
    """``DataError`` unless ``source`` is a DataFrame or a path: a list of dicts was read as
    a file name ("File name too long", quoting every row), ``None`` failed in ``pathlib``."""
    if isinstance(source, pd.DataFrame | str | os.PathLike):
        return refuse_registry_as_data(source)  # score(registry, frame): arguments swapped
    rows = isinstance(source, list | tuple | dict) or hasattr(source, "shape")  # an array
    hint = " (pandas.DataFrame(…) makes one)" if rows else swapped_hint(source)
    raise DataError(
        "data must be a pandas DataFrame or the path of a CSV or Parquet file, not "
        f"{type(source).__name__}{hint}"
    )


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
    ``;`` or tabs, which the CSV reader takes as one column). ``""`` when neither."""
    columns = [str(c) for c in columns]
    loose = {c.strip().casefold(): c for c in columns}
    near = [(m, loose[m.strip().casefold()]) for m in missing if m.strip().casefold() in loose]
    if near:
        shown = ", ".join(f"{found!r} for {wanted!r}" for wanted, found in near[:5])
        return f"; the table has {shown}: names differ in spaces or case"
    for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
        if len(columns) == 1 and sep in columns[0]:
            return f"; its header is one column holding {name}: give the table comma-separated"
    return ""


def read_table(source: DataSource) -> pd.DataFrame:
    """A DataFrame (``plain``), or a CSV / Parquet file by its extension. A CSV header or a
    Parquet file naming a column twice is refused (pyarrow refuses the latter); a frame's is
    refused where its columns are read by role (``refuse_repeated_columns``)."""
    require_table(source)
    if isinstance(source, pd.DataFrame):
        return plain(source)
    path = Path(source).expanduser()  # '~/sales.csv', as pandas reads it
    if not path.exists():
        raise DataError(f"{path}: data file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"} or path.is_dir():
            return plain(read_parquet(path))
        if suffix in {".csv", ".txt"} or path.name.endswith(".csv.gz"):
            refuse_repeated_header(path)
            df = refuse_shifted(pd.read_csv(path), path, csv=path)
            return refuse_overflowed(df, path, csv=path)
    except DataError:  # said already, naming the file
        raise
    except UnicodeDecodeError as e:
        raise DataError(not_utf8(path, e)) from None
    except (OSError, ValueError, EOFError, zlib.error) as e:
        # EOFError: a .csv.gz cut short; zlib.error: one damaged inside (a bad copy)
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


def output_format(path: Path, *, reads: DataSource | None = None) -> str:
    """``parquet`` or ``csv`` by the file's extension; ``DataError`` for anything else, and
    for the table the command ``reads`` (scores written over their input)."""
    if not path.parent.is_dir():
        raise DataError(f"{path}: output directory {path.parent} does not exist")
    if isinstance(reads, str | Path) and Path(reads).resolve() == path.resolve():
        raise DataError(f"{path}: is the input table; write the output to another file")
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    raise DataError(f"{path}: unknown output format (expected .parquet or .csv)")


OUT_TMP_PREFIX = ".tmp-out-"
"""How the temporary name of a table being written (``write_tables``) starts."""


OLD_OUT_TMP = re.compile(r"\..+\.(?:parquet|pq|csv|csv\.gz)\.[0-9a-f]{8}\.tmp", re.IGNORECASE)
"""The temporary name of a table before writers were named (``.<name>.<8 hex>.tmp``, releases
before 2026-12-05): its writer cannot be judged, so it goes once a day old, as another
machine's leftover does (``tempnames.LEFTOVER_GRACE_SECONDS``)."""


def _remove_old_leftovers(directory: Path) -> None:
    """Remove the old-form leftovers of killed writers in ``directory`` (``OLD_OUT_TMP``)."""
    cutoff = time.time() - LEFTOVER_GRACE_SECONDS
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if OLD_OUT_TMP.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write under a temporary name in the same directory, then rename: never a partial file.
    One frame, so its times keep pandas' own CSV format (dates alone when all are midnight)."""
    write_tables([frame], path, times_in_full=False)


def write_tables(frames: Iterable[pd.DataFrame], path: Path, *, times_in_full: bool = True) -> int:
    """Write ``frames`` (the same columns each, as ``forecast_chunks`` makes them) one after
    another as one table, holding one at a time; under a temporary name, renamed once the last
    is written: never a partial file, whatever fails on the way. Returns the rows written. An
    error of writing is a ``DataError`` naming ``path``; one of making a frame is raised as
    it is.

    In a CSV, zone-less times are written ``YYYY-MM-DD HH:MM:SS`` in every frame: pandas
    writes a frame whose times are all midnight as dates alone, so a chunk of daily partitions
    and one of hourly ones made a column of two formats, which ``read_csv`` leaves as text (a
    zone-aware column is written in full with its offset by pandas already).

    The temporary name says which process writes it (``tempnames.writer_tag``), so a writer
    killed mid-way (``kill -9``, the OOM killer: a forecast of 100,000 partitions is large)
    leaves a file the next write into the directory removes, instead of a hidden partial
    table beside the output for ever (an older release's ``.<name>.<8 hex>.tmp`` once a day
    old). The bytes are fsynced before the rename and the
    directory after it, as an artifact's durable put is (``durable_files``): a power loss
    after the command returned could otherwise leave an empty or partial file under the
    final name, or the old one."""
    kind = output_format(path)
    remove_dead_leftovers(path.parent, OUT_TMP_PREFIX)
    _remove_old_leftovers(path.parent)
    tmp = path.with_name(f"{OUT_TMP_PREFIX}{writer_tag()}-{uuid.uuid4().hex[:8]}-{path.name}")
    rows = 0
    try:
        with contextlib.ExitStack() as stack:
            try:
                with _writing(path):
                    if kind == "parquet":
                        add = _parquet_writer(stack, tmp, path)
                    else:
                        out: Any = stack.enter_context(open(tmp, "wb"))
                        if path.name.lower().endswith(".gz"):
                            out = stack.enter_context(gzip.GzipFile(fileobj=out, mode="wb"))
                        text = stack.enter_context(
                            io.TextIOWrapper(out, encoding="utf-8", newline="")
                        )

                        def add(frame: pd.DataFrame) -> None:
                            if times_in_full:
                                frame = _times_in_full(frame)
                            frame.to_csv(text, index=False, header=rows == 0)

                for frame in frames:
                    with _writing(path):
                        add(frame)
                    rows += len(frame)
            except BaseException:
                # the file is abandoned: closing it may fail again (a gzip stream flushes what
                # a full disk refused) and must not put a raw OSError in the first error's place
                with contextlib.suppress(Exception):
                    stack.close()
                raise
            with _writing(path):
                stack.close()  # flushed and closed here, where a full disk is told
                fsync_file(tmp)  # its bytes on disk before its name: never an empty table
        with _writing(path):
            os.replace(tmp, path)
            fsync_dir(str(path.parent))  # and the name itself: a rename lives in the directory
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def _times_in_full(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its zone-less time columns as text of one format, whatever their values:
    as many digits after the second as ``frame.attrs["second_digits"]`` says (0, 6 or 9: the
    whole table's, which ``forecast_chunks`` knows before its first chunk), else as the
    frame's own times need; a missing time stays an empty cell. Dates alone when
    ``frame.attrs["dates_only"]`` says every time of the table is a midnight (a table given
    as dates: pandas writes one frame of midnights so)."""
    naive = [c for c, t in frame.dtypes.items() if t.kind == "M" and getattr(t, "tz", None) is None]
    if not naive:
        return frame
    frame = frame.copy(deep=False)
    for c in naive:
        s = frame[c]
        if frame.attrs.get("dates_only"):  # every time of the whole table is a midnight
            frame[c] = s.dt.strftime("%Y-%m-%d").astype(object).where(s.notna(), None)
            continue
        digits = frame.attrs.get("second_digits")
        if digits is None:  # this frame's own: 9 for a nanosecond, 6 for a microsecond
            ns = s.dt.nanosecond.fillna(0) != 0
            digits = 9 if ns.any() else 6 if (s.dt.microsecond.fillna(0) != 0).any() else 0
        text = s.dt.strftime("%Y-%m-%d %H:%M:%S" + (".%f" if digits else ""))
        if digits == 9:  # strftime stops at microseconds
            text = text + s.dt.nanosecond.map(lambda n: f"{int(n):03d}" if n == n else "")
        frame[c] = text.astype(object).where(s.notna(), None)
    return frame


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A failure to write ``path`` as one ``DataError`` naming it."""
    try:
        yield
    except DataError:  # said already, naming it
        raise
    except (OSError, ValueError, TypeError) as e:
        raise DataError(
            f"{path}: cannot write the table ({type(e).__name__}: {pandas_first_line(e)})"
        ) from None


def _parquet_writer(
    stack: contextlib.ExitStack, tmp: Path, path: Path
) -> Callable[[pd.DataFrame], None]:
    """Frames appended to one Parquet file as row groups, each to the first frame's schema.
    A later frame whose column holds another type (keys of partitions trained from tables
    of other types: 1 and 1.5, 2 and "b") was pyarrow's "Conversion failed for column store
    with type float64" with a tuple around it, or an ``OverflowError`` traceback for an
    integer past int64; a ``DataError`` naming the column and what to do instead."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer: list[Any] = []

    def add(frame: pd.DataFrame) -> None:
        schema = writer[0].schema if writer else None
        try:
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        except (pa.ArrowException, OverflowError) as e:
            raise DataError(f"{path}: {_mixed_column(frame, schema, e)}") from None
        if not writer:
            writer.append(stack.enter_context(pq.ParquetWriter(tmp, table.schema)))
        writer[0].write_table(table)

    return add


def _mixed_column(frame: pd.DataFrame, schema: Any, error: Exception) -> str:
    """Which column of ``frame`` pyarrow could not write to ``schema`` (the rows written
    before; none: the first rows', inferred), and what to do."""
    import pyarrow as pa

    instead = "write a .csv instead, which holds each value as it is"
    for name in frame.columns:
        kind = schema.field(str(name)).type if schema is not None else None
        try:
            pa.Array.from_pandas(frame[name], type=kind)
            continue
        except (pa.ArrowException, OverflowError):
            pass
        if kind is None:
            return f"column '{name}' holds values of more than one type: {instead}"
        values = frame[name].tolist()
        bad = next((v for v in values if not _fits(pa, v, kind)), values[0])
        held = (
            "integer"
            if pa.types.is_integer(kind)
            else "decimal"
            if pa.types.is_floating(kind)
            else "text"
            if pa.types.is_string(kind) or pa.types.is_large_string(kind)
            else str(kind)
        )
        return (
            f"column '{name}' holds {held} values in the rows written first and "
            f"{shown(bad)} in later ones, which one Parquet column cannot hold beside them "
            f"(partitions' keys of more than one type?): {instead}"
        )
    return f"cannot write the table ({type(error).__name__}: {pandas_first_line(error)})"


def _fits(pa: Any, value: Any, kind: Any) -> bool:
    try:
        pa.array([value], type=kind, from_pandas=True)
    except (pa.ArrowException, OverflowError):
        return False
    return True
