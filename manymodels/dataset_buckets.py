"""The worker's side of training from a Parquet dataset (``manymodels.datasets``): the task
items the driver ships in place of rows — a bucket of the shuffle (``StreamedChunk``) or the
fallback's sample of every bucket (``StreamedSample``) — and what a worker does with one: read
its rows from disk, ``data.prepare`` them as a table in memory is prepared, and train.

Apart from ``datasets`` (the driver's reading, checking and shuffling) because these run in
workers, on every chunk, and need none of its pyarrow reading; ``run_chunks`` knows them only
through ``shuffled`` and their ``run`` method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from manymodels import shuffle as shuffle_store
from manymodels.classes import ClassPrior
from manymodels.exceptions import DataError, first_line
from manymodels.partition import PartitionedTable
from manymodels.spec import Spec

STREAMED = "streamed"
"""The ``extra`` entry of an index table that holds its ``Shuffled``."""


@dataclass(frozen=True)
class Shuffled:
    """Where a dataset's rows were bucketed by chunk, and which keys each bucket holds."""

    root: str
    bucket_of: dict[str, int]
    n_rows: int
    prior: ClassPrior | None = None  # classification: the whole table's

    def items(self, todo: PartitionedTable, champions: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """One task item per bucket holding partitions to train (all of a full run's)."""
        keys: dict[int, list[str]] = {}
        for key in todo.keys:
            keys.setdefault(self.bucket_of[key], []).append(key)
        out: list[tuple[str, Any]] = []
        for bucket, wanted in sorted(keys.items()):
            mine = {k: champions[k] for k in wanted if k in champions}
            chunk = StreamedChunk(self.root, bucket, wanted, self.prior)
            out.append(("chunk", (chunk, mine, ())))
        return out

    def sample(self, spec: Spec, table: PartitionedTable) -> StreamedSample:
        from manymodels.training import pooled_fingerprint

        return StreamedSample(self.root, spec.fallback.max_rows, self.n_rows,
                              pooled_fingerprint(table), prior=self.prior)  # fmt: skip


def with_prior(table: PartitionedTable, prior: ClassPrior | None) -> PartitionedTable:
    """``table`` (a chunk, or the fallback's sample) with the whole table's class prior in
    place of its own: every partition answers with the table's classes."""
    if prior is None:
        return table
    return replace(table, extra={**table.extra, "class_prior": prior})


def shuffled(table: PartitionedTable) -> Shuffled | None:
    """The ``Shuffled`` of an index table; ``None`` for a table in memory."""
    found = table.extra.get(STREAMED)
    return found if isinstance(found, Shuffled) else None


@dataclass(frozen=True)
class StreamedChunk:
    """One chunk's partitions, read by the task that trains them (``keys``: for the pipeline's
    record of a task that died)."""

    root: str
    bucket: int
    keys: list[str] = field(default_factory=list)
    prior: ClassPrior | None = None

    def load(self, spec: Spec) -> PartitionedTable:
        frame = shuffle_store.read_bucket(self.root, self.bucket)
        table = with_prior(prepare(spec, frame)[0], self.prior)
        return table if len(table) == len(self.keys) else table.select(set(self.keys))

    def run(self, spec: Spec, store: Any, champions: Any, external: Any) -> Any:
        from manymodels.training import train_chunk

        try:
            table = self.load(spec)
        except DataError as e:  # what only a bucket's rows together show (two rows of one
            # partition at one time): its partitions fail as data, not as a lost task
            return _failed(self.keys, e, "rows of this bucket")
        return train_chunk(table, spec, store, champions, external)


@dataclass(frozen=True)
class StreamedSample:
    """The fallback's rows: a seeded uniform sample of about ``max_rows`` (all rows when the
    dataset is that small), drawn bucket by bucket — of whole partitions when the spec derives
    lags or changes, which need each row's predecessor. Its version records the whole dataset's
    pooled fingerprint, as a table in memory's would."""

    root: str
    max_rows: int
    n_rows: int
    fingerprint: str
    keys: list[str] = field(default_factory=lambda: ["__fallback__"])
    prior: ClassPrior | None = None

    def load(self, spec: Spec) -> PartitionedTable:
        rng = np.random.default_rng(spec.seed)
        share = min(1.0, self.max_rows / max(self.n_rows, 1))
        whole = bool([*spec.lag_columns, *spec.rolling_columns, *spec.change_columns])
        pieces = []
        for bucket in shuffle_store.buckets(self.root):
            frame = shuffle_store.read_bucket(self.root, bucket)
            if share < 1.0 and whole:  # a lag's row before must be in the sample too
                frame = shuffle_store.whole_partitions(frame, spec.partition_by, share, rng)
            elif share < 1.0:
                frame = frame[rng.random(len(frame)) < share]
            pieces.append(frame)
        table, _ = prepare(spec, pd.concat(pieces, ignore_index=True))
        return with_prior(table, self.prior)

    def run(self, spec: Spec, store: Any, champion: Any, external: Any) -> Any:
        from manymodels.training import train_fallback

        try:
            table = self.load(spec)
        except DataError as e:
            return _failed(self.keys, e, "the fallback's sample of every bucket")
        result = train_fallback(table, spec, store, champion=champion)
        return [replace(result, data_fingerprint=self.fingerprint)]


def prepare(spec: Spec, frame: pd.DataFrame) -> tuple[PartitionedTable, pd.DataFrame]:
    from manymodels.data import prepare as prepare_frame

    return prepare_frame(spec, frame)


def _failed(keys: Sequence[str], error: DataError, rows: str) -> list[Any]:
    """Each of a task's partitions failed for the data of its ``rows`` (``prepare`` names a
    DataFrame; the dataset's path was named when it was read)."""
    from manymodels.registry.entities import PartitionOutcome
    from manymodels.tables import describe_source

    why = first_line(error)[:300].removeprefix(f"{describe_source(pd.DataFrame())}: ")
    return [PartitionOutcome(k, "failed", "DataError", f"{rows}: {why}") for k in keys]
