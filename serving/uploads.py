"""Reading a retrain's uploaded file (CSV or Parquet) without letting it claim more than the
body limit could hold.

The body limit (``max_body_bytes``) bounds a CSV's text, but a Parquet file's encodings and
compression let a few bytes claim any amount: run-length encoding any number of rows (a 1 MB
file of 50 million constant rows took the router to 8 GB), a dictionary any number of copies
of one long string (a 289-byte file of 1,000 rows holding one 1 MB string took 17 s and 1.5
GB to read), compression one huge value. Each is refused (``DataError``, a 422) before it is
decoded: the values and the fixed-width bytes from the footer, the pages' unpacked sizes
from the footer and from the pages' own headers (``serving.parquet_pages``), and the text a
dictionary expands to from the dictionary and its indices, read as stored, never expanded
(delta-encoded text, which has no dictionary, in batches bounded by the limit).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import pandas as pd

from manymodels.csv_rows import refuse_overflowed, refuse_shifted
from manymodels.csvkeys import keys_as_recorded, literal_labels, padded_codes
from manymodels.exceptions import DataError, first_line
from manymodels.tables import read_parquet, refuse_repeated_header
from serving.jsonbody import MAX_COLUMNS
from serving.parquet_footer import check_footer
from serving.parquet_pages import BadPages, page_sizes

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

PARQUET_MAGIC = b"PAR1"

# Bytes a value may unpack to in a Parquet page, per byte of the body limit: a CSV value takes
# two bytes at least ("1,") and an int64 eight once unpacked, with levels and page headers.
UNPACKED_PER_BYTE = 8


def read_file(
    data: bytes,
    filename: str | None,
    limit: int,
    classes: str | None = None,
    key: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, str, str | None]:
    """Parquet by its magic bytes (or name), CSV otherwise; and ``literal_labels``' warning.
    ``limit``: the body limit, which bounds what a Parquet file may decode to. ``key``: the
    partition's key values; a CSV's key column that it holds as text is read as text (codes
    such as ``007``, which a CSV reader makes the number 7: rows "of another partition")."""
    suffix = PurePosixPath(filename or "").suffix.lower()
    fmt = "parquet" if data[:4] == PARQUET_MAGIC or suffix in (".parquet", ".pq") else "csv"
    if not data.strip():
        raise DataError("the uploaded file is empty")
    from pyarrow.lib import ArrowException

    try:
        if fmt == "parquet":
            refuse_parquet_bomb(data, limit)
            return read_parquet(data), fmt, None  # its metadata's faults forgiven
        _refuse_wide(_csv_columns(data), "the uploaded CSV file's header has")
        refuse_repeated_header(data, filename or "the file")  # as train refuses the file
        frame = refuse_shifted(pd.read_csv(io.BytesIO(data)), filename or "the file", csv=data)
        frame = refuse_overflowed(frame, filename or "the file", csv=data)
        frame, said = keys_as_recorded(data, frame, key or {}), None
        if classes is not None:
            frame, said = literal_labels(data, frame, classes, source=filename or "the file")
    except (ValueError, OSError, ArrowException) as e:
        if isinstance(e, DataError) and fmt == "csv":  # our own refusals of a CSV that was
            # read (a shifted row, an overflowed number, a column named twice) say what is
            # wrong: "cannot read the uploaded file as CSV" before them said what was not
            raise
        # parser errors, and pyarrow's: most are ValueError or OSError, but not all (an
        # index out of bounds in a file's dictionary is an ArrowIndexError, an IndexError)
        first = first_line(e)
        raise DataError(f"cannot read the uploaded file as {fmt.upper()}: {first}") from None
    if classes is not None:  # labels 01 and 1, one number to a CSV reader: train's refusal
        codes = padded_codes(data, frame, [classes], source=filename or "the file", labels=True)
        said = "; ".join(w for w in (said, codes) if w) or None
    return frame, fmt, said


def json_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A retrain's JSON rows as a DataFrame, refused (``DataError``) first if they name
    more than ``MAX_COLUMNS`` columns between them."""
    names: set[str] = set()
    for row in rows:
        names.update(row)
        if len(names) > MAX_COLUMNS:
            _refuse_wide(len(names), "the posted rows name at least")
    return pd.DataFrame.from_records(rows)


def _csv_columns(data: bytes) -> int:
    """The fields of a CSV's first record (its header), read by the csv module alone: it
    may span lines (a quoted name holding a newline). 0 when the csv module cannot read it:
    pandas then says what is wrong."""
    end = data.find(b"\n")
    first = data[: end if end >= 0 else len(data)]
    if b'"' not in first:  # no quoting: the first line is the header, its commas exact
        return first.count(b",") + 1
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline="")
    try:
        return len(next(csv.reader(text), []))
    except csv.Error:
        return 0


def _refuse_wide(n: int, said: str) -> None:
    """More than ``MAX_COLUMNS`` (``serving.jsonbody``'s, as for a scored row): 1.5 million
    columns in a 10 MB CSV took the router 32-63 s and 1.8 GB to read, only to be refused for
    the columns it lacked."""
    if n > MAX_COLUMNS:
        raise DataError(
            f"{said} {n:,} columns: more than the {MAX_COLUMNS:,} a retrain reads; post only "
            "the spec's columns"
        )


def refuse_parquet_bomb(data: bytes, limit: int) -> None:
    """Refuse (``DataError``) a Parquet file that decodes to more than a CSV within the body
    limit could hold: more values (each CSV value takes a byte at least), pages that unpack
    to more than ``UNPACKED_PER_BYTE`` times the limit, or more bytes of text and binary
    than the limit. All but the last come from the footer; the text is counted from the
    dictionaries and indices as stored, before any string is expanded."""
    import pyarrow.parquet as pq

    try:  # before pyarrow reads a column chunk's metadata: some abort the process
        check_footer(data)
    except BadPages as e:
        raise DataError(str(e)) from None
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    _refuse_wide(meta.num_columns, "the uploaded Parquet file has")
    values = meta.num_rows * max(meta.num_columns, 1)
    if values > limit:
        raise DataError(
            f"the uploaded Parquet file holds {meta.num_rows:,} rows of {meta.num_columns} "
            f"column(s), {values:,} values: more than the {limit:,} a CSV within the body "
            "limit can hold; post fewer rows at a time"
        )
    unpacked, fixed, text = _footer_sizes(meta)
    try:  # what the pages' own headers claim: a reader allocates that, whatever the footer says
        pages, largest = page_sizes(data, meta)
        unpacked = max(unpacked, pages)
    except BadPages as e:
        raise DataError(f"the uploaded Parquet file's pages cannot be read: {e}") from None
    if unpacked > UNPACKED_PER_BYTE * limit:
        raise DataError(
            f"the uploaded Parquet file's pages unpack to {unpacked:,} bytes: more than "
            f"{UNPACKED_PER_BYTE} times the body limit ({limit:,} bytes); post fewer rows "
            "at a time"
        )
    if text:
        fixed += _stored_text_bytes(data, text, limit, largest)
    if fixed > limit:
        raise DataError(
            f"the uploaded Parquet file's text and binary values decode to {fixed:,} bytes: "
            f"more than the {limit:,} a CSV within the body limit can hold (a dictionary "
            "repeats one value for each row that names it); post fewer rows at a time"
        )


def _footer_sizes(meta: pq.FileMetaData) -> tuple[int, int, dict[str, str]]:
    """From the footer: the bytes every column chunk's pages unpack to, the bytes its
    fixed-length binary values decode to, and the paths of the variable-length (text and
    binary) leaf columns, whose decoded size only their values tell, each with the delta
    encoding of its values (``DELTA_BYTE_ARRAY`` before ``DELTA_LENGTH_BYTE_ARRAY``) or ""."""
    unpacked = fixed = 0
    schema = meta.schema
    text = {
        schema.column(j).path: ""
        for j in range(meta.num_columns)
        if schema.column(j).physical_type == "BYTE_ARRAY"
    }
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for j in range(group.num_columns):
            chunk = group.column(j)
            unpacked += chunk.total_uncompressed_size
            if chunk.physical_type == "FIXED_LEN_BYTE_ARRAY":
                fixed += chunk.num_values * schema.column(j).length
            path = schema.column(j).path
            for delta in _DELTAS:
                if path in text and delta in chunk.encodings and text[path] != _DELTAS[0]:
                    text[path] = delta
    return unpacked, fixed, text


# Text encodings a dictionary cannot be read from (pyarrow: "Not yet implemented: DecodeArrow of
# DictAccumulator"): Spark's and parquet-mr's v2 writers, DuckDB's, arrow's on request.
_DELTAS = ("DELTA_BYTE_ARRAY", "DELTA_LENGTH_BYTE_ARRAY")


def _stored_text_bytes(data: bytes, text: dict[str, str], limit: int, largest: int) -> int:
    """The bytes the text columns decode to. A dictionary's are counted as stored, never
    expanded (``_text_bytes``). Delta-encoded text cannot be read as a dictionary, and was
    refused whole ("cannot read the uploaded file as PARQUET: Not yet implemented …"): its
    values are read as they are. ``DELTA_LENGTH_BYTE_ARRAY`` values are the pages' bytes
    themselves, which the page check bounds; ``DELTA_BYTE_ARRAY`` shares each value's prefix
    with the one before, so a value is at most a page's size (``largest``) but rows may repeat
    it: read in batches of at most ``limit`` bytes, stopping past ``limit``."""
    import pyarrow.parquet as pq

    plain = [path for path, delta in text.items() if not delta]
    total = 0
    if plain:  # a row group at a time: a nested column's dictionaries are not one chunk
        stored = pq.ParquetFile(io.BytesIO(data), read_dictionary=plain)
        for i in range(stored.metadata.num_row_groups):
            table = stored.read_row_group(i, columns=plain, use_threads=False)
            total += sum(_text_bytes(column) for column in table.columns)
    lengths = [path for path, delta in text.items() if delta == _DELTAS[1]]
    if lengths:
        table = pq.ParquetFile(io.BytesIO(data)).read(columns=lengths, use_threads=False)
        total += sum(_text_bytes(column) for column in table.columns)
    rows = max(1, limit // max(largest, 1))
    for path in (path for path, delta in text.items() if delta == _DELTAS[0]):
        for batch in pq.ParquetFile(io.BytesIO(data)).iter_batches(rows, columns=[path]):
            total += sum(_text_bytes(column) for column in batch.columns)
            if total > limit:
                return total
    return total


def _text_bytes(values: pa.ChunkedArray | pa.Array) -> int:
    """The bytes of text and binary ``values`` hold once a dictionary's are expanded, from the
    dictionary's lengths taken by index (a few bytes per row, whatever the strings' size)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        return sum(_text_bytes(chunk) for chunk in values.chunks)
    kind = values.type
    if pa.types.is_dictionary(kind):
        if not _is_text(kind.value_type):
            return 0
        lengths = pc.binary_length(values.dictionary).take(values.indices)
        return _sum(lengths)
    if _is_text(kind):
        return _sum(pc.binary_length(values))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _text_bytes(values.flatten())
    if pa.types.is_map(kind):
        return _text_bytes(values.keys) + _text_bytes(values.items)
    if pa.types.is_struct(kind):
        return sum(_text_bytes(values.field(i)) for i in range(kind.num_fields))
    return 0


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    )


def _sum(lengths: Any) -> int:
    import pyarrow.compute as pc

    total = pc.sum(lengths).as_py()
    return int(total or 0)
