"""Tables out: scores and forecasts written whole or not at all, under a temporary name in
the output's directory and renamed once complete; the format chosen by the file's extension.

Apart from ``manymodels.tables`` (which reads) because writing has concerns of its own, none
of them reading's: temporary names and the leftovers of killed writers, fsync before the
rename, frames streamed one at a time into one Parquet file, and the column whose values
Arrow cannot hold in one type, named.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from manymodels.durable_files import fsync_dir, fsync_file
from manymodels.exceptions import DataError, pandas_first_line
from manymodels.huge_numbers import shown
from manymodels.parent_dirs import missing_parent
from manymodels.tempnames import LEFTOVER_GRACE_SECONDS, remove_dead_leftovers, writer_tag

if TYPE_CHECKING:
    from manymodels.tables import DataSource


def output_format(path: Path, *, reads: DataSource | None = None) -> str:
    """``parquet`` or ``csv`` by the file's extension; ``DataError`` for anything else, and
    for the table the command ``reads`` (scores written over their input)."""
    said = missing_parent(path)
    if said is not None:
        raise DataError(said)
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


STDOUT = "-"
"""The output path that means standard output (``-o -``), as most commands read it."""


def write_stdout(frames: Iterable[pd.DataFrame], *, times_in_full: bool = True) -> int:
    """Write ``frames`` as one CSV to standard output (``-o -``), each as it comes, with the
    times in the format ``write_tables`` gives a CSV file; returns the rows written. Unlike a
    file it cannot be taken back: a failure part-way leaves the rows before it written, as
    any pipe's writer does, and the command's non-zero exit says so."""
    rows, header = 0, True
    for frame in frames:
        if times_in_full:
            frame = _times_in_full(frame)
        frame.to_csv(sys.stdout, index=False, header=header, lineterminator="\n")
        rows, header = rows + len(frame), False
    sys.stdout.flush()
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
