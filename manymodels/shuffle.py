"""Where a Parquet dataset's rows wait, bucketed by training chunk, between the driver's check
pass and the chunks' tasks (``manymodels.datasets``): a local temporary directory by default,
or under any fsspec URL (``--shuffle-dir s3://bucket/tmp/``) that every Ray node can read.

A local directory serves one machine; on a cluster of several, a task on another node finds
nothing there. The copy is written once, read once per chunk, and removed when the run's index
table is gone (or at once if the check pass fails); a run killed outright leaves its
``manymodels-shuffle-*`` prefix behind, as it would leave a temporary directory.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
import uuid
from typing import Any

import numpy as np
import pandas as pd

from manymodels.exceptions import DataError
from manymodels.parent_dirs import missing_parent
from manymodels.store_urls import data_path

BUCKET = "__manymodels_bucket"
PREFIX = "manymodels-shuffle-"


class _Local:
    """The few fsspec calls the copy makes, on a local directory. fsspec comes with an extra
    (``manymodels[s3]``), not with ``pip install manymodels``: importing it for the default
    place, a local temporary directory, made every Parquet dataset fail to train on a plain
    install (a ``ModuleNotFoundError`` traceback)."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        os.makedirs(path, exist_ok=exist_ok)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def rm(self, path: str, recursive: bool = False) -> None:
        shutil.rmtree(path) if recursive else os.remove(path)

    def ls(self, path: str, detail: bool = False) -> list[str]:
        return [os.path.join(path, name) for name in os.listdir(path)]

    def glob(self, pattern: str) -> list[str]:
        return glob.glob(pattern)


def _fs(root: str) -> tuple[Any, str]:
    if "://" not in root or root.startswith("file://"):
        return _Local(), root.removeprefix("file://")
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise DataError(
            f"{root}: a shuffle directory at a URL needs fsspec and its backend "
            "(pip install 'manymodels[s3]' for s3://)"
        ) from None
    return url_to_fs(root)


def _arrow(fs: Any) -> Any:
    """The filesystem to hand pyarrow: ``None`` (its own local one) for a local directory."""
    return None if isinstance(fs, _Local) else fs


def new_root(base: str | None) -> str:
    """A fresh, empty place for one run's copy: under ``base`` (a directory or fsspec URL),
    or a new local temporary directory."""
    if base is None:
        return tempfile.mkdtemp(prefix=PREFIX)
    base = str(data_path(base))  # file://localhost/tmp is /tmp, as a data path is read
    if re.match(r"[A-Za-z][\w+.-]+:/(?!/)", base):  # s3:/b/tmp, a '/' missing (not C:/x)
        raise DataError(
            f"{base}: a shuffle directory URL's scheme is followed by '://' (s3://bucket/tmp/); "
            f"a local directory with ':' in its name is written './{base}'"
        )  # it made the local directories ./s3:/b/tmp, then pyarrow failed on an S3 URI
    root = f"{base.rstrip('/')}/{PREFIX}{uuid.uuid4().hex[:16]}"
    fs, path = _fs(root)
    parent = os.path.dirname(os.path.abspath(path.rsplit("/", 1)[0]))
    said = missing_parent(base, parent) if isinstance(fs, _Local) else None
    if said is not None:  # a typo'd path: no mkdir -p
        raise DataError(said)  # the run made /nonexistent/a/b and its parents, and left them
    try:
        fs.makedirs(path, exist_ok=True)  # a no-op on object stores, a directory on disk
    except OSError as e:  # a file named as the directory: a traceback, not a line
        said = e.strerror or str(e) or type(e).__name__
        raise DataError(f"{base}: cannot write there ({said})") from None
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
        basename_template=f"b{batch:07d}-{{i}}.parquet", filesystem=_arrow(fs),
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
        [pq.read_table(f, filesystem=_arrow(fs)).to_pandas() for f in files], ignore_index=True
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
