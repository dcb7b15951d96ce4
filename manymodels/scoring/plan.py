"""The scoring plan: which model scores which rows, everything checked and resolved before any
model loads, and the chunks the backend runs.

Every problem with the table itself (a missing key or feature column, a mistyped value, a key
with no model and no fallback) is found here, before any model loads, rather than by a worker
after minutes of loading models.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from manymodels import intervals as conformal
from manymodels.argument_order import index_hint
from manymodels.champion_targets import require_one_target
from manymodels.exceptions import AliasNotFound, DataError, PartitionNotFound, RegistryError
from manymodels.execution import CHUNKS_PER_WORKER, plan_chunks
from manymodels.feature_schema import FeatureSchema
from manymodels.features import column_values, feature_kinds
from manymodels.huge_numbers import refuse_infinite
from manymodels.key_lists import listed
from manymodels.labels import threshold_classes
from manymodels.partition import FALLBACK_KEY, group_rows
from manymodels.registry.client import Registry
from manymodels.registry.entities import RETIRED
from manymodels.row_numbers import data_row
from manymodels.scoring.calendar_columns import with_calendar
from manymodels.scoring.fallback_spec import plan_columns
from manymodels.scoring.lag_columns import lag_names, with_lags
from manymodels.signing import verify
from manymodels.tables import refuse_repeated_columns
from manymodels.trained_keys import trained_spellings
from manymodels.written_columns import DECISION_COLUMNS, SCORED_COLUMNS

# The columns scoring adds (``output.scored_frame``); checked here so a clash fails up front.
# ``partition`` is the row's own key (canonical), ``served_by`` the registry key whose model
# answered (``__fallback__`` when falling back): the router's JSON answers use the same names.
# One list with what forecasts write (``written_columns``), which training refuses to read.
OUTPUT_COLUMNS = SCORED_COLUMNS
MIN_FALLBACK_PIECE = 10_000  # fallback rows travel in pieces of at least this many rows


@dataclass(frozen=True)
class ModelRef:
    """A model to load (``key`` v``version``, verified against ``sha256``) and the index of
    its feature schema."""

    key: str
    version: int
    sha256: str
    schema: int
    intervals: dict[str, Any] | None = None  # its interval record (manymodels.intervals)
    bound: dict[str, Any] | None = None  # a global model's key binding (schema "global")
    decision: dict[str, Any] | None = None  # a binary classifier's threshold: rows labelled
    classes: list[Any] | None = None  # a classifier's table's classes: its probability columns


@dataclass(frozen=True)
class Plan:
    """Scored rows in unit order: unit ``u`` is input rows ``positions[offsets[u]:offsets[u+1]]``
    scored by ``units[u]``; one unit per modelled partition in key order, then the fallback's
    rows, if any, as one last unit. ``columns`` hold the features in the same row order.
    ``keys[key_codes[i]]`` is input row ``i``'s canonical key, scored or not."""

    positions: np.ndarray
    offsets: np.ndarray
    units: list[ModelRef]
    schemas: list[FeatureSchema]
    columns: dict[tuple[str, bool], np.ndarray]
    n_partitions: int
    fallback_partitions: int
    fallback_rows: int
    retired_partitions: int  # of those without a model: taken out of production (retire)
    keys: list[str]
    key_codes: np.ndarray
    transformed: dict[tuple[str, int], FeatureSchema] = field(default_factory=dict)
    """The whole schema of each ``(key, version)`` that records a target transform: its
    parameters and the history a ``difference`` is turned back from are the partition's, not
    those of the schema it shares by feature kinds (``ModelRef.schema``). Read by the driver
    only (``targetunits.plan_inverses``): never shipped with the chunks."""

    @property
    def n_scored(self) -> int:
        return len(self.positions)


def make_plan(
    df: pd.DataFrame,
    reg: Registry,
    *,
    source: str,
    alias: str,
    skip_unknown: bool,
    threshold: float | None = None,
) -> Plan:
    """The whole job resolved from one pass over ``df`` and batched registry reads; raises
    ``DataError`` / ``RegistryError`` for anything that would otherwise fail mid-job.
    ``threshold``: every answering model labels its rows at it (a binary classifier's, as the
    router's ``?threshold=``; any other is refused, ``labels.threshold_classes``)."""
    key_columns = reg.partition_by
    if not key_columns:
        raise RegistryError(f"the registry at {reg.location} has no trained partitions yet")
    _check_columns(df, key_columns, source=source)
    keys, order, offsets = _group(df, key_columns, source=source)

    # the data's keys' rows (the fallback's, and the other trained forms' of those absent, in
    # a second read only when one is): O(keys in the data), where the whole alias table was
    # read to score one partition's rows; a key found as written is never respelt
    at_alias = partial(reg.store.alias_versions, alias=alias)
    spelt, table = trained_spellings([*keys, FALLBACK_KEY], at_alias)
    if (
        alias != "production"
        and not any(k != FALLBACK_KEY for k in table)
        and not reg.store.alias_in_use(alias)
    ):
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
    # the form training wrote a key in, for one the data writes otherwise (``store=2.0``; a
    # date column's ``2024-01-01`` for a DataFrame's ``2024-01-01T00:00:00``): as the router
    keys = [spelt[k] or k for k in keys]
    versions = [table.get(k) for k in keys]
    own = np.array([v is not None for v in versions], dtype=bool)
    unknown = [k for k, v in zip(keys, versions, strict=True) if v is None]
    # retired partitions (``manymodels retire``) are scored as unknown keys, and said so
    retired = len(reg.store.alias_versions(unknown, RETIRED)) if alias == "production" else 0
    if fallback is None and unknown and not skip_unknown:
        raise DataError(
            f"{source}: no '{alias}' model for partition(s) {listed(unknown)}"
            f"{f' ({retired} retired)' * bool(retired)}"
            ", and the registry has no fallback model; skip_unknown (--skip-unknown) leaves "
            "their rows unscored"
        )
    wanted = {(k, v) for k, v in zip(keys, versions, strict=True) if v is not None}
    if fallback is not None and not own.all():
        wanted.add((FALLBACK_KEY, fallback))
    schemas, refs, transformed, targets, lagged = _refs(
        reg, sorted(wanted), alias=alias, threshold=threshold
    )
    require_one_target(source, alias, targets, reg.store.version_specs)
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
    if any(u.decision for u in units):  # written only where a version decides
        refuse_written(
            df, DECISION_COLUMNS, source=source, by="scoring writes for a classifier's [decision]"
        )
    used = [schemas[i] for i in sorted({u.schema for u in units})]
    read = [name for fs in used for name, _ in feature_kinds(fs)]
    refuse_repeated_columns(df, source, [*read, *(fs.time_column for fs in used)])
    unit_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # lags and changes a table of new rows leaves out: from each partition's history
    df = with_lags(df, positions, unit_offsets, units, lagged, source=source, alias=alias)
    return Plan(
        positions=positions,
        offsets=unit_offsets,
        units=units,
        schemas=schemas,
        columns=plan_columns(df, reg, positions, schemas, units, fallback_rows, source, alias),
        n_partitions=len(set(keys)),
        fallback_partitions=int((~own).sum()) if fallback_rows else 0,
        fallback_rows=fallback_rows,
        retired_partitions=retired,
        keys=keys,
        key_codes=_key_codes(order, sizes),
        transformed=transformed,
    )


def _key_codes(order: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Each input row's index into the grouping's keys (``order`` lists rows group by group)."""
    codes = np.empty(len(order), dtype=np.int64)
    codes[order] = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    return codes


def _check_columns(df: pd.DataFrame, key_columns: Sequence[str], *, source: str) -> None:
    refuse_repeated_columns(df, source, key_columns)
    missing = [c for c in key_columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing key column(s) {', '.join(map(repr, missing))}: the registry's "
            f"partitions are keyed by {', '.join(key_columns)} "
            f"(table has: {', '.join(map(str, df.columns))})" + index_hint(missing, df)
        )
    refuse_written(df, OUTPUT_COLUMNS, source=source, by="scoring writes")


def _group(
    df: pd.DataFrame, key_columns: Sequence[str], *, source: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    try:
        g = group_rows(df, key_columns)
    except DataError as e:
        raise DataError(f"{source}: {e}") from None
    return g.keys, g.order, g.offsets


def _refs(
    reg: Registry, pairs: Sequence[tuple[str, int]], *, alias: str, threshold: float | None = None
) -> tuple[
    list[FeatureSchema],
    dict[tuple[str, int], ModelRef],
    dict[tuple[str, int], FeatureSchema],
    dict[str | None, list[tuple[str, int]]],
    dict[tuple[str, int], FeatureSchema],
]:
    """A ``ModelRef`` per (key, version), from batched reads; equal feature schemas (usually
    all of them) share one entry. With a signing key, a version whose signature does not
    verify fails the whole job (``BadSignature``) before any task is shipped. Last, each
    target the versions predict, with the (key, version) pairs predicting it
    (``champion_targets.require_one_target``), and the whole schema of each version with
    target lags, rolling statistics or changes, whose history computes those a table leaves
    out (``lag_columns.with_lags``; already parsed, so kept at no cost)."""
    schemas: list[FeatureSchema] = []
    index: dict[Any, int] = {}
    refs: dict[tuple[str, int], ModelRef] = {}
    parsed: dict[str, FeatureSchema] = {}  # schema JSON text → parsed, once per distinct text
    transformed: dict[tuple[str, int], FeatureSchema] = {}
    lagged: dict[tuple[str, int], FeatureSchema] = {}
    targets: dict[str | None, list[tuple[str, int]]] = {}
    for key, version, row in reg.store.model_refs(pairs):
        # The driver holds the key: workers get only sha256s it vouches for, and check the
        # bytes against them before unpickling.
        sha, schema_json = row.artifact_sha256, row.feature_schema_json
        verify(reg.signer, row.signature, key, version, sha, row.data_sha256, schema_json)
        fs = parsed.get(schema_json)
        if fs is None:
            fs = parsed[schema_json] = FeatureSchema.from_json(schema_json)
        targets.setdefault(fs.target, []).append((key, version))
        same = (tuple(feature_kinds(fs)), fs.input)
        if same not in index:
            index[same] = len(schemas)
            schemas.append(fs)
        decision = fs.decision
        if threshold is not None:  # asked: labelled at it, [decision] or not, as the router
            threshold_classes(fs, f"partition '{key}' v{version}")
            decision = {**(decision or {}), "threshold": threshold}
        refs[key, version] = ModelRef(
            key, version, sha, index[same], fs.intervals, fs.bound, decision, fs.classes
        )  # equal schemas are shared, so a global model's key (and threshold) travels here
        if fs.transform is not None:  # and a transform, with the partition's own history
            transformed[key, version] = fs
        if lag_names(fs):
            lagged[key, version] = fs
    lost = [p for p in pairs if p not in refs]
    if lost:
        key, version = lost[0]
        raise RegistryError(f"'{alias}' of partition '{key}' points at v{version}, which is gone")
    return schemas, refs, transformed, targets, lagged


def _columns(
    df: pd.DataFrame,
    positions: np.ndarray,
    schemas: Sequence[FeatureSchema],
    *,
    source: str,
    alias: str,
) -> dict[tuple[str, bool], np.ndarray]:
    """Every feature the models need, converted and checked once, in the plan's row order."""
    needed = list(dict.fromkeys(kind for s in schemas for kind in feature_kinds(s)))
    missing = list(dict.fromkeys(name for name, _ in needed if name not in df.columns))
    given = list(df.columns)
    if missing:
        df = with_calendar(df, missing, schemas, source=source)
        missing = [name for name in missing if name not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing feature column(s) {', '.join(map(repr, missing))} that the "
            f"'{alias}' models were trained on (table has: {', '.join(map(str, given))})"
            + (_derived_hint(missing, schemas) or index_hint(missing, df))
        )
    out: dict[tuple[str, bool], np.ndarray] = {}
    for name, numeric in needed:
        values = column_values(df[name], numeric=numeric, name=name, source=source)
        if numeric:  # scikit-learn's "Input X contains infinity" named neither column nor row
            refuse_infinite(values, f"feature '{name}'", source=source, where=data_row)
        out[name, numeric] = values[positions]
    return out


def _derived_hint(missing: Sequence[str], schemas: Sequence[FeatureSchema]) -> str:
    """A word on missing columns that training derived (changes; lags, rolling statistics
    and calendar parts without a time column): a score table carries them as training
    computed them, or a time column they are computed from (``lag_columns``)."""
    derived = {name for s in schemas for name in s.derived}
    if not derived.intersection(missing):
        return ""
    return (
        "; lags, rolling statistics and changes are derived by training: a score table "
        "carries them as training computed them, or its time column gives the calendar "
        "parts, and with each partition's history its lags, rolling statistics and changes "
        "(LoadedModel.predict and the router compute them all from a row's time)"
    )


# --------------------------------------------------------------------------------------------
# chunks: the plan cut into backend tasks
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoreChunk:
    """Consecutive units: unit ``i`` is rows ``offsets[i]:offsets[i+1]`` of ``columns`` (keyed
    by feature name and whether it is numeric; already checked), scored by ``units[i]``."""

    offsets: np.ndarray
    units: list[ModelRef]
    schemas: dict[int, FeatureSchema]
    columns: dict[tuple[str, bool], np.ndarray]
    probabilities: bool = False  # also each unit's class probabilities (``--probabilities``)
    threshold: float | None = None  # asked (``--threshold``): each model checked as it loads


def make_chunks(
    plan: Plan, workers: int, *, probabilities: bool = False, threshold: float | None = None
) -> tuple[list[Any], list[int]]:
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
                probabilities=probabilities,
                threshold=threshold,
            )
        )
        starts.append(lo)
    return chunks, starts


def interval_levels(
    df: pd.DataFrame, plan: Plan, levels: Sequence[float] | None, *, source: str
) -> list[float]:
    """The interval levels the scored table carries (``intervals.choose_levels`` over the
    answering versions), checked not to clash with the table's own columns."""
    named = [
        (
            f"partition '{u.key}' v{u.version}",
            FeatureSchema([], task=plan.schemas[u.schema].task, intervals=u.intervals),
        )
        for u in {(u.key, u.version): u for u in plan.units}.values()
    ]
    chosen = conformal.choose_levels(named, levels)
    names = conformal.column_names(chosen)
    refuse_written(df, names, source=source, by="scoring writes for prediction intervals")
    return chosen


def refuse_written(df: pd.DataFrame, names: Iterable[str], *, source: str, by: str) -> None:
    """A ``DataError`` naming the columns of ``df`` among ``names`` that the scored table
    would overwrite (``by``: what writes them), in one wording for every such column;
    checked before any model loads, so that a clash costs no scoring."""
    taken = [c for c in dict.fromkeys(names) if c in df.columns]
    if taken:
        raise DataError(
            f"{source}: already has column(s) {', '.join(map(repr, taken))}, which {by}; "
            "drop or rename them"
        )
