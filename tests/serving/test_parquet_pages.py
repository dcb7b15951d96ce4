"""``serving.parquet_pages``: the pages' own size claims, which a reader allocates by, read
from their headers; a footer that understates them no longer hides a bomb."""

from __future__ import annotations

import io
import struct
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.parquet_pages import BadPages, unpacked_bytes


def written(table: pa.Table, **options: object) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, **options)  # type: ignore[arg-type]
    return out.getvalue()


def footer_total(data: bytes) -> int:
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    return sum(
        meta.row_group(i).column(j).total_uncompressed_size
        for i in range(meta.num_row_groups)
        for j in range(meta.num_columns)
    )


def varint(n: int) -> bytes:
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([low])
        out += bytes([low | 0x80])


def understated(data: bytes, claim: int) -> bytes:
    """``data`` with its first column chunk's ``total_uncompressed_size`` in the footer set to
    ``claim``, written in as many bytes as the true one (a varint may carry padding), so
    nothing else moves: a footer that lies, as a hand-made file's may."""
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    true = meta.row_group(0).column(0).total_uncompressed_size
    (length,) = struct.unpack("<I", data[-8:-4])
    start = len(data) - 8 - length
    old = varint(true << 1)  # zigzag of a positive i64
    at = data.index(old, start)
    z = claim << 1
    new = bytes((z >> (7 * k) & 0x7F) | 0x80 for k in range(len(old) - 1))
    new += bytes([z >> (7 * (len(old) - 1)) & 0x7F])
    return data[:at] + new + data[at + len(old) :]


@pytest.mark.parametrize(
    "data",
    [
        written(pa.table({"a": np.arange(200_000), "b": [f"x{i}" for i in range(200_000)]})),
        written(
            pa.table({"a": pa.array(["x"] * 100_000).dictionary_encode()}),
            compression="zstd",
            row_group_size=10_000,
        ),
        written(
            pa.table({"a": np.arange(50_000)}),
            data_page_version="2.0",
            write_page_index=True,
            write_page_checksum=True,
        ),
        written(pa.table({"l": [[1, 2]] * 1000, "s": [{"k": "v"}] * 1000, "n": pa.nulls(1000)})),
    ],
    ids=["plain", "dictionary-row-groups", "v2-index-crc", "nested"],
)
def test_the_pages_of_files_as_written_add_up_to_their_footer(data: bytes) -> None:
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    pages = unpacked_bytes(data, meta)
    assert 0 < pages <= footer_total(data)  # the footer's total also counts page headers
    assert footer_total(data) - pages < 100 * meta.num_row_groups * meta.num_columns + 2_000


def test_a_footer_that_understates_its_pages_is_found_out() -> None:
    data = written(pa.table({"week": ["x" * 2_000_000]}), compression="zstd")
    lied = understated(data, 1000)
    assert footer_total(lied) == 1000
    meta = pq.ParquetFile(io.BytesIO(lied)).metadata
    assert unpacked_bytes(lied, meta) >= 2_000_000


def test_a_page_header_cut_short_is_refused() -> None:
    data = written(pa.table({"a": np.arange(1000)}))
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    cut = data[:6]  # the first page's header, cut
    with pytest.raises(BadPages, match="cut short"):
        unpacked_bytes(cut, meta)


def with_page_header(header: bytes) -> tuple[bytes, object]:
    """A small file whose first page's header starts with ``header`` (written over the true
    one, so the footer still reads), and its footer."""
    data = written(pa.table({"a": np.arange(1000)}))
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    at = meta.row_group(0).column(0).data_page_offset
    return data[:at] + header + data[at + len(header) :], meta


def test_a_page_header_list_claiming_more_elements_than_the_file_has_bytes_is_refused() -> None:
    # field 1 a list (0x19) of 2**40 bools (0xF1: size in a varint, element type 1): skipped
    # one element at a time, a 6 KB upload held a router thread for good
    data, meta = with_page_header(bytes([0x19, 0xF1]) + varint(1 << 40))
    outcome: list[BaseException] = []

    def walk() -> None:
        try:
            unpacked_bytes(data, meta)
        except BaseException as e:
            outcome.append(e)

    worker = threading.Thread(target=walk, daemon=True)
    worker.start()
    worker.join(60)  # generous: the walk takes microseconds; before the fix, hours
    assert not worker.is_alive(), "the page headers' walk did not end"
    assert isinstance(outcome[0], BadPages) and "cut short" in str(outcome[0])


@pytest.mark.parametrize("element", [0x19, 0x1B, 0x1C], ids=["lists", "maps", "structs"])
def test_a_page_header_nested_thousands_deep_is_refused_not_a_recursion_error(
    element: int,
) -> None:
    # a list (0x19) whose one element is a list, a map or a struct, and so on 5,000 deep: a
    # list of one list (0x19), a map of one byte key 0 to a map (0x01 0x3B 0x00), a struct
    # whose field 1 is a struct (0x1C)
    inner = {0x19: bytes([0x19]), 0x1B: bytes([0x01, 0x3B, 0x00]), 0x1C: bytes([0x1C])}[element]
    data, meta = with_page_header(bytes([0x19]) + bytes([element]) + inner * 5000)
    with pytest.raises(BadPages, match="nested too deeply"):
        unpacked_bytes(data, meta)


def test_a_file_of_more_pages_than_a_flat_cap_is_walked() -> None:
    """A file of one value per page (a legal pyarrow setting) holds ~30 bytes a page: 120,000
    pages in 4 MB, within the body limit, were refused ("more than 100,000 pages"); the cap
    now follows the file's size (pages cannot hold fewer bytes than their headers)."""
    n = 120_000
    out = io.BytesIO()
    table = pa.table({"x": np.arange(n, dtype=np.int64)})
    pq.write_table(
        table,
        out,
        data_page_size=1,
        write_batch_size=1,
        use_dictionary=False,
        compression="none",
        write_statistics=False,
    )
    data = out.getvalue()
    assert len(data) < 10 * 1024 * 1024
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    assert unpacked_bytes(data, meta) >= 8 * n  # every page walked, none refused
