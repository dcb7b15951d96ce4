"""Retraining from new rows only: a consumer posts this week's rows, not the whole history.

Every version keeps the input rows it was trained on in the artifact store (see
``manymodels.training.history``). Appending merges, for each partition in the new rows, its
newest version's rows — promoted or not: under a ``manual`` policy, or when a champion was kept,
rows posted earlier are in the newest version only — with the new ones; a new row replaces a
kept row of the same partition with the same time value (a correction) unless its target is
missing, and without a time column rows are simply added. The cost is one artifact read per
partition in the new rows, never a scan of the registry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from manymodels.appended_times import refuse_other_times
from manymodels.classes import ClassPrior
from manymodels.csvkeys import (
    data_keys_recorded,
    keys_as_recorded,
    literal_labels,
    padded_codes,
)
from manymodels.exceptions import DataError
from manymodels.feature_schema import FeatureSchema
from manymodels.key_spellings import registry_spelling
from manymodels.label_matching import KnownClasses
from manymodels.partition import FALLBACK_KEY, PartitionedTable, group_rows
from manymodels.registry.client import Registry
from manymodels.row_numbers import counted_row
from manymodels.signing import verify
from manymodels.spec import Spec
from manymodels.tables import DataSource, describe_source, in_table
from manymodels.training.history import KeptRows


@dataclass(frozen=True)
class Appended:
    """The rows to train on, the partitions they hold, and what was merged."""

    frame: pd.DataFrame
    keys: list[str]
    counts: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    """The columns the kept versions learnt as categories: a frame's ``category`` column of
    numbers is one, and its appended rows (plain values, or JSON) no longer say so."""
    learnt: FeatureSchema | None = None
    """One kept version's schema (or, for new partitions only, the fallback's:
    ``table_schema``): its table's classes and their rates (``learnt_prior``)."""


def with_training_rows(
    reg: Registry | None, spec: Spec, data: DataSource, new: pd.DataFrame
) -> Appended:
    """``data`` (``new``: its rows, checked by ``read_appended``) plus the newest version's
    training rows of every partition it holds. ``reg`` None: no registry there yet, made only
    once the rows are read and checked (an append to nothing trains on its new rows alone)."""
    name = describe_source(data)
    if reg is not None:
        new = keys_as_recorded(data, new, data_keys_recorded(reg, data, new))  # 007 stays text
        new = registry_spelling(reg, spec.partition_by, spec.name)(new)  # a CSV's 10:30:00 too
    labels = codes = None  # 'NA' or 'None' as a class label, '01' and '1': read as train does
    if spec.task == "classification" and not isinstance(data, pd.DataFrame):
        new, labels = literal_labels(Path(data), new, spec.target, source=name)
        codes = padded_codes(Path(data), new, [spec.target], source=name, labels=True)
    try:
        keys = group_rows(new, spec.partition_by).keys
    except DataError as e:  # an empty key cell: named in its file, as training names it
        raise in_table(e, name, data) from None
    if reg is None:
        return Appended(new, keys, _counts(keys), [w for w in (labels, codes) if w])
    latest = reg.store.latest_data(keys)
    learnt = next(
        (FeatureSchema.parse(json.loads(ref.feature_schema_json)) for ref in latest.values()),
        None,
    )  # one kept version's schema: every version of a spec learns the same columns
    _refuse_new_classes(new, learnt.classes if learnt else None, spec, name)
    # the class prior's source: a new partition's rows alone made one of its classes only
    prior_from = learnt or (table_schema(reg) if spec.task == "classification" else None)
    categorical = list(learnt.categorical) if learnt and spec.categorical is None else []
    warnings = [*(w for w in (labels, codes) if w), *_passed_over(reg, keys, latest)]
    kept: list[pd.DataFrame] = []
    last: tuple[str, KeptRows] | None = None  # the object read last: one held at a time
    without = 0
    for key in keys:
        ref = latest.get(key)
        if ref is None or ref.data_sha256 is None:
            without += 1  # a new partition, or versions trained before rows were kept
            continue
        # with a signing key, rows its signature does not vouch for are never read
        verify(
            reg.signer, ref.signature, key, ref.version, ref.artifact_sha256, ref.data_sha256,
            ref.feature_schema_json,
        )  # fmt: skip
        # a chunk's partitions share one object, and sorted keys meet them one after another
        if last is None or last[0] != ref.data_sha256:
            last = (ref.data_sha256, KeptRows(reg.artifacts.get(ref.data_sha256)))
        kept.append(last[1].of(key))
    if not kept:
        return Appended(new, keys, _counts(keys), warnings, categorical, prior_from)
    old = pd.concat(kept, ignore_index=True)
    lost = [c for c in old.columns if c not in new.columns]
    if lost and spec.features is None:  # every other column is a feature: none may vanish
        raise DataError(
            f"{name}: the new rows lack column(s) {', '.join(map(repr, lost))} that the kept "
            "rows hold, and the spec (without a features list) trains on every column: add "
            "them, or name the spec's features"
        )
    # features only: a classifier's labels keep their type, a key or time is checked below
    new = _bools_as_kept(new, old, {spec.target, spec.time_column, *spec.partition_by})
    if spec.bad_rows == "error":  # "drop" leaves such rows out of the merged table
        _refuse_text_among_numbers(new, old, spec, name)
    kept_times = old.get(spec.time_column) if spec.time_column else None
    if spec.time_column and kept_times is not None and kept_times.dtype.kind in "iufM":
        refuse_other_times(
            new[spec.time_column], spec.time_column,
            dates=pd.api.types.is_datetime64_any_dtype(kept_times),
            aware=getattr(kept_times.dtype, "tz", None) is not None, source=name,
        )  # fmt: skip
    new = _as_kept(
        new, old, [*spec.partition_by, *([spec.time_column] if spec.time_column else [])]
    )
    if spec.time_column:
        # a new row without a target corrects nothing: training leaves it out (or refuses
        # it), and the kept row it would have replaced held the period's real value
        numbers = _numeric_features(spec, old, new)  # a stray word there drops a row too
        known = new[has_target(new, spec, numbers)] if spec.target in new.columns else new
        old = _not_replaced(old, known, [*spec.partition_by, spec.time_column])
    merged = pd.concat([old.reindex(columns=new.columns), new], ignore_index=True)
    n = len(merged)
    if spec.time_column and spec.target in merged.columns:
        usable = has_target(merged, spec, numbers)
        if spec.missing_target == "error":
            # a row without a target fails its partition, as it does in any table; a stray
            # word's row beside its period's kept one is dropped as bad_rows = "drop" says
            # (kept, it was a second row of that period, which lags refuse)
            usable |= merged[spec.target].isna().to_numpy()
        merged = one_row_per_period(merged, [*spec.partition_by, spec.time_column], usable)
    counts = _counts(keys, len(keys) - without, len(old), ignored=n - len(merged))
    return Appended(merged, keys, counts, warnings, categorical, prior_from)


def _counts(keys: list[str], history: int = 0, kept: int = 0, ignored: int = 0) -> dict[str, int]:
    """What an append merged (the run's ``notes["append"]``), one way whether rows were kept
    or not; ``ignored`` rows (no target, corrected nothing) counted only when some were."""
    counts = {"partitions": len(keys), "with_history": history, "kept_rows": kept}
    return counts | ({"rows_without_target_ignored": ignored} if ignored else {})


def table_schema(reg: Registry) -> FeatureSchema | None:
    """The newest schema of the fallback (fitted on every partition's rows), or else of one
    partition: the table's classes and rates for an append whose keys are all new (a user
    who joined and always clicked), whose prior was made of their rows alone — one class,
    answered with probability 1. Three short queries, once per append."""
    keys = [FALLBACK_KEY, *(p.key for p in reg.store.list_partitions(limit=1))]
    newest = reg.store.latest_versions(keys)
    key = next((k for k in keys if k in newest), None)
    return None if key is None else reg.store.get_version(key, newest[key]).schema


def with_learnt_prior(table: PartitionedTable, learnt: FeatureSchema | None) -> PartitionedTable:
    """``table`` (rows of the partitions retrained, prepared) with the class prior a kept
    version learnt from its whole table (``learnt_prior``)."""
    prior = table.extra.get("class_prior")
    if prior is None:
        return table
    return replace(table, extra={**table.extra, "class_prior": learnt_prior(learnt, prior)})


def learnt_prior(learnt: FeatureSchema | None, table: ClassPrior) -> ClassPrior:
    """The class prior an append trains with: the table's classes and rates as the kept
    versions learnt them (``FeatureSchema.class_prior``), not ``table``'s — the rows of the
    partitions appended to. Those of a partition that held one class made a prior of that
    class alone: its new version answered it with probability 1, the table's other classes
    gone from its answers, its ``[decision]`` dropped, and it was promoted on a perfect score.
    A version recorded before the rates were (classes only) gets ``table``'s shares of the
    learnt classes blended half and half with equal shares, so no class is certain;
    ``table`` when nothing was learnt (new partitions only, a regressor's versions)."""
    if learnt is None or not learnt.classes or len(table.classes) == 0:
        return table
    classes = np.asarray(learnt.classes, dtype=table.classes.dtype)
    if not np.isin(table.classes, classes).all():  # a class refused earlier; never here
        return table
    recorded = learnt.class_prior or {}
    rates, strength = recorded.get("rates"), recorded.get("strength")
    if isinstance(rates, list) and len(rates) == len(classes):
        known = None if strength is None else float(strength)
        per = recorded.get("strengths")  # of 3+ classes, since per-class strengths
        each = tuple(float(s) for s in per) if isinstance(per, list) else None
        return ClassPrior(classes, np.asarray(rates, dtype=np.float64), known, each)
    share = np.array([table.rate(c) for c in classes.tolist()])  # half these rows' shares,
    return ClassPrior(classes, (share + 1 / len(classes)) / 2, None)  # half equal ones


def _refuse_new_classes(
    new: pd.DataFrame, classes: Sequence[Any] | None, spec: Spec, name: str
) -> None:
    """A classifier's new label that none of the kept versions' ``classes`` is (a typo:
    ``Yes`` beside ``yes``), named in its file and row. Every version answers with the
    table's classes; appended, one such row made that partition a model of one more class
    than every other partition's, trained on that one row, which its champion could not
    know. A new class is a whole table's to add."""
    if spec.task != "classification" or spec.target not in new.columns or not classes:
        return
    values = new[spec.target]
    known = KnownClasses(classes)
    for label in values.dropna().unique():
        why = known.refusal(label)
        if why is not None:
            row = int(np.flatnonzero((values == label).to_numpy())[0])
            raise DataError(
                f"{name}: target '{spec.target}' is {label!r} in {counted_row(row + 1)}, {why} "
                f"the kept versions know ({known.shown}): correct the label, or train the whole "
                "table again to add a class"
            )


def _refuse_text_among_numbers(new: pd.DataFrame, old: pd.DataFrame, spec: Spec, name: str) -> None:
    """A new row's text where the kept rows hold numbers, named in the new rows' own file and
    row: checked on the merged table, the error named ``<DataFrame>`` and a row counted
    after every kept row (row 61 of a file of one row)."""
    skip = {*spec.partition_by, *([spec.time_column] if spec.time_column else [])}
    if spec.task == "classification":  # labels may be words beside numbers
        skip.add(spec.target)
    for col in old.columns:
        if col in skip or col not in new.columns or not _is_text(new[col]):
            continue
        if spec.features is not None and col not in spec.features and col != spec.target:
            continue
        if not (pd.api.types.is_numeric_dtype(old[col]) or pd.api.types.is_bool_dtype(old[col])):
            continue
        values = new[col]
        bad = (values.notna() & pd.to_numeric(values, errors="coerce").isna()).to_numpy()
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            if col in (spec.categorical or ()):  # a category the kept rows write as a number
                raise DataError(
                    f"{name}: categorical '{col}' is written as numbers in the kept rows, and "
                    f"as words in {int(bad.sum())} new row(s), the first "
                    f"{values.iloc[first]!r} in {counted_row(first + 1)}: one column cannot mix "
                    "them (write the new rows' values as the kept ones are, or train again "
                    "from a table that writes them one way)"
                )
            role = "target" if col == spec.target else "feature"
            raise DataError(
                f"{name}: {role} '{col}' holds numbers in the kept rows, and {int(bad.sum())} "
                f"new value(s) are not, the first {values.iloc[first]!r} in "
                f'{counted_row(first + 1)}: fix or remove those rows (bad_rows = "drop" in '
                "the spec leaves them out)"
            )


def _is_text(values: pd.Series) -> bool:
    return values.dtype == object or pd.api.types.is_string_dtype(values)


def _passed_over(reg: Registry, keys: Sequence[str], latest: Mapping[str, Any]) -> list[str]:
    """Warnings naming the partitions whose newest version kept no training rows (imported
    from MLflow, or rows Arrow could not store): the new rows are appended to an older
    version's rows — those the newest was trained on, if other, are not among them — or,
    where no version kept any (``gc`` pruned it), the partition trains on the new rows alone."""
    newest = reg.store.latest_versions(keys)
    older = sorted((k, latest[k].version, v) for k, v in newest.items()
                   if k in latest and v != latest[k].version)  # fmt: skip
    alone = sorted((k, v) for k, v in newest.items() if k not in latest)
    out = []
    if older:
        key, kept, last = older[0]
        out.append(
            f"{len(older)} partition(s) append to an older version's training rows, their "
            f"newest keeping none (e.g. '{key}': v{last} kept none, so v{kept}'s rows are built "
            "on): rows that only the newer version was trained on are not among them"
        )
    if alone:
        key, last = alone[0]
        out.append(
            f"{len(alone)} partition(s) have versions but none that kept its training rows "
            f"(e.g. '{key}', newest v{last}): they train on the new rows alone"
        )
    return out


def _bools_as_kept(new: pd.DataFrame, old: pd.DataFrame, roles: set[Any]) -> pd.DataFrame:
    """The new rows' true/false columns (``bool``, pandas ``boolean``) as numbers where the
    kept rows hold that column as numbers, as training keeps a ``boolean`` feature (0.0/1.0).
    Concatenated as they were, the column became objects, floats beside bools, which training
    read as text ("holds numbers in 100% of its rows and text in the rest": one-hot encoded),
    and every later score of the feature, as numbers or booleans, was refused ("feature 'deal'
    must be text, as the model was trained on"). Likewise 0/1 numbers posted for a column
    kept as true/false: as ``bool``."""
    cast = {}
    for col in new.columns:
        kind = new[col].dtype.kind
        if kind == "b" and col not in roles and col in old.columns and old[col].dtype.kind in "iuf":
            values = new[col].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
            cast[col] = values.astype(old[col].dtype) if old[col].dtype.kind == "f" else values
        elif (
            kind in "iuf" and col not in roles and col in old.columns and _flags(new[col], old[col])
        ):
            cast[col] = new[col].astype(bool)  # kept as true/false, posted as 0/1: objects
    return new.assign(**cast) if cast else new


def _flags(posted: pd.Series, kept: pd.Series) -> bool:
    """Whether ``posted`` numbers are all 0 or 1 for a column ``kept`` as true/false."""
    return kept.dtype.kind == "b" and bool(posted.notna().all() and posted.isin([0, 1]).all())


def _as_kept(new: pd.DataFrame, old: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The new rows' key and time columns in the kept rows' types (a key kept as text ``"7"``
    and read from a CSV as the number 7 is the same partition)."""
    cast = {}
    for col in columns:
        if new[col].dtype != old[col].dtype:
            text = pd.api.types.is_string_dtype(old[col]) or old[col].dtype == object
            try:
                cast[col] = new[col].astype(str) if text else new[col].astype(old[col].dtype)
            except (TypeError, ValueError):
                continue  # left as it is: _not_replaced names the mismatch
            if old[col].dtype.kind not in "iu" or new[col].dtype.kind != "f":
                continue
            cut = ((new[col] != cast[col]) & new[col].notna()).to_numpy()
            if cut.any():  # 5.5 would have become 5
                first = new[col].to_numpy()[cut][0]
                first = first.item() if isinstance(first, np.generic) else first
                raise DataError(
                    f"the new rows' '{col}' holds {first!r}, not a whole number as the kept "
                    f"rows' '{col}' values are"
                )
    return new.assign(**cast) if cast else new


def has_target(frame: pd.DataFrame, spec: Spec, numbers: Sequence[str] = ()) -> np.ndarray:
    """Which rows hold a target training would use: for regression a number (a stray word in
    a CSV's target cell is dropped as a bad row, ``bad_rows = "drop"``, and must not replace a
    kept row's real value first), for classification any label — and, with ``bad_rows =
    "drop"``, no stray word in the feature columns of ``numbers`` either (such a row is
    dropped too: it replaced its period's kept row, whose real values were then gone)."""
    values = frame[spec.target]
    if spec.task == "regression" and spec.bad_rows == "drop" and values.dtype.kind not in "fiub":
        values = pd.to_numeric(values, errors="coerce")  # with "error", training refuses it
    has = values.notna().to_numpy().copy()
    for name in numbers if spec.bad_rows == "drop" else ():
        column = frame[name]
        if column.dtype.kind not in "fiub":
            stray = column.notna() & pd.to_numeric(column, errors="coerce").isna()
            has &= ~stray.to_numpy()
    return has


def _numeric_features(spec: Spec, old: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    """The feature columns the kept rows hold as numbers (where a new row's word is stray)."""
    roles = {*spec.partition_by, spec.target, spec.time_column}
    named = spec.features or [c for c in new.columns if c not in roles]
    declared = set(spec.categorical or [])
    return [
        c for c in named
        if c in new.columns and c in old.columns and c not in declared
        and old[c].dtype.kind in "fiub"
    ]  # fmt: skip


def one_row_per_period(frame: pd.DataFrame, on: list[str], has: np.ndarray) -> pd.DataFrame:
    """``frame`` without the rows that have no target (``has`` false) and share their key
    values and time with another row: the row with a target is the period's (or, where none
    has one, the first). A new row without a target beside a kept one corrects nothing, and
    kept rows appended before this rule may hold both; left in, they would be two rows of one
    period, which training refuses where lags read the rows in order."""
    missing = ~has
    if not missing.any():
        return frame
    shared = frame.duplicated(on, keep=False).to_numpy()
    if not (shared & missing).any():
        return frame
    order = np.argsort(missing, kind="stable")  # by position: an index may repeat labels
    first = np.empty(len(frame), dtype=bool)
    first[order] = ~frame.iloc[order].duplicated(on, keep="first").to_numpy()
    return frame[~(missing & shared & ~first)]


def _not_replaced(old: pd.DataFrame, new: pd.DataFrame, on: list[str]) -> pd.DataFrame:
    """The kept rows that no new row replaces (same key values and time)."""
    try:
        replaced = pd.MultiIndex.from_frame(old[on]).isin(pd.MultiIndex.from_frame(new[on]))
    except (TypeError, ValueError) as e:  # key or time values of another type than before
        raise DataError(
            f"the new rows' {', '.join(on)} cannot be matched with the kept rows' ({e})"
        ) from None
    return old[~replaced]
