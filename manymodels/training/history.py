"""A partition's input rows, kept with each version in the artifact store.

A consumer retrains a partition by posting only its new rows; the rows the champion was trained
on come from here (``append``). They are the partition's rows as the table gave them — key
columns, time column, the spec's own features and the target — before any derived column
(calendar parts, target lags), which training derives again.

They are written by the worker that trains the partition, content-addressed like models, so a
partition whose data did not change stores nothing new. The format is the Arrow IPC file format
(Feather v2: ``pandas.read_feather`` reads it): a slice of the chunk's table written as IPC
costs ~30 µs per partition of 100 rows, against ~400–600 µs for Parquet (measured), which at
100,000 partitions is the difference between a few seconds and a minute of every run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from manymodels.partition import PartitionedTable
from manymodels.spec import Spec


def base_features(table: PartitionedTable, spec: Spec) -> list[str]:
    """The features the table came with, without those training derives."""
    derived = set(spec.derived_columns)
    return [f for f in table.features if f not in derived]


class ChunkRows:
    """A chunk's input rows as one Arrow table, built on first use; a partition's rows are a
    slice of it, written as their own IPC file.

    Building per partition cost ~110–180 µs (an Arrow array per column per partition, key
    columns rebuilt from Python lists); a slice of the chunk's table costs ~30 µs (measured).
    """

    def __init__(self, table: PartitionedTable, spec: Spec) -> None:
        self._table = table
        self._spec = spec
        self._whole: pa.Table | None = None

    def encode(self, rows: slice) -> bytes:
        """The IPC bytes of the chunk's ``rows`` (one partition's rows as given)."""
        if self._whole is None:
            self._whole = _chunk_table(self._table, self._spec)
        part = self._whole.slice(rows.start, rows.stop - rows.start)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, part.schema) as writer:
            writer.write_table(part)
        return bytes(sink.getvalue().to_pybytes())


def _chunk_table(table: PartitionedTable, spec: Spec) -> pa.Table:
    sizes = np.diff(table.offsets)
    columns: dict[str, Any] = {}
    for j, name in enumerate(spec.partition_by):
        values = np.empty(len(table.key_values), dtype=object)
        values[:] = [kv[j] for kv in table.key_values]
        columns[name] = _array(np.repeat(values, sizes))
    if spec.time_column is not None and table.time is not None:
        columns[spec.time_column] = pa.array(table.time)
    X = table.X
    if isinstance(X, pd.DataFrame):
        for f in base_features(table, spec):
            columns[f] = _array(_restore(X[f].to_numpy(), table.feature_dtypes.get(f)))
    else:
        at = {f: j for j, f in enumerate(table.features)}
        for f in base_features(table, spec):
            columns[f] = _array(_restore(X[:, at[f]], table.feature_dtypes.get(f)))
    columns[spec.target] = _array(table.y if table.raw_y is None else table.raw_y)
    return pa.table(columns)


def _array(values: np.ndarray) -> pa.Array:
    """NaN, None and pandas' NA in text columns are nulls, as pandas writes them."""
    return pa.array(values, from_pandas=True)


def decode_rows(data: bytes) -> pd.DataFrame:
    """The rows ``encode_rows`` stored, as a DataFrame."""
    with pa.ipc.open_file(pa.BufferReader(data)) as reader:
        return reader.read_all().to_pandas()


def _restore(values: np.ndarray, dtype: str | None) -> np.ndarray:
    """Integer and boolean features travel as float64 in the training matrix: give them back
    their own type when every value allows it, so the stored rows read as the input did."""
    if dtype is None or values.dtype.kind != "f":
        return values
    kind = np.dtype(dtype).kind if dtype in np.sctypeDict else ""
    if kind and kind in "iub" and np.isfinite(values).all() and (values == np.round(values)).all():
        return values.astype(dtype)
    return values
