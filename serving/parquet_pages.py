"""The sizes a Parquet file's pages unpack to, read from the page headers themselves.

A reader decompresses each page into a buffer of the size its own header claims
(``uncompressed_page_size``, up to 2 GiB), not the size the footer records for the column
chunk (``total_uncompressed_size``): a file whose footer understates its pages passed a check
of the footer, and a 6 KB upload then unpacked 200 MB. Here each column chunk's page headers
are walked, as a reader would walk them, and their claims summed before any page is read.

A page header is a Thrift struct in the compact protocol; only fields 2 and 3 (unpacked and
packed size) matter, the rest is skipped by type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

MAX_PAGES = 100_000  # walked in any file, however small (~2 s)
# The fewest bytes a page takes in a file: its header alone (type, both sizes, the data page
# header's count and three encodings) takes ~17 bytes. A file of one value per page (pyarrow's
# data_page_size=1, write_batch_size=1) takes 26-77 bytes a page: 300,000 pages in 10 MB,
# refused by a flat cap of 100,000 pages. More pages than the file has room for can only be
# column chunks that share their bytes, walked again and again: refused.
MIN_PAGE_BYTES = 16


class BadPages(ValueError):
    """The page headers cannot be walked (cut short, malformed, too many)."""


def unpacked_bytes(data: bytes, meta: Any) -> int:
    """The sum of the ``uncompressed_page_size`` of every page of every column chunk in
    ``data`` (a Parquet file; ``meta`` its footer, ``pyarrow.parquet.FileMetaData``)."""
    return page_sizes(data, meta)[0]


def page_sizes(data: bytes, meta: Any) -> tuple[int, int]:
    """``unpacked_bytes``, and the largest ``uncompressed_page_size`` of one page."""
    total = pages = largest = 0
    most = max(MAX_PAGES, len(data) // MIN_PAGE_BYTES)
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for j in range(group.num_columns):
            chunk = group.column(j)
            start = chunk.data_page_offset
            if chunk.has_dictionary_page and chunk.dictionary_page_offset is not None:
                start = min(start, chunk.dictionary_page_offset)
            end = min(start + chunk.total_compressed_size, len(data))
            pos = start
            while 0 <= pos < end:
                unpacked, packed, pos = _page_header(data, pos)
                total += unpacked
                largest = max(largest, unpacked)
                pages += 1
                if pages > most:
                    raise BadPages(
                        f"its column chunks hold more than {most:,} pages, more than "
                        f"{len(data):,} bytes can hold (chunks sharing their bytes?)"
                    )
                pos += packed
    return total, largest


def _page_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(uncompressed_page_size, compressed_page_size, where the page's data starts)."""
    reader = Compact(data, pos)
    sizes = {2: 0, 3: 0}
    for field, kind in reader.fields():
        if field in sizes and kind == 5:  # i32
            sizes[field] = unzigzag(reader.varint())
        else:
            reader.skip(kind)
    if sizes[2] < 0 or sizes[3] < 0:
        raise BadPages("a page header claims a negative size")
    return sizes[2], sizes[3], reader.pos


def unzigzag(n: int) -> int:
    """A zigzag-encoded varint's signed value (Thrift's compact i16/i32/i64)."""
    return (n >> 1) ^ -(n & 1)


class Compact:
    """Just enough of Thrift's compact protocol to skip any value."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos, self.depth = data, pos, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise BadPages("a page header is cut short")
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise BadPages("a page header holds a malformed number")

    def skip(self, kind: int) -> None:
        if kind in (1, 2):  # bool, in the type nibble
            return
        if kind == 3:
            self.pos += 1
        elif kind in (4, 5, 6):
            self.varint()
        elif kind == 7:
            self.pos += 8
        elif kind == 8:
            n = self.varint()  # read first: ``pos += varint()`` adds to the old position
            self.pos += n
        elif kind in (9, 10):
            size, of = self.list_head()
            self.nested(lambda: self.skip_elements(size, of))
        elif kind == 11:
            size = self.varint()
            if size:
                types = self.byte()
                self.room(2 * size)
                self.nested(lambda: self.skip_pairs(size, types >> 4, types & 0x0F))
        elif kind == 12:
            self.nested(self.struct)
        else:
            raise BadPages(f"a page header holds an unknown type {kind}")
        if self.pos > len(self.data):
            raise BadPages("a page header is cut short")

    def room(self, n: int) -> None:
        """``BadPages`` unless ``n`` more bytes are left: every element of a list takes a byte
        at least, so a list claiming more (2**40 bools in a 6 KB file) is cut short, and is
        not skipped one element at a time for hours."""
        if n > len(self.data) - self.pos:
            raise BadPages("a page header is cut short")

    def nested(self, skip: Callable[[], None]) -> None:
        """``skip`` a list, map or struct, one level deeper: a header of lists within lists
        thousands deep is refused, not a ``RecursionError``."""
        self.depth += 1
        if self.depth > 16:
            raise BadPages("a page header is nested too deeply")
        skip()
        self.depth -= 1

    def skip_elements(self, size: int, kind: int) -> None:
        width = {1: 1, 2: 1, 3: 1, 7: 8}.get(kind)  # a bool in a list or set takes a byte
        self.room(size * (width or 1))
        if width:
            self.pos += size * width
            return
        for _ in range(size):
            self.skip(kind)

    def skip_pairs(self, size: int, key: int, value: int) -> None:
        for _ in range(size):
            self.skip_elements(1, key)
            self.skip_elements(1, value)

    def struct(self) -> None:
        for _, kind in self.fields():
            self.skip(kind)

    def fields(self) -> Iterator[tuple[int, int]]:
        """A struct's fields as (id, type) up to its STOP, each value left for the caller to
        read or ``skip``."""
        last = 0
        while True:
            head = self.byte()
            kind = head & 0x0F
            if kind == 0:  # STOP
                return
            delta = head >> 4
            last = last + delta if delta else unzigzag(self.varint())
            yield last, kind

    def list_head(self) -> tuple[int, int]:
        """A list's or set's (number of elements, their type); the elements follow."""
        head = self.byte()
        return (head >> 4 if head >> 4 != 15 else self.varint()), head & 0x0F
