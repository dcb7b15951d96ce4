"""Partition keys and the one-pass split of a table into partitions.

**Canonical key.** See ``manymodels.keys`` (pure Python; its names are re-exported here).

**Split.** The table is sorted once by key (and time), group boundaries are kept as offsets, and
estimators get numpy slices. Building a DataFrame per group costs more than fitting a small model,
so nothing here is per-partition pandas work; see DESIGN.md.

**Fingerprint.** Each partition's data fingerprint is an order-independent hash of its rows (a
sum of per-row hashes), so re-exporting the same data in another row order changes nothing, while
any edited, added or removed row does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from manymodels.exceptions import DataError

# Keys were defined here first: their names are re-exported for the modules that import them.
from manymodels.keys import FALLBACK_KEY as FALLBACK_KEY
from manymodels.keys import decode_key as decode_key
from manymodels.keys import encode_key as encode_key
from manymodels.keys import format_value as format_value
from manymodels.keys import key_from_mapping as key_from_mapping
from manymodels.keys import normalize_key as normalize_key
from manymodels.keys import refuse_long_keys as refuse_long_keys

_MIX = np.uint64(0x9E3779B97F4A7C15)


# --------------------------------------------------------------------------------------------
# the partitioned table
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PartitionedTable:
    """A table sorted by key (then time), with group offsets: partition ``i`` is rows
    ``offsets[i]:offsets[i+1]``. ``X`` is float64 numpy unless some features are categorical,
    in which case it is a DataFrame (categorical columns need their labels)."""

    keys: list[str]
    key_values: list[tuple[Any, ...]]
    offsets: np.ndarray
    X: np.ndarray | pd.DataFrame
    y: np.ndarray
    fingerprints: list[str]
    features: list[str]
    categorical: list[str]
    feature_dtypes: dict[str, str]
    time: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    raw_y: np.ndarray | None = None
    """The target as the table gave it, when ``y`` holds it transformed per partition
    (``spec.target_transform``, ``manymodels.lagfeatures``); ``None`` otherwise."""
    stray: np.ndarray | None = None
    """Rows ``bad_rows = "drop"`` kept in place for the lags that read them
    (``stray_values.leave_out_bad_rows``): never trained on, and not counted among the rows
    left out (the run counts them as ``bad_rows_dropped``, as it counts the rows it removes)."""

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def n_rows(self) -> int:
        return int(self.offsets[-1] - self.offsets[0])

    def rows(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def chunk(self, start: int, stop: int) -> PartitionedTable:
        """Partitions ``start:stop`` as a compact table: only their rows travel to a worker."""
        lo, hi = int(self.offsets[start]), int(self.offsets[stop])
        X = self.X.iloc[lo:hi] if isinstance(self.X, pd.DataFrame) else self.X[lo:hi]
        return PartitionedTable(
            keys=self.keys[start:stop],
            key_values=self.key_values[start:stop],
            offsets=self.offsets[start : stop + 1] - lo,
            X=X,
            y=self.y[lo:hi],
            fingerprints=self.fingerprints[start:stop],
            features=self.features,
            categorical=self.categorical,
            feature_dtypes=self.feature_dtypes,
            time=None if self.time is None else self.time[lo:hi],
            extra=self.extra,
            raw_y=None if self.raw_y is None else self.raw_y[lo:hi],
            stray=None if self.stray is None else self.stray[lo:hi],
        )

    def select(self, keys: set[str]) -> PartitionedTable:
        """Only the named partitions (order kept); cost is proportional to what is kept."""
        idx = [i for i, k in enumerate(self.keys) if k in keys]
        if not idx:
            return self.chunk(0, 0)
        pieces = [self.chunk(i, i + 1) for i in idx]
        return concat(pieces)


def concat(pieces: Sequence[PartitionedTable]) -> PartitionedTable:
    """Join chunks back together (the inverse of ``chunk``)."""
    first = pieces[0]
    sizes = [p.n_rows for p in pieces]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    offsets = np.concatenate(
        [[0]] + [p.offsets[1:] + s for p, s in zip(pieces, starts, strict=True)]
    ).astype(np.int64)
    X: np.ndarray | pd.DataFrame
    if isinstance(first.X, pd.DataFrame):
        X = pd.concat([p.X for p in pieces], ignore_index=True)
    else:
        X = np.concatenate([p.X for p in pieces])
    return PartitionedTable(
        keys=[k for p in pieces for k in p.keys],
        key_values=[k for p in pieces for k in p.key_values],
        offsets=offsets,
        X=X,
        y=np.concatenate([p.y for p in pieces]),
        fingerprints=[f for p in pieces for f in p.fingerprints],
        features=first.features,
        categorical=first.categorical,
        feature_dtypes=first.feature_dtypes,
        time=None if first.time is None else np.concatenate([p.time for p in pieces]),
        extra=first.extra,
        raw_y=None if first.raw_y is None else np.concatenate([p.raw_y for p in pieces]),
        stray=_stray(pieces),
    )


def _stray(pieces: Sequence[PartitionedTable]) -> np.ndarray | None:
    if all(p.stray is None for p in pieces):
        return None
    return np.concatenate([np.zeros(p.n_rows, bool) if p.stray is None else p.stray
                           for p in pieces])  # fmt: skip


@dataclass(frozen=True)
class Grouping:
    """Rows grouped by key: partition ``i`` is rows ``order[offsets[i]:offsets[i+1]]`` of the
    table, whose canonical key is ``keys[i]``."""

    keys: list[str]
    key_values: list[tuple[Any, ...]]
    order: np.ndarray
    offsets: np.ndarray


def group_rows(
    df: pd.DataFrame, key_columns: Sequence[str], *, time_column: str | None = None
) -> Grouping:
    """One sort by key (then time), group boundaries as offsets, and one ``encode_key`` per
    distinct key: no per-group pandas, so it stays cheap at 100,000 partitions."""
    keys_df = df[list(key_columns)]
    for col in key_columns:
        n_missing = int(keys_df[col].isna().sum())
        if n_missing:
            raise DataError(f"partition column '{col}' has {n_missing} missing value(s)")
    if df.empty:
        return Grouping([], [], np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64))
    group = keys_df.groupby(list(key_columns), sort=True, observed=True).ngroup().to_numpy()
    if time_column is not None:
        order = np.lexsort((df[time_column].to_numpy(), group))
    else:
        order = np.argsort(group, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(group))]).astype(np.int64)
    firsts = order[offsets[:-1]]
    key_values = list(zip(*[keys_df[c].to_numpy()[firsts] for c in key_columns], strict=True))
    keys = [encode_key(v, key_columns) for v in key_values]
    if len(set(keys)) != len(keys):
        _clashing_keys(keys, key_values, key_columns)
    return Grouping(keys, key_values, order, offsets)


def _clashing_keys(
    keys: Sequence[str], key_values: Sequence[tuple[Any, ...]], key_columns: Sequence[str]
) -> None:
    """Distinct values with one canonical form (``2`` and ``"2"``, ``2`` and ``2.0`` in a mixed
    column) would be one partition trained twice: refuse the table, naming them."""
    seen: dict[str, tuple[Any, ...]] = {}
    for key, values in zip(keys, key_values, strict=True):
        if key in seen:
            first = seen[key]
            shown = " and ".join(
                "(" + ", ".join(f"{_typed(v)}" for v in vs) + ")" for vs in (first, values)
            )
            raise DataError(
                f"partition column(s) {', '.join(key_columns)} hold different values with the "
                f"same key '{key}': {shown}; make each key column a single type (e.g. all "
                "numbers or all text)"
            )
        seen[key] = values


def _typed(value: Any) -> str:
    v = value.item() if isinstance(value, np.generic) else value
    return f"{v!r} ({type(v).__name__})"


def _missing_text_as_none(X: pd.DataFrame, categorical: Sequence[str]) -> pd.DataFrame:
    """``X`` with each text categorical column holding ``pd.NA`` (the ``string`` dtype of
    ``convert_dtypes()``, an object column of them) as objects, missing cells ``None``: the
    one-hot encoder refuses ``pd.NA`` beside text ("Got ['NAType', 'str']"), which failed
    every fit of such a column, the fallback's too, and ``None`` is what scoring reads a
    missing text cell as (``features.column_values``). Other columns stay as given."""
    for c in (c for c in categorical if c in X.columns):
        s = X[c]
        nullable = isinstance(s.dtype, pd.StringDtype) and s.dtype.na_value is pd.NA
        if not (nullable or s.dtype == object) or not s.isna().any():
            continue
        cells = s.to_numpy(dtype=object)
        if nullable or any(v is pd.NA for v in cells):
            missing = s.isna().to_numpy()
            X[c] = pd.Series(np.where(missing, None, cells), index=X.index, dtype=object)
    return X


def split(
    df: pd.DataFrame,
    *,
    partition_by: Sequence[str],
    target: str,
    features: Sequence[str],
    categorical: Sequence[str] = (),
    time_column: str | None = None,
) -> PartitionedTable:
    """Sort once, find group boundaries, fingerprint each group: O(rows log rows), no per-group
    pandas. Rows keep their file order within a partition unless a time column orders them."""
    if df.empty:
        raise DataError("the table has no rows")
    grouping = group_rows(df, partition_by, time_column=time_column)
    keys, key_values, order, offsets = (
        grouping.keys, grouping.key_values, grouping.order, grouping.offsets
    )  # fmt: skip

    used = [*partition_by, *features, target] + ([time_column] if time_column else [])
    fingerprints = _fingerprints(df[used], order, offsets)

    ordered = df.iloc[order]
    X: np.ndarray | pd.DataFrame
    if categorical:
        X = _missing_text_as_none(ordered[list(features)].reset_index(drop=True), categorical)
    else:
        X = ordered[list(features)].to_numpy(dtype=np.float64)
    return PartitionedTable(
        keys=keys,
        key_values=[tuple(_plain(v) for v in kv) for kv in key_values],
        offsets=offsets,
        X=X,
        y=target_values(ordered[target]),
        fingerprints=fingerprints,
        features=list(features),
        categorical=list(categorical),
        feature_dtypes={c: str(df[c].dtype) for c in features},
        time=None if time_column is None else ordered[time_column].to_numpy(),
    )


def _fingerprints(used: pd.DataFrame, order: np.ndarray, offsets: np.ndarray) -> list[str]:
    """Order-independent per-partition hashes: two uint64 sums of mixed per-row hashes."""
    row_hash, mixed = row_hashes(used)
    starts = offsets[:-1]
    s1 = np.add.reduceat(row_hash[order], starts)
    s2 = np.add.reduceat(mixed[order], starts)
    return fingerprint_digests(list(used.columns), np.diff(offsets), s1, s2)


def row_hashes(used: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's two uint64 hashes; a partition's fingerprint is made of their sums (mod
    2**64), so rows read in batches (``manymodels.datasets``) add up to the same fingerprint."""
    canonical = pd.DataFrame({c: _canonical(used[c]) for c in used.columns})
    row_hash = pd.util.hash_pandas_object(canonical, index=False).to_numpy()
    return row_hash, (row_hash ^ (row_hash >> np.uint64(29))) * _MIX


def fingerprint_digests(
    columns: Sequence[str], n: np.ndarray, s1: np.ndarray, s2: np.ndarray
) -> list[str]:
    """Per partition: its row count and the sums of its rows' ``row_hashes``, as one digest."""
    # Column names only: the dtype is storage (int32 from Parquet, int64 from CSV, float64 once
    # one value is missing), not data; values are hashed in one canonical form per kind.
    sig = "|".join(str(c) for c in columns)
    return [
        hashlib.blake2b(f"{sig}|{c}|{a}|{b}".encode(), digest_size=16).hexdigest()
        for c, a, b in zip(n.tolist(), s1.tolist(), s2.tolist(), strict=True)
    ]


def _canonical(s: pd.Series) -> Any:
    """One form per kind of value, so equal data hashes equal whatever the dtype: numbers as
    float64 (one NaN, no negative zero; the model sees float64 anyway), datetimes as UTC
    nanoseconds, text and everything else as they are."""
    dtype = s.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(np.isnan(values), np.nan, values + 0.0)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        if getattr(dtype, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        try:
            return s.astype("datetime64[ns]").to_numpy()
        except (ValueError, OverflowError):  # beyond the nanosecond range: keep its own unit
            return s.to_numpy()
    return s.array  # positional: the frame's index may repeat labels


def _plain(v: Any) -> Any:
    """numpy scalars → Python scalars, so key values serialise to JSON."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp | dt.datetime | dt.date):
        return v.isoformat()
    return v


def target_values(column: pd.Series) -> np.ndarray:
    """A target column as numpy, pandas' own missing value (``pd.NA``) as numpy's: NaN in
    numbers, ``None`` in labels.

    A nullable column (``"boolean"``, ``"string"``, ``"Int64"``) with a missing cell turned
    into an object array holding ``pd.NA``, on which numpy's ``y == "churn"`` raised "boolean
    value of NA is ambiguous": ``mm.train`` of such a DataFrame stopped with that traceback."""
    if getattr(column.dtype, "na_value", None) is not pd.NA or not column.hasnans:
        return column.to_numpy()  # numpy dtypes, and pandas' text columns missing as NaN
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return column.to_numpy(dtype=object, na_value=None)
