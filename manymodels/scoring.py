"""Batch scoring: one table spanning many partitions, each row scored by its partition's model.

    frame = score("next_week.parquet", "./mmregistry")                 # production models
    result = score_table(df, reg, alias="candidate", backend="local")
    result.summary.fallback_rows

A row is scored by the version its partition's ``alias`` points at; a key without one (unknown,
too small to train, or lacking that alias) by the ``__fallback__`` model at ``alias``, else at
``production``. The output is the input's columns, in its row order, plus ``prediction``,
``model_version``, ``model_partition`` (the registry key whose model answered) and ``fallback``.

Cheap at 100,000 partitions, like training: one sort by key, one ``encode_key`` per distinct
key, one alias-table read and batched version reads, and every problem with the table found
before any model loads. Chunks of partitions (their rows as numpy columns, each one's version,
sha256 and feature schema) go to the backend; a worker loads each model once, verified by its
sha256, predicts on slices, and the predictions are scattered back into the input's order.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from manymodels.artifacts import ArtifactStore, deserialize
from manymodels.data import DataSource, describe_source, output_format, read_table, write_table
from manymodels.exceptions import (
    AliasNotFound,
    ArtifactError,
    DataError,
    ManyModelsError,
    PartitionNotFound,
    RegistryError,
    ScoringError,
)
from manymodels.execution import CHUNKS_PER_WORKER, Backend, make_backend, plan_chunks
from manymodels.features import assemble, column_values, feature_kinds
from manymodels.partition import FALLBACK_KEY, group_rows
from manymodels.registry.client import Registry

OUTPUT_COLUMNS = ("prediction", "model_version", "model_partition", "fallback")
MAX_LISTED_KEYS = 10
MIN_FALLBACK_PIECE = 10_000  # fallback rows travel in pieces of at least this many rows


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring job did: rows, partitions, how many went to the fallback, and time."""

    rows: int
    partitions: int
    fallback_rows: int
    fallback_partitions: int
    unscored_rows: int
    models: int
    chunks: int
    alias: str
    seconds: float
    startup_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScoreResult:
    """The scored table (input columns + ``OUTPUT_COLUMNS``, input row order) and its summary."""

    frame: pd.DataFrame
    summary: ScoreSummary


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------
def score(
    data: DataSource,
    registry: Registry | str | Path = "./mmregistry",
    *,
    alias: str = "production",
    backend: Backend | str = "ray",
    ray_address: str | None = None,
    skip_unknown: bool = False,
) -> pd.DataFrame:
    """Score every row of ``data`` (a DataFrame, or a .csv / .parquet path) with its
    partition's model at ``alias``; ``score_table`` also returns the summary.

    Raises ``DataError`` for a missing or mistyped key or feature column, and for keys with
    neither a model nor a fallback (``skip_unknown`` leaves their prediction empty instead);
    ``ArtifactCorrupted`` when a model's bytes fail their sha256 check.

        frame = score("next_week.csv", "./mmregistry", backend="local")
        frame.loc[frame.fallback, ["store", "brand", "prediction"]]
    """
    return score_table(
        data, registry, alias=alias, backend=backend, ray_address=ray_address,
        skip_unknown=skip_unknown,
    ).frame  # fmt: skip


def score_table(
    data: DataSource,
    registry: Registry | str | Path = "./mmregistry",
    *,
    alias: str = "production",
    backend: Backend | str = "ray",
    ray_address: str | None = None,
    skip_unknown: bool = False,
) -> ScoreResult:
    """``score``, returning the scored frame together with its ``ScoreSummary``."""
    started = time.perf_counter()
    source = describe_source(data)
    df = read_table(data)
    reg = registry if isinstance(registry, Registry) else Registry.open(registry)
    try:
        plan = _plan(df, reg, source=source, alias=alias, skip_unknown=skip_unknown)
    finally:
        if reg is not registry:
            reg.close()

    startup = 0.0
    done: list[tuple[int, list[np.ndarray]]] = []
    chunks: list[Any] = []
    if plan.n_scored:
        setup = time.perf_counter()
        runner = make_backend(backend, address=ray_address) if isinstance(backend, str) else backend
        startup = time.perf_counter() - setup
        try:
            chunks, starts = _chunks(plan, runner.workers)
            for i, result in runner.map_unordered(score_chunk, chunks, reg.artifacts):
                chunks[i] = None  # let the chunk's rows go as soon as it is done
                if isinstance(result, BaseException):
                    runner.cancel()
                    raise _task_error(result)
                done.append((starts[i], result))
        except KeyboardInterrupt:
            runner.cancel()
            raise
        finally:
            if runner is not backend:
                runner.close()

    summary = ScoreSummary(
        rows=len(df),
        partitions=plan.n_partitions,
        fallback_rows=plan.fallback_rows,
        fallback_partitions=plan.fallback_partitions,
        unscored_rows=len(df) - plan.n_scored,
        models=len({(u.key, u.version) for u in plan.units}),
        chunks=len(chunks),
        alias=alias,
        seconds=time.perf_counter() - started,
        startup_seconds=startup,
    )
    return ScoreResult(_output(df, plan, done), summary)


def score_file(
    data: DataSource,
    out: str | Path,
    registry: Registry | str | Path = "./mmregistry",
    *,
    alias: str = "production",
    backend: Backend | str = "ray",
    ray_address: str | None = None,
    skip_unknown: bool = False,
) -> ScoreSummary:
    """Score ``data`` into ``out`` (Parquet or CSV, by its extension). The file appears only
    when everything succeeded: it is written under a temporary name, then renamed."""
    out = Path(out)
    output_format(out)  # a bad extension or directory fails before any work
    result = score_table(
        data, registry, alias=alias, backend=backend, ray_address=ray_address,
        skip_unknown=skip_unknown,
    )  # fmt: skip
    write_table(result.frame, out)
    return result.summary


# --------------------------------------------------------------------------------------------
# the plan: everything checked and resolved before any model loads
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelRef:
    """A model to load (``key`` v``version``, verified against ``sha256``) and the index of
    its feature schema."""

    key: str
    version: int
    sha256: str
    schema: int


@dataclass(frozen=True)
class _Plan:
    """Scored rows in unit order: unit ``u`` is input rows ``positions[offsets[u]:offsets[u+1]]``
    scored by ``units[u]``; one unit per modelled partition in key order, then the fallback's
    rows, if any, as one last unit. ``columns`` hold the features in the same row order."""

    positions: np.ndarray
    offsets: np.ndarray
    units: list[ModelRef]
    schemas: list[dict[str, Any]]
    columns: dict[tuple[str, bool], np.ndarray]
    n_partitions: int
    fallback_partitions: int
    fallback_rows: int

    @property
    def n_scored(self) -> int:
        return len(self.positions)


def _plan(df: pd.DataFrame, reg: Registry, *, source: str, alias: str, skip_unknown: bool) -> _Plan:
    key_columns = reg.partition_by
    if not key_columns:
        where = reg.root if reg.root is not None else reg.db_url
        raise RegistryError(f"the registry at {where} has no trained partitions yet")
    _check_columns(df, key_columns, source=source)
    keys, order, offsets = _group(df, key_columns, source=source)

    table = reg.store.alias_table(alias)
    if alias != "production" and not any(k != FALLBACK_KEY for k in table):
        # A misspelt alias would otherwise score every row with the fallback, silently.
        raise DataError(
            f"no partition in the registry has a '{alias}' model: check the alias name "
            "(the fallback alone would score every row)"
        )
    fallback = table.get(FALLBACK_KEY)
    if fallback is None and alias != "production":
        try:
            fallback = reg.store.resolve_alias(FALLBACK_KEY, "production").version
        except (PartitionNotFound, AliasNotFound):
            fallback = None
    versions = [table.get(k) for k in keys]
    own = np.array([v is not None for v in versions], dtype=bool)
    if fallback is None and not own.all() and not skip_unknown:
        unknown = [k for k, v in zip(keys, versions, strict=True) if v is None]
        shown = ", ".join(f"'{k}'" for k in unknown[:MAX_LISTED_KEYS])
        more = len(unknown) - MAX_LISTED_KEYS
        raise DataError(
            f"{source}: no '{alias}' model for partition(s) {shown}"
            f"{f' and {more} more' if more > 0 else ''}, and the registry has no fallback "
            "model; skip_unknown (--skip-unknown) leaves their rows unscored"
        )
    wanted = {(k, v) for k, v in zip(keys, versions, strict=True) if v is not None}
    if fallback is not None and not own.all():
        wanted.add((FALLBACK_KEY, fallback))
    schemas, refs = _refs(reg, sorted(wanted), alias=alias)
    fallback_ref = refs.get((FALLBACK_KEY, fallback)) if fallback is not None else None

    # Rows of modelled partitions stay in key order; the fallback's (or unscored) rows go last.
    sizes = np.diff(offsets)
    positions = order if own.all() else order[np.argsort(np.repeat(~own, sizes), kind="stable")]
    units = [refs[k, v] for k, v in zip(keys, versions, strict=True) if v is not None]
    counts = sizes[own]
    fallback_rows = int(sizes[~own].sum()) if fallback_ref is not None else 0
    if fallback_ref is not None and fallback_rows:
        units.append(fallback_ref)
        counts = np.append(counts, fallback_rows)
    positions = positions[: int(counts.sum())]
    used = [schemas[i] for i in sorted({u.schema for u in units})]
    return _Plan(
        positions=positions,
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        units=units,
        schemas=schemas,
        columns=_columns(df, positions, used, source=source, alias=alias),
        n_partitions=len(set(keys)),
        fallback_partitions=int((~own).sum()) if fallback_rows else 0,
        fallback_rows=fallback_rows,
    )


def _check_columns(df: pd.DataFrame, key_columns: Sequence[str], *, source: str) -> None:
    missing = [c for c in key_columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing key column(s) {', '.join(map(repr, missing))}: the registry's "
            f"partitions are keyed by {', '.join(key_columns)} "
            f"(table has: {', '.join(map(str, df.columns))})"
        )
    taken = [c for c in OUTPUT_COLUMNS if c in df.columns]
    if taken:
        raise DataError(
            f"{source}: already has column(s) {', '.join(map(repr, taken))}, which scoring "
            "writes; drop or rename them"
        )


def _group(
    df: pd.DataFrame, key_columns: Sequence[str], *, source: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    try:
        g = group_rows(df, key_columns)
    except DataError as e:
        raise DataError(f"{source}: {e}") from None
    return g.keys, g.order, g.offsets


def _refs(
    reg: Registry, pairs: Sequence[tuple[str, int]], *, alias: str
) -> tuple[list[dict[str, Any]], dict[tuple[str, int], ModelRef]]:
    """A ``ModelRef`` per (key, version), from batched reads; equal feature schemas (usually
    all of them) share one entry."""
    schemas: list[dict[str, Any]] = []
    index: dict[Any, int] = {}
    refs: dict[tuple[str, int], ModelRef] = {}
    parsed: dict[str, dict[str, Any]] = {}  # schema JSON text → parsed, once per distinct text
    for key, version, sha, schema_json in reg.store.model_refs(pairs):
        fs = parsed.get(schema_json)
        if fs is None:
            fs = parsed[schema_json] = json.loads(schema_json)
        same = (tuple(feature_kinds(fs)), fs.get("input", "numpy"))
        if same not in index:
            index[same] = len(schemas)
            schemas.append(fs)
        refs[key, version] = ModelRef(key, version, sha, index[same])
    lost = [p for p in pairs if p not in refs]
    if lost:
        key, version = lost[0]
        raise RegistryError(f"'{alias}' of partition '{key}' points at v{version}, which is gone")
    return schemas, refs


def _columns(
    df: pd.DataFrame,
    positions: np.ndarray,
    schemas: Sequence[Mapping[str, Any]],
    *,
    source: str,
    alias: str,
) -> dict[tuple[str, bool], np.ndarray]:
    """Every feature the models need, converted and checked once, in the plan's row order."""
    needed = list(dict.fromkeys(kind for s in schemas for kind in feature_kinds(s)))
    missing = list(dict.fromkeys(name for name, _ in needed if name not in df.columns))
    if missing:
        raise DataError(
            f"{source}: missing feature column(s) {', '.join(map(repr, missing))} that the "
            f"'{alias}' models were trained on (table has: {', '.join(map(str, df.columns))})"
        )
    out: dict[tuple[str, bool], np.ndarray] = {}
    for name, numeric in needed:
        values = column_values(df[name], numeric=numeric, name=name, source=source)
        out[name, numeric] = values[positions]
    return out


# --------------------------------------------------------------------------------------------
# chunks, and what a worker does with one
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoreChunk:
    """Consecutive units: unit ``i`` is rows ``offsets[i]:offsets[i+1]`` of ``columns`` (keyed
    by feature name and whether it is numeric; already checked), scored by ``units[i]``."""

    offsets: np.ndarray
    units: list[ModelRef]
    schemas: dict[int, dict[str, Any]]
    columns: dict[tuple[str, bool], np.ndarray]


def _chunks(plan: _Plan, workers: int) -> tuple[list[Any], list[int]]:
    """Chunks of roughly equal rows, and where each starts in the plan's row order; the
    fallback's unit is first cut into pieces so that it spreads over the workers too."""
    offsets, units = plan.offsets, list(plan.units)
    if plan.fallback_rows:
        piece = max(MIN_FALLBACK_PIECE, math.ceil(plan.n_scored / (workers * CHUNKS_PER_WORKER)))
        cuts = np.arange(int(offsets[-2]) + piece, int(offsets[-1]), piece, dtype=np.int64)
        offsets = np.concatenate([offsets[:-1], cuts, offsets[-1:]])
        units += [units[-1]] * len(cuts)
    chunks: list[Any] = []
    starts: list[int] = []
    for a, b in plan_chunks(offsets, workers):
        lo, hi = int(offsets[a]), int(offsets[b])
        chunk_units = units[a:b]
        chunks.append(
            ScoreChunk(
                offsets=offsets[a : b + 1] - lo,
                units=chunk_units,
                schemas={u.schema: plan.schemas[u.schema] for u in chunk_units},
                columns={k: v[lo:hi] for k, v in plan.columns.items()},
            )
        )
        starts.append(lo)
    return chunks, starts


def score_chunk(chunk: ScoreChunk, store: ArtifactStore) -> list[np.ndarray] | ManyModelsError:
    """The task body shipped to workers: one prediction array per unit. Our own errors are
    returned, not raised, so they reach the driver as themselves rather than wrapped."""
    try:
        return _score_chunk(chunk, store)
    except ManyModelsError as e:
        return e


def _score_chunk(chunk: ScoreChunk, store: ArtifactStore) -> list[np.ndarray]:
    inputs: dict[int, tuple[np.ndarray, dict[int, np.ndarray]]] = {}
    models: dict[tuple[str, int], Any] = {}
    out: list[np.ndarray] = []
    for i, ref in enumerate(chunk.units):
        lo, hi = int(chunk.offsets[i]), int(chunk.offsets[i + 1])
        schema = chunk.schemas[ref.schema]
        if ref.schema not in inputs:
            inputs[ref.schema] = _matrix(chunk, schema)
        values, text = inputs[ref.schema]
        X = assemble(schema, values[lo:hi], {j: t[lo:hi] for j, t in text.items()})
        if (ref.key, ref.version) not in models:
            models[ref.key, ref.version] = _load(ref, store)
        try:
            pred = np.asarray(models[ref.key, ref.version].predict(X))
        except (ValueError, TypeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise DataError(
                f"partition '{ref.key}' v{ref.version} could not score its {hi - lo} row(s): "
                f"{first}"
            ) from None
        if pred.shape[:1] != (hi - lo,):
            raise DataError(
                f"partition '{ref.key}' v{ref.version} returned {len(pred)} prediction(s) for "
                f"{hi - lo} row(s)"
            )
        out.append(pred)
    return out


def _matrix(chunk: ScoreChunk, schema: Mapping[str, Any]) -> tuple[np.ndarray, dict[int, Any]]:
    """The whole chunk as one schema's float64 matrix and text columns; units take slices."""
    kinds = feature_kinds(schema)
    values = np.zeros((int(chunk.offsets[-1]), len(kinds)), dtype=np.float64)
    text: dict[int, np.ndarray] = {}
    for j, (name, numeric) in enumerate(kinds):
        if numeric:
            values[:, j] = chunk.columns[name, True]
        else:
            text[j] = chunk.columns[name, False]
    return values, text


def _load(ref: ModelRef, store: ArtifactStore) -> Any:
    """Bytes checked against the registry's sha256 before they are unpickled."""
    try:
        data = store.get(ref.sha256)
    except ArtifactError as e:
        raise type(e)(f"cannot score partition '{ref.key}' v{ref.version}: {e}") from None
    try:
        return deserialize(data)
    except Exception as e:  # e.g. pickled by an incompatible library version
        raise ArtifactError(
            f"cannot score partition '{ref.key}' v{ref.version}: its artifact does not load "
            f"({type(e).__name__}: {e})"
        ) from None


def _task_error(error: BaseException) -> ManyModelsError:
    if isinstance(error, ManyModelsError):
        return error
    last = (str(error).strip().splitlines() or [""])[-1][:500]
    return ScoringError(f"a scoring task failed ({type(error).__name__}: {last})")


# --------------------------------------------------------------------------------------------
# the output, in the input's row order
# --------------------------------------------------------------------------------------------
def _output(
    df: pd.DataFrame, plan: _Plan, done: Sequence[tuple[int, list[np.ndarray]]]
) -> pd.DataFrame:
    n, at = len(df), plan.positions
    counts = np.diff(plan.offsets)
    names = list(dict.fromkeys(u.key for u in plan.units))
    code_of = {k: i for i, k in enumerate(names)}
    codes = np.full(n, -1, dtype=np.int64)
    codes[at] = np.repeat([code_of[u.key] for u in plan.units], counts)
    fallback = np.zeros(n, dtype=bool)
    fallback[at] = np.repeat([u.key == FALLBACK_KEY for u in plan.units], counts)
    versions = np.zeros(n, dtype=np.int64)
    versions[at] = np.repeat([u.version for u in plan.units], counts)
    return df.assign(
        prediction=_predictions(n, plan, done),
        model_version=_with_missing(versions, plan),
        model_partition=pd.Categorical.from_codes(codes, categories=names),
        fallback=fallback,
    )


def _predictions(n: int, plan: _Plan, done: Sequence[tuple[int, list[np.ndarray]]]) -> Any:
    """Predictions scattered into input order; unscored rows missing (NaN, <NA> or None)."""
    pieces = [p for _, chunk in done for p in chunk]
    try:
        dtype = np.result_type(*{p.dtype for p in pieces}) if pieces else np.dtype(np.float64)
    except TypeError:  # e.g. text labels from one model, numbers from another
        dtype = np.dtype(object)
    if dtype.kind == "f":
        out = np.full(n, np.nan, dtype=dtype)
    elif dtype.kind in "iub":
        out = np.zeros(n, dtype=dtype)
    else:
        out = np.full(n, None, dtype=object)
    for start, chunk in done:
        for p in chunk:
            out[plan.positions[start : start + len(p)]] = p
            start += len(p)
    return _with_missing(out, plan) if dtype.kind in "iub" else out


def _with_missing(values: np.ndarray, plan: _Plan) -> Any:
    """Integers or booleans as is, or as a nullable array when some rows went unscored."""
    if plan.n_scored == len(values):
        return values
    mask = np.ones(len(values), dtype=bool)
    mask[plan.positions] = False
    if values.dtype.kind == "b":
        return pd.arrays.BooleanArray(values, mask)
    return pd.arrays.IntegerArray(values.astype(np.int64), mask)
