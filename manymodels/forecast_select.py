"""Which versions a forecast runs, all checked before any model loads, holding a chunk of them.

A version's record carries its feature schema — its monitoring profile, history and interval
widths, ~15 KB each — so holding every partition's while forecasting them grew the forecast
by ~16 KB a partition (330 MB at 20,000 partitions, 1.6 GB at 100,000). ``select`` reads the
records ``CHUNK`` at a time and keeps of each only what the whole forecast needs (its key and
version, and what the checks found: a version missing, unforecastable, of another key or time
layout, without a level asked for); the forecast then reads them again a chunk at a time
(``Selection.chunks``). The second read costs ~0.2 ms a partition, a tenth of a model's load;
a forecast of at most ``CHUNK`` partitions, whose records ``select`` held all at once anyway,
keeps them for its one chunk instead (~0.3 ms a partition of decoding, and the collections
its objects set off: the one spec's forecast on us_employment read 147 records twice).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from manymodels import intervals as conformal
from manymodels.champion_targets import require_one_target
from manymodels.exceptions import (
    AliasNotFound,
    DataError,
    PartitionNotFound,
    RegistryError,
    VersionNotFound,
)
from manymodels.feature_schema import FeatureSchema
from manymodels.features import feature_kinds
from manymodels.forecast_formats import key_kind, label_dtype, on_midnights, second_digits
from manymodels.key_lists import MAX_LISTED_KEYS, listed
from manymodels.key_selection import KeySelection, key_list
from manymodels.labels import threshold_classes
from manymodels.partition import FALLBACK_KEY
from manymodels.registry.client import Registry
from manymodels.registry.engine import batches
from manymodels.registry.entities import ModelVersion
from manymodels.trained_keys import trained_spellings

PRODUCTION = "production"
CHUNK = 1000
"""Partitions whose version records a forecast holds at once."""


@dataclass
class Selection:
    """The checked versions of a forecast, by key, and what its output is made of."""

    alias: str
    pairs: list[tuple[str, int]]  # (key, version), sorted by key
    key_columns: list[str]
    time_column: str
    levels: list[float]
    schemas: list[FeatureSchema]  # the first version's, then one of each other feature set
    decides: bool = False  # a version has a [decision], or a threshold was asked: every
    # chunk has its label columns
    label_dtype: str = "object"  # their labels' type, in every chunk (``label_dtype``)
    second_digits: int = 0  # of any step's time: a CSV writes every chunk's with as many
    dates_only: bool = False  # every step's time is a midnight: a CSV writes dates alone
    classes: list[str] | None = None  # with probabilities asked: every version's table's classes
    known: Mapping[str, int] = field(default_factory=dict)  # keys at ``alias`` as read: all
    threshold: float | None = None  # labels at it, not each version's own ([decision])
    whole: bool = True  # ``known`` is every key at ``alias`` (no keys named), not those named
    left_out: list[str] = field(default_factory=list)  # keys of a whole forecast without a
    # time column (an MLflow import, another spec's): not forecast, named in its summary
    version: int | None = None  # every key's version by number (``version=``), not ``alias``
    mixed_keys: str | None = None  # a key column of numbers for some partitions and text for
    # others (two specs' partitions): what to say where a column holds one type (Parquet)
    without_alias: int = 0  # partitions of a whole forecast with no version at ``alias`` (a
    # candidate only some partitions have): not forecast, counted in its summary
    without_keys: list[str] = field(default_factory=list)  # the first few of those, by key
    held: list[ModelVersion] | None = None  # the records of ``pairs`` when they are one chunk,
    # as ``select`` read them: the first ``chunks`` yields them rather than reading them again

    def known_of(self, reg: Registry, keys: Sequence[str]) -> Mapping[str, int]:
        """Those of ``keys`` at ``alias`` (a future table's): from the table already read when
        the forecast is of every partition, else from the rows of ``keys`` alone."""
        if self.version is not None:  # the partitions forecast, and those in production
            return {**reg.store.alias_versions(keys, PRODUCTION), **self.known}
        return self.known if self.whole else reg.store.alias_versions(keys, self.alias)

    def chunks(self, reg: Registry) -> Iterator[list[ModelVersion]]:
        """The version records, ``CHUNK`` at a time in key order (each chunk sorted by key)."""
        held, self.held = self.held, None  # yielded once; not kept for the forecast's length
        if held is not None:
            yield held
            return
        for chunk in batches(self.pairs, CHUNK):
            records, missing = _read(reg, chunk)
            if missing:  # deleted since ``select`` read it (a gc meanwhile)
                _refuse_missing(missing, self.alias)
            yield records


def select(
    reg: Registry,
    keys: KeySelection | None,
    alias: str,
    levels: Sequence[float] | None,
    threshold: float | None = None,
    *,
    probabilities: bool = False,
    version: int | None = None,
) -> Selection:
    """The versions ``alias`` points at, sorted by key, each checked — as a whole forecast
    checks them: the first problem of all of them is raised, in the order missing version,
    unforecastable, mixed key or time columns, level not recorded, not a binary classifier
    for a ``threshold`` (``labels.threshold_classes``, the router's check). ``probabilities``:
    the union of the versions' classes too, known before the first chunk so that every chunk
    has the same ``proba-<class>`` columns; a regression version is refused (a ``DataError``).

    A forecast of every partition (no ``keys``) leaves out, in ``left_out``, the versions
    without a time column — an MLflow import, a spec without one — rather than refusing them
    all: one imported partition refused the forecast of the other 100,000. Named ones are
    refused, and so is a forecast that would leave nothing.

    ``version``: that version of each partition named (the router's ``?version=``), not the
    alias's; a version is a partition's own number, so it needs ``keys``, and a partition
    without it is a ``VersionNotFound``."""
    asked = None if keys is None else key_list(keys, columns=reg.partition_by)
    if version is not None:
        table = _numbered_rows(reg, asked, version)
    elif asked is None:
        table = reg.store.alias_table(alias)
    else:  # naming k partitions reads their k rows (and their other trained forms'), not all
        table = _named_rows(reg, asked, alias)
    wanted = _wanted(reg, asked, alias, table)
    pairs = [(k, table[k]) for k in wanted]
    missing: list[tuple[str, int]] = []
    problems: list[tuple[str, str]] = []
    layouts: dict[tuple[tuple[str, ...], str | None], None] = {}
    level_error: DataError | None = None
    recorded: set[float] = set()
    schemas: dict[Any, FeatureSchema] = {}
    decides = threshold is not None
    not_binary: DataError | None = None
    label_type = "object"
    digits = 0
    dates = True
    classes: dict[str, None] = {}
    left_out: list[str] = []
    key_kinds: dict[tuple[str, str], str] = {}  # (column, number or text) → a key with it
    targets: dict[str | None, list[tuple[str, int]]] = {}  # each → its (key, version)s
    records: list[ModelVersion] = []
    for chunk in batches(pairs, CHUNK):
        records, gone = _read(reg, chunk)
        missing += gone
        good = []
        for r in records:
            why = unforecastable(r.schema)
            if why is None and probabilities and not r.schema.classifies:
                why = NO_PROBABILITIES
            if why == NO_TIME_COLUMN and asked is None:
                left_out.append(r.key)
            elif why:
                problems.append((r.key, why))
            else:
                good.append(r)
        for r in good:
            targets.setdefault(r.schema.target, []).append((r.key, r.version))
            for column, value in (r.schema.history.key if r.schema.history else {}).items():
                key_kinds.setdefault((column, key_kind(value)), r.key)
            layouts[tuple(r.schema.partition_by), r.schema.time_column] = None
            schemas.setdefault(_feature_set(r.schema), r.schema)
            decides = decides or bool(r.schema.decision)
            if (r.schema.decision or threshold is not None) and label_type == "object":
                label_type = label_dtype(r.schema.classes)
            if threshold is not None and not_binary is None:
                try:
                    threshold_classes(r.schema, f"partition '{r.key}' v{r.version}")
                except DataError as e:  # the first such version, in key order
                    not_binary = e
            digits = max(digits, second_digits(r.schema))
            dates = dates and on_midnights(r.schema)
            if probabilities:
                classes.update(dict.fromkeys(str(c) for c in r.schema.classes or ()))
        named = [(f"partition '{r.key}' v{r.version}", r.schema) for r in good]
        if levels is None:
            recorded.update(conformal.choose_levels(named, None))
        elif level_error is None:
            try:
                conformal.choose_levels(named, levels)
            except DataError as e:  # the first version without a level, in key order
                level_error = e
    if missing:
        _refuse_missing(missing, alias)
    if left_out and len(left_out) == len(pairs):  # nothing would be forecast
        problems = [(k, NO_TIME_COLUMN) for k in left_out]
    elif left_out:
        skipped = set(left_out)
        pairs = [p for p in pairs if p[0] not in skipped]
    if problems:
        reason = problems[0][1]
        same = [k for k, why in problems if why == reason]
        raise DataError(f"cannot forecast partition(s) {listed(same)}: {reason}")
    if len(layouts) > 1:
        raise DataError(
            "the partitions come from specs with different key or time columns; forecast "
            "them separately (keys=…, --partitions)"
        )
    # one prediction column, one quantity: a killed or skipping --new-target run's leftovers
    require_one_target("forecast", alias, targets, reg.store.version_specs, of="these partitions")
    if level_error is not None:
        raise level_error
    if not_binary is not None:
        raise not_binary
    (columns, time_column), *_ = layouts
    chosen = sorted(recorded) if levels is None else list(levels)
    return Selection(
        alias, pairs, list(columns), str(time_column), chosen, list(schemas.values()), decides,
        label_type, digits, dates and bool(pairs), list(classes) if probabilities else None,
        table, threshold, asked is None, left_out, version, _mixed(key_kinds),
        *_without_alias(reg, asked, version, wanted, alias),
        records if 0 < len(pairs) <= CHUNK and not left_out else None,  # one chunk, all of it
    )  # fmt: skip


SHOWN_WITHOUT = 3  # keys a forecast's summary names of those without its alias


def _without_alias(
    reg: Registry, asked: Sequence[Any] | None, version: int | None, wanted: Sequence[str],
    alias: str,
) -> tuple[int, list[str]]:  # fmt: skip
    """How many partitions a forecast of every partition leaves out for having no version at
    its alias (a candidate that 2 of 2,000 have; a retired key), and the first few by key: one
    count beside the alias table read, and one ``LIMIT``ed anti-join only when some lack it."""
    if asked is not None or version is not None:  # named partitions without it are refused
        return 0, []
    count = max(0, reg.store.count_partitions(but=FALLBACK_KEY) - len(wanted))
    if not count:
        return 0, []
    return count, reg.store.keys_without(alias, but=FALLBACK_KEY, limit=SHOWN_WITHOUT)


NO_TIME_COLUMN = "trained from a spec without a time_column (only time series can be forecast)"
NO_PROBABILITIES = (
    "a regression model: class probabilities need a classifier (leave out --probabilities)"
)


def _named_rows(
    reg: Registry, keys: Sequence[str | Mapping[str, Any]], alias: str
) -> dict[str, int]:
    """``{key: version}`` at ``alias`` of the keys named, each in its canonical form or, when
    absent so, the forms training may have written it in (``trained_keys.trained_spellings``: two
    batched reads of O(len(keys)) rows): what ``Registry.key`` then finds each one's
    partition among."""
    canonical = (reg.key(k, as_trained=False) for k in keys)
    return trained_spellings(canonical, partial(reg.store.alias_versions, alias=alias))[1]


def _mixed(kinds: Mapping[tuple[str, str], str]) -> str | None:
    """Which key column holds values of two kinds, with a partition of each: the forecast
    keeps each partition's (the number 0 beside the text '005'), a Parquet column cannot."""
    seen: dict[str, tuple[str, str]] = {}
    for (column, kind), key in kinds.items():
        if column in seen and seen[column][0] != kind:
            (other, first) = seen[column]
            return (
                f"key column '{column}' holds {other} for some partitions ('{first}') and "
                f"{kind} for others ('{key}')"
            )
        seen.setdefault(column, (kind, key))
    return None


def _numbered_rows(
    reg: Registry, keys: Sequence[str | Mapping[str, Any]] | None, version: int
) -> dict[str, int]:
    """``{key: version}`` of the keys named, each checked to have that version (read a chunk
    at a time: a record carries its ~15 KB schema)."""
    if keys is None:
        raise DataError(
            f"version {version} is a version of a partition: name the partitions to forecast "
            "with it (keys=…, --partitions), or forecast every partition at an alias"
        )
    wanted = sorted({reg.key(k) for k in keys})
    if FALLBACK_KEY in wanted:
        raise DataError(f"the fallback model ({FALLBACK_KEY}) is not forecast")
    absent: list[str] = []
    for chunk in batches([(k, version) for k in wanted], CHUNK):
        absent += [k for k, _ in _read(reg, chunk)[1]]
    if absent:
        unknown = [k for k in absent if not reg.store.has_partition(k)]
        if unknown:
            raise PartitionNotFound(f"no partition(s) {listed(unknown)} in the registry")
        raise VersionNotFound(f"partition(s) {listed(absent)} have no version {version}")
    return dict.fromkeys(wanted, version)


def _wanted(
    reg: Registry,
    keys: Sequence[str | Mapping[str, Any]] | None,
    alias: str,
    table: Mapping[str, int],
) -> list[str]:
    """The keys to forecast, sorted: ``keys`` (each with the alias), or every key but the
    fallback's."""
    if keys is None:
        wanted = sorted(k for k in table if k != FALLBACK_KEY)
        if not wanted:
            _refuse_empty(reg, alias)
        return wanted
    wanted = sorted({reg.key(k, known=table) for k in keys})
    if not wanted:  # nothing to forecast, and no key or time columns to say it with
        raise DataError("keys is empty: name at least one partition, or leave keys out")
    if FALLBACK_KEY in wanted:
        raise DataError(f"the fallback model ({FALLBACK_KEY}) is not forecast")
    unknown = [k for k in wanted if k not in table]
    if unknown:
        raise PartitionNotFound(
            f"no {_named(alias)} model for partition(s) {listed(unknown)}"
            + _never_trained(reg, unknown)
        )
    return wanted


def _never_trained(reg: Registry, unknown: Sequence[str]) -> str:
    """Why the keys listed of ``unknown`` that the registry holds no version of have no model:
    the sample table given as ``keys`` (``mm.forecast(reg, df)``) names two stores too small
    to train, and the refusal read as if a model had gone missing. One query per key listed,
    on the error path only."""
    never = [k for k in unknown[:MAX_LISTED_KEYS] if not reg.store.has_partition(k)]
    if not never:
        return ""
    which = "" if len(never) == len(unknown) else f" for {listed(never)}"
    return (
        f": no version in the registry{which} (a key the data never held, or a partition "
        "of fewer than min_rows rows, which training skips and the fallback model scores); "
        "name no partition (keys=, --partitions) to forecast every one that has a model"
    )


def _read(
    reg: Registry, pairs: Sequence[tuple[str, int]]
) -> tuple[list[ModelVersion], list[tuple[str, int]]]:
    """The records of ``pairs`` sorted by key, and the pairs without one."""
    records = reg.store.get_versions(pairs)
    found = {r.key for r in records}
    records.sort(key=lambda r: r.key)
    return records, [p for p in pairs if p[0] not in found]


def _feature_set(schema: FeatureSchema) -> Any:
    """What ``future_rows.future_table`` reads of a version: its features' kinds and the
    exogenous ones its forecast fills (versions of one spec share it)."""
    plan = schema.forecast
    return tuple(feature_kinds(schema)), tuple(plan.exogenous if plan is not None else ())


def _named(alias: str) -> str:
    return "production" if alias == PRODUCTION else f"'{alias}'"


def _refuse_missing(missing: Sequence[tuple[str, int]], alias: str) -> None:
    """The alias points at a version that no longer exists (gc, or a race with it)."""
    named = _named(alias)
    shown = listed([f"{k} v{v}" for k, v in missing])
    raise RegistryError(
        f"the {named} version of partition(s) {shown} is missing from the registry; "
        + (
            "promote an existing version"
            if alias == PRODUCTION
            else f"retrain, or point {named} at an existing version (Registry.set_alias)"
        )
    )


def _refuse_empty(reg: Registry, alias: str) -> None:
    """No partition at ``alias``: an ``AliasNotFound`` (a bad name, as ``score`` says of it)
    for an alias of the user's, a ``RegistryError`` when nothing is in production yet."""
    if alias == PRODUCTION:
        raise RegistryError(f"the registry at {reg.location} has no partitions in production")
    raise AliasNotFound(
        f"the registry at {reg.location} has no partitions with the alias '{alias}': check "
        "the alias name"
    )


def unforecastable(schema: FeatureSchema) -> str | None:
    """Why a version's feature schema cannot be forecast, or ``None`` when it can."""
    if not schema.time_column:
        return NO_TIME_COLUMN
    if schema.forecast is None or schema.history is None:
        return "trained before versions recorded their history; retrain to forecast"
    if schema.forecast.frequency is None:
        return "the time step is unknown (no partition had two distinct times when trained)"
    return None
