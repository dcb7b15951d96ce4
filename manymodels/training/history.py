"""A partition's input rows, kept with each version in the artifact store.

A consumer retrains a partition by posting only its new rows; the rows the champion was trained
on come from here (``append``). They are the partition's rows as the table gave them — key
columns, time column, the spec's own features and the target — before any derived column
(calendar parts, target lags), which training derives again.

A training chunk writes the rows of all its partitions as **one** object, content-addressed like
models, and every version of the chunk references it; the object's schema metadata holds each
partition's row range (``ROWS_INDEX``), so a reader takes its own slice. One object per
partition made a run's object-store PUTs twice its models (each PUT costs the client
milliseconds of CPU: signing, a round trip, the reply), the half that cost the most on a
cluster with S3 artifacts (benchmarks/README.md §1b). Objects written one per partition before
(no index) read as before. The format is the Arrow IPC file format (Feather v2:
``pandas.read_feather`` reads the whole chunk): writing it costs ~30 µs per partition of 100
rows, against ~400–600 µs for Parquet (measured).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from manymodels.artifacts import ArtifactStore
from manymodels.exceptions import RegistryError
from manymodels.partition import PartitionedTable
from manymodels.spec import Spec


def base_features(table: PartitionedTable, spec: Spec) -> list[str]:
    """The features the table came with, without those training derives."""
    derived = set(spec.derived_columns)
    return [f for f in table.features if f not in derived]


ROWS_INDEX = b"manymodels.rows"  # schema metadata: {partition key: [first row, end row]}
PUT_ATTEMPTS = 3  # puts of a chunk's rows object tried before its partitions give up


class ChunkRows:
    """A chunk's input rows as one Arrow IPC object, encoded and stored once, on first use,
    for every partition of the chunk (``stored``).

    An encoding failure (a column Arrow cannot type) is kept and raised again to each
    partition that asks: every version goes without kept rows. A failed put is tried again by
    the next partitions that ask, ``PUT_ATTEMPTS`` in all, so one transient error costs the
    partition that met it (``lost``: a resumed run trains it again), not the whole chunk."""

    def __init__(self, table: PartitionedTable, spec: Spec) -> None:
        self._table = table
        self._spec = spec
        self._encoded: bytes | Exception | None = None
        self._stored: str | None = None
        self._failed: list[Exception] = []

    def encoded(self) -> bytes:
        """The chunk's rows as IPC bytes, with each partition's row range in the metadata."""
        if self._encoded is None:
            try:
                self._encoded = _encode(self._table, self._spec)
            except Exception as e:
                self._encoded = e
        if isinstance(self._encoded, Exception):
            raise self._encoded
        return self._encoded

    def stored(self, store: ArtifactStore, *, durable: bool) -> str:
        """The sha256 of ``encoded()`` in ``store``, put on the first call."""
        if self._stored is not None:
            return self._stored
        if len(self._failed) >= PUT_ATTEMPTS:  # the store is down: stop hammering it
            raise self._failed[-1]
        data = self.encoded()
        try:
            self._stored = store.put(data, durable=durable)[0]
        except Exception as e:
            self._failed.append(e)
            raise
        return self._stored


def _encode(table: PartitionedTable, spec: Spec) -> bytes:
    whole = _chunk_table(table, spec)
    ranges = {key: [int(table.offsets[i]), int(table.offsets[i + 1])]
              for i, key in enumerate(table.keys)}  # fmt: skip
    whole = whole.replace_schema_metadata({ROWS_INDEX: json.dumps(ranges).encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, whole.schema) as writer:
        writer.write_table(whole)
    return bytes(sink.getvalue().to_pybytes())


class KeptRows:
    """One stored rows object, read once: each partition's rows are a slice of it."""

    def __init__(self, data: bytes) -> None:
        with pa.ipc.open_file(pa.BufferReader(data)) as reader:
            self._table = reader.read_all()
        index = (self._table.schema.metadata or {}).get(ROWS_INDEX)
        self._ranges: dict[str, list[int]] | None = json.loads(index) if index else None

    def of(self, key: str) -> pd.DataFrame:
        """``key``'s rows (all the rows of an object written for one partition)."""
        if self._ranges is None:
            return self._table.to_pandas()
        found = self._ranges.get(key)
        if found is None:
            raise RegistryError(f"the kept training rows hold no rows of '{key}'")
        start, stop = found
        return self._table.slice(start, stop - start).to_pandas()


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


def decode_rows(data: bytes, key: str) -> pd.DataFrame:
    """Partition ``key``'s rows of a stored rows object, as a DataFrame."""
    return KeptRows(data).of(key)


def _restore(values: np.ndarray, dtype: str | None) -> np.ndarray:
    """Integer and boolean features travel as float64 in the training matrix: give them back
    their own type when every value allows it, so the stored rows read as the input did."""
    if dtype is None or values.dtype.kind != "f":
        return values
    kind = np.dtype(dtype).kind if dtype in np.sctypeDict else ""
    if kind and kind in "iub" and np.isfinite(values).all() and (values == np.round(values)).all():
        return values.astype(dtype)
    return values
