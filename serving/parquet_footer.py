"""What in a Parquet footer would end the router's process when pyarrow reads it.

pyarrow builds a column chunk's metadata (``FileMetaData.row_group(i).column(j)``, which the
upload checks read first) in C++ that may throw, and the binding does not catch it: a throw
there is ``std::terminate``, the whole process aborted ("terminate called after throwing an
instance of 'parquet::ParquetException'"), every request in flight lost. A 1 KB file did it:
one byte of an ordinary file's footer changed, a column of text relabelled BOOLEAN while its
size statistics still counted text bytes ("Unencoded byte array data bytes does not support
BOOLEAN"); so does a column encrypted with Parquet's modular encryption, whose metadata
cannot be decrypted without keys. Reading the table raises for such a file (``OSError``), but
the checks read the footer before the table. Here the footer's Thrift is walked with
``parquet_pages``' reader first and such a chunk refused (``BadPages``).
"""

from __future__ import annotations

from collections.abc import Iterator

from serving.parquet_pages import BadPages, Compact, unzigzag

BYTE_ARRAY = 6  # the physical type whose chunks may count unencoded bytes
_LIST, _STRUCT = 9, 12


def check_footer(data: bytes) -> None:
    """``BadPages`` for a column chunk pyarrow cannot build (see the module docstring); a
    file too short for a footer, or not ending in ``PAR1``, is left to pyarrow's refusal."""
    if len(data) < 12 or data[-4:] != b"PAR1":
        return
    start = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    if start < 4:
        return
    reader = Compact(data[:-8], start)
    elements: list[tuple[int | None, int, int]] = []  # (type, repetition, children)
    chunks: list[tuple[int, Chunk]] = []  # (column, what its metadata says)
    for field, kind in _fields(reader):
        if field == 2 and kind == _LIST:  # schema
            elements.extend(_element(reader) for _ in _elements(reader, _STRUCT))
        elif field == 4 and kind == _LIST:  # row_groups
            for _ in _elements(reader, _STRUCT):
                for group_field, group_kind in _fields(reader):
                    if group_field == 1 and group_kind == _LIST:  # columns
                        for j, _ in enumerate(_elements(reader, _STRUCT)):
                            chunks.append((j, _chunk(reader)))
                    else:
                        reader.skip(group_kind)
        else:
            reader.skip(kind)
    leaves = _leaves(elements)
    for j, chunk in chunks:
        if j < len(leaves):
            _check(j, chunk, *leaves[j])


# What a column chunk's metadata says: its physical type, whether its size statistics count
# text bytes, and the lengths of their repetition and definition level histograms.
Chunk = tuple[int | None, bool, int, int]


def _check(j: int, chunk: Chunk, declared: int | None, defs: int, reps: int) -> None:
    physical, sized, rep_histogram, def_histogram = chunk
    if physical is not None and declared is not None and physical != declared:
        raise BadPages(
            f"column {j}'s chunk says physical type {physical}, its schema {declared}: "
            "the footer is malformed"
        )
    if sized and BYTE_ARRAY not in (physical, declared):
        raise BadPages(
            f"column {j} of physical type {declared} counts text bytes, which only text "
            "(BYTE_ARRAY) holds: the footer is malformed"
        )
    for name, size, levels in (
        ("repetition", rep_histogram, reps),
        ("definition", def_histogram, defs),
    ):
        if size not in (0, levels + 1):
            raise BadPages(
                f"column {j}'s {name} level histogram has {size} entries, its schema "
                f"{levels + 1}: the footer is malformed"
            )


def _element(reader: Compact) -> tuple[int | None, int, int]:
    """A schema element's physical type, repetition (0 required, 1 optional, 2 repeated)
    and number of children."""
    physical, repetition, children = None, 0, 0
    for field, kind in _fields(reader):
        if field in (1, 3, 5) and kind == 5:
            value = unzigzag(reader.varint())
            if field == 1:
                physical = value
            elif field == 3:
                repetition = value
            else:
                children = value
        else:
            reader.skip(kind)
    return physical, repetition, children


def _leaves(elements: list[tuple[int | None, int, int]]) -> list[tuple[int | None, int, int]]:
    """Each leaf column's (physical type, max definition level, max repetition level), in
    the order of the chunks; the first element is the root, whose repetition counts not."""
    if not elements:
        return []
    out = []
    stack = [[elements[0][2], 0, 0]]  # [children left, definition, repetition] per group
    for physical, repetition, children in elements[1:]:
        while stack and stack[-1][0] <= 0:
            stack.pop()
        if not stack:
            break
        parent = stack[-1]
        parent[0] -= 1
        defs = parent[1] + (repetition in (1, 2))
        reps = parent[2] + (repetition == 2)
        if children > 0:
            stack.append([children, defs, reps])
        else:
            out.append((physical, defs, reps))
    return out


def _chunk(reader: Compact) -> Chunk:
    """What a column chunk's metadata says (``Chunk``); ``BadPages`` for an encrypted one."""
    physical, sized, histograms = None, False, {2: 0, 3: 0}
    for field, kind in _fields(reader):
        if field in (8, 9):  # crypto_metadata, encrypted_column_metadata
            raise BadPages("a column is encrypted (Parquet modular encryption): send it plain")
        if field == 3 and kind == _STRUCT:  # meta_data
            for meta_field, meta_kind in _fields(reader):
                if meta_field == 1 and meta_kind == 5:
                    physical = unzigzag(reader.varint())
                elif meta_field == 16 and meta_kind == _STRUCT:  # size_statistics
                    for size_field, size_kind in _fields(reader):
                        sized |= size_field == 1  # unencoded_byte_array_data_bytes
                        if size_field in histograms and size_kind == _LIST:
                            histograms[size_field] = _list_length(reader)
                        else:
                            reader.skip(size_kind)
                else:
                    reader.skip(meta_kind)
        else:
            reader.skip(kind)
    return physical, sized, histograms[2], histograms[3]


def _fields(reader: Compact) -> Iterator[tuple[int, int]]:
    """A struct's fields as (id, type), each value left for the caller to read or skip."""
    reader.depth += 1
    if reader.depth > 16:
        raise BadPages("the footer is nested too deeply")
    yield from reader.fields()
    reader.depth -= 1


def _elements(reader: Compact, kind: int) -> Iterator[None]:
    """Once per element of a list of ``kind``; another kind of list is skipped whole."""
    size, of = reader.list_head()
    reader.room(size)
    if of != kind:
        reader.skip_elements(size, of)
        return
    for _ in range(size):
        yield


def _list_length(reader: Compact) -> int:
    """The number of elements of a list, which is skipped."""
    size, of = reader.list_head()
    reader.skip_elements(size, of)
    return size
