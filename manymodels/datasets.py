"""Training from a Parquet dataset larger than memory: a directory (hive-partitioned or flat),
local or by fsspec URL (``s3://bucket/sales/``), read with ``pyarrow.dataset``.

The driver never holds the table. It reads it twice, one record batch at a time:

1. **Index** — the key columns only: each partition's row count, hence the chunk plan
   (``execution.plan_chunks``: roughly equal rows per chunk, the same plan a table in memory
   gets).
2. **Check and shuffle** — every column the spec uses, batch by batch: the checks ``prepare``
   makes (columns, stray words, dates, derived names), each error naming the *file* and the
   column; each partition's fingerprint as sums of row hashes (``partition.row_hashes``: the
   same fingerprint its rows give in memory); and the batch's rows appended, bucketed by chunk,
   to a temporary Parquet dataset (``pyarrow.dataset.write_dataset``, hive-partitioned by
   bucket; the shuffle Ray Data's ``groupby`` makes, on disk).

What the pipeline gets is an *index table*: a ``PartitionedTable`` with keys, row offsets and
fingerprints but no rows (``X`` and ``y`` are empty), carrying a ``Shuffled`` in its ``extra``.
Each chunk's task reads only its bucket and runs ``data.prepare`` on it — the same checks and
the same calendar, lag and rolling features as a table in memory, on whole partitions. The
fallback's task reads a seeded uniform sample of at most ``fallback.max_rows`` rows (the sample
a table in memory gets, drawn bucket by bucket). Peak memory: one batch in the driver, one
chunk in a worker. Those tasks are ``manymodels.dataset_buckets``; this module is the driver's.

A classification table's class prior (its classes, their rates, and how hard a partition's
own counts are smoothed toward them) needs every partition's classes: the check pass counts
them per partition (``classes.ClassTally``), and every chunk and the fallback train with that
prior, as the table in memory would give it.

Differences from a table in memory, by design: the frequency is inferred per chunk (the same
for regularly spaced data with a week or more of every partition; a chunk of weekday
partitions shorter than that reads as ``1D`` where the others read ``B``), and a column's
"mostly numbers" share is judged per batch. Specs
with global candidates (fitted on every row at once) read the dataset whole, as before.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from manymodels import shuffle as shuffle_store
from manymodels.classes import ClassTally
from manymodels.dataset_buckets import STREAMED, Shuffled
from manymodels.exceptions import DataError, first_line
from manymodels.lagfeatures import LagPlan
from manymodels.parquet_schema import unified_schema
from manymodels.partition import (
    PartitionedTable,
    fingerprint_digests,
    group_rows,
    refuse_long_keys,
    row_hashes,
)
from manymodels.row_numbers import rows_after
from manymodels.shuffle import BUCKET
from manymodels.spec import Spec
from manymodels.store_urls import data_path
from manymodels.tables import column_hint

BATCH_ROWS = 65_536
"""Rows per record batch read: what the driver holds at once (a few MiB per column)."""


def is_dataset(source: object) -> bool:
    """A directory, or an fsspec URL (``s3://…``) other than a CSV file: read as a Parquet
    dataset. A single local file and a DataFrame keep the in-memory path. A ``file`` URL is
    its local path, a scheme's case no matter (``store_urls.data_path``)."""
    if not isinstance(source, str | Path):
        return False
    text = str(data_path(source))
    if "://" in text:
        return not text.lower().endswith((".csv", ".csv.gz", ".txt"))
    return Path(text).is_dir()


def streams(spec: Spec) -> bool:
    """Whether the shuffle serves this spec (see the module docstring for those it does not)."""
    return not any(c.scope == "global" for c in spec.candidates)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def open_dataset(source: str | Path, schema: Any = None) -> Any:
    """A ``pyarrow.dataset`` over ``source`` (read as ``schema`` when given): hive directories
    (``store=2/``) give their key columns; files starting with ``_`` or ``.`` (``_SUCCESS``)
    are left out. Files that hold a directory's key column too (written whole, then filed
    under ``store=2/``) are read with the key typed as the files hold it."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    text = str(data_path(source))  # file://localhost/x is /x; S3://b/x is s3://b/x
    fs: Any = None
    try:
        path = text
        if "://" in text:
            from fsspec.core import url_to_fs

            fs, path = url_to_fs(text)
        try:
            return ds.dataset(
                path, schema=schema, format="parquet", partitioning="hive", filesystem=fs
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:  # "Unable to merge: Field store …"
            hive = _keys_in_files(path, fs) if "Unable to merge" in str(e) else None
            if hive is None:
                raise
            return ds.dataset(path, schema=schema, format="parquet", partitioning=hive,
                              filesystem=fs)  # fmt: skip
    except FileNotFoundError:  # a URL's typo: s3fs's message is the path alone, said again
        raise DataError(f"{text}: data not found (no file or directory there)") from None
    except (OSError, ValueError, ImportError, pa.ArrowException) as e:
        raise DataError(f"{text}: cannot read a Parquet dataset ({_line(e)})") from None
    except Exception as e:  # a remote client's own (botocore: no credentials): no traceback
        if fs is None:
            raise
        raise DataError(f"{text}: cannot read a Parquet dataset ({_line(e)})") from None


def _keys_in_files(path: str, fs: Any) -> Any:
    """A hive partitioning whose keys are typed as the files' own columns of those names, when
    every key of the directory names is such a column; else ``None``."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    files = ds.dataset(path, format="parquet", filesystem=fs)
    if not files.files:
        return None
    relative = files.files[0][len(str(path).rstrip("/")) :].strip("/")
    names = [part.split("=", 1)[0] for part in relative.split("/")[:-1] if "=" in part]
    if not names or not all(n in files.schema.names for n in names):
        return None
    return ds.partitioning(pa.schema([files.schema.field(n) for n in names]), flavor="hive")


def _batches(schema: Any, source: str) -> Iterator[tuple[str, pd.DataFrame, Any]]:
    """``(file, rows as pandas, rows as arrow)`` one record batch at a time, in file order."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    # One row group decoded at a time, on this thread: Arrow's readahead and its threads'
    # buffers held 1.7x more at the peak (10 M rows, 500,000-row groups).
    scanner = open_dataset(source, schema).scanner(
        columns=schema.names, batch_size=BATCH_ROWS, batch_readahead=1, fragment_readahead=1,
        use_threads=False, fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
    )  # fmt: skip
    path = source
    try:
        for tagged in scanner.scan_batches():
            path = tagged.fragment.path
            batch = tagged.record_batch
            if batch.num_rows:
                yield path, batch.to_pandas(), batch
    except (OSError, ValueError, pa.ArrowException) as e:
        raise DataError(f"{path}: cannot read ({_line(e)})") from None


# --------------------------------------------------------------------------------------------
# the two passes
# --------------------------------------------------------------------------------------------
def prepare_streamed(
    spec: Spec, source: str | Path, *, workers: int | None = None, shuffle_dir: str | None = None
) -> PartitionedTable:
    """Index, check and shuffle ``source`` (see the module docstring); the index table. The
    shuffled copy goes under ``shuffle_dir`` (a directory or fsspec URL every Ray node reads;
    by default a local temporary directory: one machine)."""
    from manymodels.data import checked
    from manymodels.execution import plan_chunks

    name = str(source)
    dataset = open_dataset(source)
    keys_by = list(spec.partition_by)
    wanted = [*keys_by, spec.target, *(spec.features or []), *(spec.categorical or [])]
    wanted += [spec.time_column] if spec.time_column else []
    present = dataset.schema.names
    if not present and not dataset.files:
        raise DataError(f"{name}: no Parquet files in it")
    missing = [c for c in dict.fromkeys(wanted) if c not in present]
    if missing:
        raise DataError(
            f"{name}: missing column(s) {', '.join(map(repr, missing))} required by spec "
            f"'{spec.name}' (the dataset has: {', '.join(present)})" + column_hint(missing, present)
        )
    columns = list(dict.fromkeys(wanted if spec.features else [*wanted, *present]))
    schema = unified_schema(dataset, columns, name)

    # 1. index: rows per key, from the key columns alone
    counts: dict[tuple[Any, ...], int] = {}
    for path, frame, _ in _batches(_select(schema, keys_by), name):
        for col in keys_by:
            n_missing = int(frame[col].isna().sum())
            if n_missing:
                raise DataError(
                    f"{path}: partition column '{col}' has {n_missing} missing value(s)"
                )
        for key, n in frame.value_counts(sort=False).items():
            k = key if isinstance(key, tuple) else (key,)
            counts[k] = counts.get(k, 0) + int(n)
    if not counts:
        raise DataError(f"{name}: the dataset has no rows")
    distinct = pd.DataFrame(list(counts), columns=keys_by)
    grouping = group_rows(distinct, keys_by)  # sorted as in memory; clashing keys refused
    refuse_long_keys(grouping.keys, name)
    index = pd.MultiIndex.from_frame(distinct.iloc[grouping.order].reset_index(drop=True))
    sizes = np.asarray(list(counts.values()), dtype=np.int64)[grouping.order]
    plan = plan_chunks(np.concatenate([[0], np.cumsum(sizes)]), workers or os.cpu_count() or 1)
    bucket = np.zeros(len(sizes), dtype=np.int32)
    for b, (lo, hi) in enumerate(plan):
        bucket[lo:hi] = b

    # 2. check every batch as prepare() would, fingerprint, and shuffle to disk
    import pyarrow as pa

    root = shuffle_store.new_root(shuffle_dir)
    cleanup = weakref.finalize(distinct, shuffle_store.remove, root)  # on any error below
    kept = np.zeros(len(sizes), dtype=np.int64)
    tally = ClassTally(len(sizes)) if spec.task == "classification" else None
    s1 = np.zeros(len(sizes), dtype=np.uint64)
    s2 = np.zeros(len(sizes), dtype=np.uint64)
    warnings: dict[str, None] = {}
    dropped: dict[str, int] = {}
    used: list[str] = []
    dtypes: dict[str, str] = {}
    categorical: list[str] = []
    read: dict[str, int] = {}  # rows of each file before its batch: errors name file rows
    for i, (path, frame, batch) in enumerate(_batches(schema, name)):
        part = index.get_indexer(pd.MultiIndex.from_frame(frame[keys_by]))
        before = read.get(path, 0)
        read[path] = before + len(frame)
        with rows_after(before):
            df, cols, features, bad = checked(frame, spec, source=path)
        for col, n in bad.items():
            dropped[col] = dropped.get(col, 0) + n
        warnings |= dict.fromkeys(cols.warnings)
        used = [*keys_by, *features, spec.target] + ([spec.time_column] if spec.time_column else [])
        dtypes = dtypes or {c: str(df[c].dtype) for c in features}
        categorical = cols.categorical
        rows = part[df.index.to_numpy()] if len(df) != len(frame) else part
        h1, h2 = row_hashes(df[used])
        np.add.at(s1, rows, h1)
        np.add.at(s2, rows, h2)
        kept += np.bincount(rows, minlength=len(sizes))
        if tally is not None:
            tally.add(df[spec.target].to_numpy(), rows)
        out = pa.Table.from_batches([batch]).append_column(BUCKET, pa.array(bucket[part]))
        try:
            shuffle_store.write(out, root, i)
        except (OSError, pa.ArrowException) as e:
            raise DataError(f"{root}: cannot write the shuffled rows ({_line(e)})") from None

    # the index table: keys, offsets and fingerprints of the partitions with rows left
    live = np.flatnonzero(kept)
    if not len(live):
        raise DataError(f"{name}: every row holds a stray word in a numeric column")
    keys = [grouping.keys[j] for j in live]
    prior = tally.prior(live) if tally is not None else None
    shuffle = Shuffled(root, dict(zip(keys, bucket[live].tolist(), strict=True)),
                       int(kept.sum()), prior)  # fmt: skip
    weakref.finalize(shuffle, shuffle_store.remove, root)
    cleanup.detach()
    features = used[len(keys_by) : len(used) - 1 - bool(spec.time_column)]
    extra: dict[str, Any] = {STREAMED: shuffle}
    extra |= {"class_prior": prior} if prior is not None else {}
    extra |= {"warnings": list(warnings)} if warnings else {}
    extra |= {"bad_rows_dropped": dropped} if dropped else {}
    lags = [*LagPlan.from_spec(spec).columns, *spec.change_columns] if spec.time_column else []
    from manymodels.partition import _plain

    return PartitionedTable(
        keys=keys,
        key_values=[tuple(_plain(v) for v in grouping.key_values[j]) for j in live],
        offsets=np.concatenate([[0], np.cumsum(kept[live])]).astype(np.int64),
        X=np.empty((0, len(features) + len(lags))),
        y=np.empty(0),
        fingerprints=fingerprint_digests(used, kept[live], s1[live], s2[live]),
        features=[*features, *lags],
        categorical=categorical,
        feature_dtypes={**dtypes, **dict.fromkeys(lags, "float64")},
        extra=extra,
    )


def _select(schema: Any, names: list[str]) -> Any:
    import pyarrow as pa

    return pa.schema([schema.field(n) for n in names])


def _line(error: BaseException) -> str:
    return first_line(error)[:300]
