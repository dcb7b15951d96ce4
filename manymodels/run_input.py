"""A run's input read and checked: the data prepared into a partitioned table (with a run's
``append`` rows merged), its notes, and the keys of ``only`` it holds. Shared by ``train``
and by ``retrain --dry-run`` (``would_retrain``), so that the dry run lists exactly the
partitions the run would train, read the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from manymodels.appending import with_learnt_prior
from manymodels.champion_targets import require_same_target
from manymodels.csvkeys import recorded_key
from manymodels.data import prepare
from manymodels.datasets import is_dataset, prepare_streamed, streams
from manymodels.feature_schema import FeatureSchema
from manymodels.key_selection import KeySelection
from manymodels.key_spellings import registry_spelling
from manymodels.partition import FALLBACK_KEY, PartitionedTable
from manymodels.registry.client import Registry
from manymodels.registry.ownership import check_training_store
from manymodels.registry.registry_location import (
    RegistryLocation,
    open_writer,
    open_writer_if_there,
)
from manymodels.run_plan import changed_keys, require_same_keys, table_notes, wanted_keys
from manymodels.signing import Signer
from manymodels.spec import Spec
from manymodels.tables import DataSource, describe_source
from manymodels.training.classify import refuse_unscorable_metric
from manymodels.training.positive_class import positive_warnings


@dataclass(frozen=True)
class RunInput:
    """What ``read_input`` read: the registry (opened by it when given a path), the table,
    the run's source and notes, and the keys to train (None: all of the table's)."""

    reg: Registry
    table: PartitionedTable
    source: str | None
    notes: dict[str, Any]
    wanted: set[str] | None


def read_input(
    spec: Spec,
    data: DataSource,
    registry: Registry | RegistryLocation | str | Path,
    *,
    signer: Signer | None = None,
    append: bool = False,
    source: str | None = None,
    notes: Mapping[str, Any] | None = None,
    only: KeySelection | None = None,
    shuffle_dir: str | None = None,
    learnt_schema: FeatureSchema | None = None,
    skip_absent: bool = False,
) -> RunInput:
    """Read ``data`` for a run of ``spec`` (``pipeline.train``'s arguments of the same names).

    A registry given as a path or a ``RegistryLocation`` is opened (made, if new) only once
    the data is read (bad input fails before the registry is written, or created), or for
    ``append`` once its new rows are read alone (it reads the kept rows); closed here if this
    raises, the caller's to close otherwise."""
    reg: Registry | None = registry if isinstance(registry, Registry) else None
    opened = reg is None
    # errors name the data as the user gave it: an append's merged table too, as every check
    # of its new rows does (it was "rows.csv (appended)" there, read as another file)
    named = source or describe_source(data)
    try:
        if append:
            from manymodels.appended_rows import read_appended
            from manymodels.appending import with_training_rows

            new = read_appended(spec, data)  # before the registry is opened
            if reg is None:  # none there: None, made below once the rows are checked
                assert not isinstance(registry, Registry)
                reg = open_writer_if_there(registry, signer)
            if reg is not None:  # before its kept rows are read from the store, as the run
                check_training_store(reg)  # asks it (a misspelt or forgotten --artifacts)
            merged = with_training_rows(reg, spec, data, new)
            source = source or f"{named} (appended)"  # the run records what it trained on
            notes = {**(notes or {}), "append": merged.counts}
            only = merged.keys if only is None else only
            data = merged.frame
        # bad input fails here, before the registry is written
        if is_dataset(data) and streams(spec):  # a Parquet directory: never whole in memory here
            table = prepare_streamed(spec, data, shuffle_dir=shuffle_dir)
        else:
            learnt = merged.categorical if append else []  # a frame's category columns
            keyed = None if append else recorded_key(reg or registry, spec.partition_by, data)
            by = spec.partition_by
            spelt = None if append else registry_spelling(reg or registry, by, spec.name)
            table, _ = prepare(spec, data, name=named if append else None, categorical=learnt,
                               recorded=keyed, spelt=spelt)  # fmt: skip
        if append or learnt_schema is not None:  # the table's class prior, not its partitions'
            table = with_learnt_prior(table, merged.learnt if append else learnt_schema)
        if spec.task == "classification" and "class_prior" in table.extra:
            in_memory = isinstance(table.y, np.ndarray)
            rows = (table.y, table.offsets) if in_memory else (None, None)
            refuse_unscorable_metric(spec, table.extra["class_prior"], *rows, source=named)
        found = table_notes(table)
        if spec.task == "classification" and "class_prior" in table.extra:
            said = positive_warnings(spec, table.extra["class_prior"])  # said, not refused
            if said:
                found["warnings"] = [*found.get("warnings", []), *said]
        if append and merged.warnings:  # the append's first: they explain the rows trained on
            found["warnings"] = [*merged.warnings, *found.get("warnings", [])]
        if (notes or {}).get("warnings"):  # the caller's (the router's reading of an upload)
            found["warnings"] = [*(notes or {})["warnings"], *found.get("warnings", [])]
        notes = {**(notes or {}), **found}
        wanted, absent = wanted_keys(
            table, only, spec.partition_by, skip_absent=skip_absent, source=named
        )
        if absent:
            notes = {**notes, "not_in_data": {"count": len(absent), "first": absent[:10]}}
        if reg is None:  # a path or a location: opened (made) now that the data was read
            assert not isinstance(registry, Registry)
            reg = open_writer(registry, signer)
            if append:  # appended to nothing: made since by another run, rows kept there?
                require_nothing_kept(reg, merged.keys)
    except BaseException:
        if opened and reg is not None:
            reg.close()
        raise
    return RunInput(reg=reg, table=table, source=source, notes=notes, wanted=wanted)


def require_nothing_kept(reg: Registry, keys: list[str]) -> None:
    """``TrainingError`` where the registry an append found missing (and so merged with no
    kept rows) was made meanwhile by another run and keeps rows of ``keys``: trained on the
    new rows alone, their new versions would drop that history from every later append."""
    from manymodels.exceptions import TrainingError

    kept = reg.store.latest_data(keys)
    if kept:
        raise TrainingError(
            f"registry at {reg.location} was made by another run while this append read its "
            f"rows, and keeps rows of {len(kept)} of its partition(s) (e.g. '{min(kept)}'): "
            "run the append again to build on them"
        )


@dataclass(frozen=True)
class Retrainable:
    """``would_retrain``'s answer: the keys the run would train, in order; how many of the
    selected keys it would leave out as unchanged; those the data holds no row of (as the
    run records them: ``count`` and the ``first`` ten), or None."""

    keys: list[str]
    unchanged: int
    not_in_data: dict[str, Any] | None


def would_retrain(
    spec: Spec,
    data: DataSource,
    reg: Registry,
    only: KeySelection | None,
    *,
    append: bool = False,
) -> Retrainable:
    """The partitions ``retrain --when …`` of ``only`` (the flagged keys; None: ``--when
    changed``, every partition of ``data``) would train, read and decided as the run decides
    them (``read_input``, ``run_plan.changed_keys``, with ``spec_edits`` as the retrain sets
    it: flagged keys only), recording nothing: its ``--dry-run``. Refused as the run is
    (``plan_run``'s checks: the registry's key columns, a store without its models — a
    misspelt ``--artifacts`` —, the target its champions predict), rather than listing keys
    a run then trains none of."""
    require_same_keys(reg, spec)
    check_training_store(reg)
    got = read_input(spec, data, reg, append=append, only=only, skip_absent=True)
    todo = got.table if got.wanted is None else got.table.select(got.wanted)
    last_seen = reg.store.latest_fingerprints([*todo.keys, FALLBACK_KEY])
    spec_edits = only is not None  # as cli.retrain passes it to the run
    changed, _, _ = changed_keys(reg, spec, got.table, todo, last_seen, spec_edits=spec_edits)
    challenged = reg.store.production_info(sorted(changed))  # the partitions it would train
    require_same_target(reg.location, spec, challenged)
    return Retrainable(sorted(changed), len(todo) - len(changed), got.notes.get("not_in_data"))
