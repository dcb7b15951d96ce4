"""Where a Parquet dataset's rows wait, bucketed by training chunk, between the driver's check
pass and the chunks' tasks (``manymodels.datasets``): a local temporary directory by default,
or under any fsspec URL (``--shuffle-dir s3://bucket/tmp/``) that every Ray node can read.

A local directory serves one machine; on a cluster of several, a task on another node finds
nothing there. The copy is written once, read once per chunk, and removed when the run's index
table is gone (or at once if the check pass fails); a run killed outright leaves its
``manymodels-shuffle-*`` prefix behind, as it would leave a temporary directory.
"""

from __future__ import annotations

import tempfile
import uuid
from typing import Any

import numpy as np
import pandas as pd

BUCKET = "__manymodels_bucket"
PREFIX = "manymodels-shuffle-"


def _fs(root: str) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    return url_to_fs(root)


def new_root(base: str | None) -> str:
    """A fresh, empty place for one run's copy: under ``base`` (a directory or fsspec URL),
    or a new local temporary directory."""
    if base is None:
        return tempfile.mkdtemp(prefix=PREFIX)
    root = f"{base.rstrip('/')}/{PREFIX}{uuid.uuid4().hex[:16]}"
    fs, path = _fs(root)
    fs.makedirs(path, exist_ok=True)  # a no-op on object stores, a directory on disk
    return root


def remove(root: str) -> None:
    """Delete one run's copy (whatever is left of it; never raises)."""
    try:
        fs, path = _fs(root)
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except Exception:  # cleanup of a temporary copy: nothing to tell the user that matters
        pass


def write(table: Any, root: str, batch: int) -> None:
    """Append one record batch's rows (an Arrow table with a ``BUCKET`` column) to the copy."""
    import pyarrow.dataset as ds

    fs, path = _fs(root)
    ds.write_dataset(
        table, path, format="parquet", partitioning=[BUCKET], partitioning_flavor="hive",
        basename_template=f"b{batch:07d}-{{i}}.parquet", filesystem=fs,
        existing_data_behavior="overwrite_or_ignore",
    )  # fmt: skip


def buckets(root: str) -> list[int]:
    """The buckets the copy holds rows of."""
    fs, path = _fs(root)
    names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)]
    prefix = f"{BUCKET}="
    return sorted(int(n[len(prefix) :]) for n in names if n.startswith(prefix))


def read_bucket(root: str, bucket: int) -> pd.DataFrame:
    """One bucket's rows, in the order they were read (file names number the batches)."""
    import pyarrow.parquet as pq

    fs, path = _fs(root)
    files = sorted(fs.glob(f"{path.rstrip('/')}/{BUCKET}={bucket}/*.parquet"))
    return pd.concat(
        [pq.read_table(f, filesystem=fs).to_pandas() for f in files], ignore_index=True
    )


def whole_partitions(
    frame: pd.DataFrame, keys: list[str], share: float, rng: np.random.Generator
) -> pd.DataFrame:
    """About ``share`` of a bucket's rows as whole partitions, taken in a seeded random order
    until the next would pass the share — at least one, so that a bucket of few large
    partitions is not left out entirely; at most one partition over the share."""
    group = frame.groupby(keys, sort=False, observed=True).ngroup().to_numpy()
    sizes = np.bincount(group)
    order = rng.permutation(len(sizes))
    fits = int(np.searchsorted(np.cumsum(sizes[order]), share * len(frame), side="right"))
    keep = np.zeros(len(sizes), dtype=bool)
    keep[order[: max(1, fits)]] = True
    return frame[keep[group]]
