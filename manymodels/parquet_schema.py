"""One schema for a Parquet directory whose files were written by different writers.

``pyarrow.dataset`` takes the first file's schema for all; a directory grown over months holds
files where the same column is int32 in one and int64 or float in another, timestamps in ms
or ns, a pandas category, or all missing. ``unified_schema`` reads every file's footer (no
row data) and picks one type per column that every file casts to, or names the file that
cannot (text where the others hold numbers, a missing column): that file's ``DataError``,
before a row is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from manymodels.exceptions import DataError, first_line


def unified_schema(dataset: Any, columns: list[str], source: str) -> Any:
    """The dataset's schema over ``columns``, from every file's footer: integers and floats mix
    (as float64); a column of text in one file and numbers in the others is that file's error."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    kinds: dict[str, dict[str, list[str]]] = {c: {} for c in columns}
    types: dict[str, set[Any]] = {c: set() for c in columns}
    fragments = list(dataset.get_fragments())
    part_names = {k for f in fragments for k in ds.get_partition_keys(f.partition_expression)}
    for fragment in fragments:
        try:
            schema = fragment.physical_schema
        except (OSError, pa.ArrowException) as e:
            raise DataError(
                f"{fragment.path}: not a readable Parquet file ({first_line(e)[:300]})"
            ) from None
        for col in columns:
            if col in part_names:
                continue
            if col not in schema.names:
                raise DataError(f"{fragment.path}: missing column '{col}' (other files have it)")
            typ = schema.field(col).type
            if pa.types.is_dictionary(typ):  # pandas' category: its values' type
                typ = typ.value_type
            if pa.types.is_null(typ):  # a file where the column is all missing fits any type
                continue
            types[col].add(typ)
            kinds[col].setdefault(_kind(typ), []).append(fragment.path)
    fields = []
    for col in columns:
        if col in part_names:
            fields.append(dataset.schema.field(col))
            continue
        seen = kinds[col]
        if not types[col]:  # missing in every file
            fields.append(pa.field(col, pa.null()))
            continue
        if len(seen) > 1:
            # the fewest files' kind; of a tie, the kind read last: the first file read is
            # the norm (1 file against 1 blamed the first, the one the rest were read by)
            odd = min(reversed(list(seen)), key=lambda k: len(seen[k]))
            common = max((k for k in seen if k != odd), key=lambda k: len(seen[k]))
            raise DataError(
                f"{seen[odd][0]}: column '{col}' holds {odd} here but {common} in "
                f"{len(seen[common])} other file(s) of {source} ({seen[common][0]} first): "
                "fix or remove this file"
            )
        typ = types[col].pop() if len(types[col]) == 1 else _widest(types[col])
        fields.append(pa.field(col, typ))
    return pa.schema(fields)


def _widest(types: set[Any]) -> Any:
    """int64 for integers of several widths, float64 once a float is among them; timestamps
    of several units in nanoseconds (their zone when they share one); text as large text."""
    import pyarrow as pa

    if all(pa.types.is_timestamp(t) for t in types):
        zones = {t.tz for t in types}
        return pa.timestamp("ns", tz=zones.pop() if len(zones) == 1 else "UTC")
    if all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in types):
        return pa.large_string()
    if all(pa.types.is_date(t) for t in types):
        return pa.date64()
    return pa.int64() if all(pa.types.is_integer(t) for t in types) else pa.float64()


def _kind(typ: Any) -> str:
    import pyarrow as pa

    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "numbers"
    if pa.types.is_boolean(typ):
        return "booleans"
    if pa.types.is_temporal(typ):
        return "dates"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "text"
    return str(typ)


def repeated_field(path: Path) -> str | None:
    """The first name a Parquet file's schema gives two columns, read from its footer."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except Exception:  # a file pyarrow cannot read: its own error says so
        return None
    return next((n for i, n in enumerate(names) if n in names[:i]), None)
