"""Reading a table and checking it against a spec before any work starts.

Everything that can be known about the whole table (a missing column, a text target for a
regression, unparseable dates) is a ``DataError`` here, naming the source and the column. What
can only go wrong inside one partition (all-NaN target, a single class) is left to training,
where it becomes that partition's failure and nothing else's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from manymodels import changes, frequencies, timefeatures
from manymodels.argument_order import index_hint
from manymodels.cell_kinds import checked_cells, numbers_of
from manymodels.classes import class_prior
from manymodels.csvkeys import keys_as_recorded, literal_labels, padded_codes
from manymodels.exceptions import DataError
from manymodels.features import refuse_complex
from manymodels.label_checks import refuse_unlabelled
from manymodels.lag_gaps import lag_gaps
from manymodels.lagfeatures import LagPlan, fit_transforms, table_features
from manymodels.off_calendar import off_calendar
from manymodels.partition import PartitionedTable, refuse_long_keys, split
from manymodels.spec import Spec
from manymodels.stray_values import (
    BAD_ROW,
    MOSTLY_TEXT_WARNING,
    check_not_stray_text,
    drop_bad_rows,
    is_numeric,
    leave_out_bad_rows,
    numbers_as_floats,
    numeric_share,
    refuse_boolean_target,
    refuse_text_target,
)
from manymodels.tables import (  # noqa: F401 (re-exported: callers imported them from here)
    DataSource,
    column_hint,
    describe_source,
    in_table,
    output_format,
    plain,
    read_table,
    refuse_repeated_columns,
    write_table,
)
from manymodels.timecolumn import parse_time
from manymodels.weekdays import rows_on_holidays, unused_holidays
from manymodels.written_columns import reserved


@dataclass(frozen=True)
class Columns:
    """The resolved column roles of one table under one spec, and what a person should know
    about them (``warnings``)."""

    features: list[str]
    categorical: list[str]
    warnings: list[str] = field(default_factory=list)


_UNNAMED = re.compile(r"Unnamed: \d+")
"""pandas' name for a CSV column whose header cell is empty."""


def resolve_columns(
    df: pd.DataFrame, spec: Spec, *, source: str, categories: Sequence[str] = ()
) -> Columns:
    """Check the table has what the spec needs; decide features and categorical columns.
    ``categories``: columns a DataFrame gave as pandas ``category``, categorical by default
    as text is (their values are plain by now: ``plain``)."""
    refuse_missing_columns(df, spec, source=source)
    roles = {*spec.partition_by, spec.target, spec.time_column}
    features = spec.features or [c for c in df.columns if c not in roles]
    unnamed: list[str] = []
    if spec.features is None:
        # a CSV written with its row labels (pandas' ``to_csv`` by default, R's ``write.csv``)
        # has a first column with no name, which pandas names 'Unnamed: 0': taken as one of
        # "all other columns", the rows' positions were trained on as a feature, and every
        # table scored later had to hold that column. A stored spec too: the router's retrain
        # of such an upload trained a candidate on them (its champion, trained without them,
        # "could not be evaluated")
        unnamed = [str(c) for c in features if _UNNAMED.fullmatch(str(c))]
        features = [c for c in features if str(c) not in unnamed]
    # the table's other columns (the spec's own are checked); a stored spec's retrain reads
    # the columns it trained on (``Spec._stored``)
    if spec.features is None and not spec.stored:
        for col in features:
            why = reserved(str(col))
            if why is not None:
                raise DataError(
                    f"{source}: column '{col}' is {why}: rename it, or list the spec's "
                    "features without it"
                )
    if not features and not spec.derived_columns:
        raise DataError(
            f"{source}: no feature columns left after keys, target and time (calendar, lags "
            "or rolling in the spec would derive some)"
        )

    text = [c for c in features if not is_numeric(df[c])]
    declared = set(spec.categorical or [])
    for col in text:
        if col not in declared:
            check_not_stray_text(df[col], col, role="feature", source=source)
    warnings = [
        f"column '{c}' has no name in the header (row labels written with the table, as "
        "pandas' to_csv and R's write.csv write them?): not used as a feature; list it in "
        "'features' to use it"
        for c in unnamed
    ]
    if spec.categorical is None:
        categorical = [*text, *(c for c in features if c in categories and c not in text)]
        for col in text:
            share = numeric_share(df[col])
            if share >= MOSTLY_TEXT_WARNING:
                warnings.append(
                    f"feature '{col}' holds numbers in {share:.0%} of its rows and text in the "
                    "rest: it is one-hot encoded as text; list it in 'categorical' if that is "
                    "meant, or fix its values"
                )
    else:
        categorical = list(spec.categorical)
        undeclared = [c for c in text if c not in categorical]
        if undeclared:
            raise DataError(
                f"{source}: feature column(s) {', '.join(map(repr, undeclared))} hold text; "
                "list them in 'categorical' or drop them from 'features'"
            )
    for col in features:
        refuse_complex(df[col], str(col), source=source)
        if ptypes.is_datetime64_any_dtype(df[col]):
            raise DataError(
                f"{source}: feature '{col}' is a datetime; name it as time_column instead"
            )
    if spec.task == "regression":
        refuse_complex(df[spec.target], spec.target, source=source, role="target")
        refuse_boolean_target(df[spec.target], spec.target, source=source)
    if spec.task == "regression" and not is_numeric(df[spec.target]):
        if len(df) and df[spec.target].isna().all():  # JSON nulls: no numbers, no dtype either
            raise DataError(
                f"{source}: target '{spec.target}' is missing in every one of the {len(df)} row(s)"
            )
        check_not_stray_text(df[spec.target], spec.target, role="target", source=source)
        refuse_text_target(df[spec.target], spec.target, source=source)
        raise DataError(
            f"{source}: target '{spec.target}' must be numeric for a regression "
            f"(found dtype {df[spec.target].dtype})"
        )
    return Columns(features=list(features), categorical=categorical, warnings=warnings)


def refuse_missing_columns(df: pd.DataFrame, spec: Spec, *, source: str) -> None:
    """``DataError`` naming the columns the spec names (keys, target, features, time…) that
    ``df`` lacks: asked of any table, and of an append's new rows alone before the registry
    is opened, as the merged table holds their columns only."""
    # a column in two roles (a categorical feature, a feature with changes) is named once
    missing = [c for c in dict.fromkeys(_named_columns(spec)) if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(repr(c) for c in missing)} required by "
            f"spec '{spec.name}' (table has: {', '.join(map(str, df.columns))})"
            + (column_hint(missing, df.columns) or index_hint(missing, df))
        )


def _read_by_role(df: pd.DataFrame, spec: Spec) -> list[Any]:
    """Every column the spec reads from ``df``: its keys, target, time, named columns, and
    (without ``features``) every other column as a feature."""
    return [*_named_columns(spec), *([] if spec.features else df.columns)]


def _named_columns(spec: Spec) -> list[str]:
    """The columns the spec names, in every role: each must be in the table."""
    named = [*spec.partition_by, spec.target, *(spec.features or []), *(spec.categorical or [])]
    return [*named, *(spec.changes or []), *([spec.time_column] if spec.time_column else [])]


def checked(
    df: pd.DataFrame, spec: Spec, *, source: str, categories: Sequence[str] = ()
) -> tuple[pd.DataFrame, Columns, list[str], dict[str, int]]:
    """The checks every table's rows pass before they are split, in memory or one batch of a
    Parquet directory at a time (``manymodels.datasets``): bad rows dropped (``bad_rows =
    "drop"``; how many per column), column roles resolved, the time column parsed and the
    calendar parts added. Returns the rows, their columns, the features (calendar parts
    included) and the dropped counts; errors name ``source``."""
    refuse_repeated_columns(df, source, _read_by_role(df, spec))
    numbers = [c for c in numbers_of(df, spec) if c not in categories]  # an append's learnt
    read, keys = _read_by_role(df, spec), spec.partition_by
    df, kinds = checked_cells(df, read, numbers, source=source, keys=keys)
    bad_rows: dict[str, int] = {}
    kept_bad = None
    if spec.bad_rows == "drop":
        df, bad_rows = drop_bad_rows(df, spec, source=source)
        if bad_rows:  # rows left out or cells emptied: their columns' kinds are looked at anew
            kinds = {}
        if BAD_ROW in df.columns:  # rows kept in place for the lags (``drop_bad_rows``)
            kept_bad = df.pop(BAD_ROW).to_numpy(dtype=bool)
    df = numbers_as_floats(df, spec, source=source, categories=categories, kinds=kinds)
    cols = resolve_columns(df, spec, source=source, categories=categories)
    if spec.task == "classification":
        refuse_unlabelled(df[spec.target], source=source)
    features = cols.features
    if spec.time_column:
        df = parse_time(df, spec.time_column, source=source)
        _check_derived(df, spec, source=source)
        if spec.calendar:
            df = add_calendar(df, spec, source=source)
            features = [*features, *spec.calendar_columns]
    if kept_bad is not None and len(kept_bad) == len(df):
        df.attrs[BAD_ROW] = kept_bad  # row-aligned with ``df``: ``prepare`` leaves them out
    return df, cols, features, bad_rows


def prepare(
    spec: Spec,
    source: DataSource,
    *,
    name: str | None = None,
    categorical: Sequence[str] = (),
    recorded: Callable[[pd.DataFrame], Mapping[str, Any]] | None = None,
    spelt: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> tuple[PartitionedTable, pd.DataFrame]:
    """Read, check and split: the one entry point training uses. Returns the table too, for the
    fallback model and the run's record.

    With a time column, the table's frequency goes into ``table.extra``; the spec's calendar
    parts become feature columns before the split, its target lags after it (see
    ``manymodels.timefeatures``). ``name`` is what errors call the rows (an append's merged
    frame: its file), ``describe_source`` by default. ``categorical``: columns categorical by
    default beside text and a DataFrame's ``category`` columns (an append's: those its kept
    version learnt as categories, whose rows no longer say so). ``recorded``: the key values,
    in the registry trained into, of the partitions the table read names
    (``csvkeys.recorded_key``): a CSV's key column that they hold as text is read as text
    (codes such as ``007`` stay the registry's). ``spelt``: the table with its keys written
    as the registry trained into spells them (``key_spellings.registry_spelling``: a CSV's
    ``2024-01-05 10:30:00`` for a DataFrame's ``2024-01-05T10:30:00``, and the other way)."""
    name = name or describe_source(source)
    df = read_table(source)
    if recorded is not None and not isinstance(source, pd.DataFrame):
        df = keys_as_recorded(source, df, recorded(df))
    if spelt is not None:
        df = spelt(df)
    if df.empty:  # before the column checks: a header alone has columns of no type at all
        raise DataError(f"{name}: the table has no rows (only a header?)")
    padded = labels = codes = None
    if not isinstance(source, pd.DataFrame):
        padded = padded_codes(Path(source), df, spec.partition_by, source=name)
        if spec.task == "classification":
            df, labels = literal_labels(Path(source), df, spec.target, source=name)
            codes = padded_codes(Path(source), df, [spec.target], source=name, labels=True)
    given = source.dtypes if isinstance(source, pd.DataFrame) else {}  # before ``plain``
    categories = [c for c, t in dict(given).items() if isinstance(t, pd.CategoricalDtype)]
    categories += [c for c in categorical if c not in categories]
    df, cols, features, bad_rows = checked(df, spec, source=name, categories=categories)
    try:
        table = split(
            df,
            partition_by=spec.partition_by,
            target=spec.target,
            features=features,
            categorical=cols.categorical,
            time_column=spec.time_column,
        )
    except DataError as e:  # a key column's missing values: named in the table they are in
        raise in_table(e, name, source) from None
    refuse_long_keys(table.keys, name)
    if spec.time_column:
        table = _add_time_series(table, spec, source=name)
        table = leave_out_bad_rows(table, spec, df)
    # the time series' warnings (``_add_time_series``) are kept beside the columns'
    as_read = [w for w in (padded, labels, codes) if w]  # what the CSV reader made of some cells
    warnings = [*as_read, *cols.warnings, *table.extra.get("warnings", [])]
    prior = class_prior(table.y, table.offsets) if spec.task == "classification" else None
    if prior is not None and spec.decision is not None and len(prior.classes) > 2:
        warnings.append(_NO_DECISION.format(n=len(prior.classes)))  # it was ignored silently
    notes: dict[str, object] = {"warnings": warnings} if warnings else {}
    notes |= {"bad_rows_dropped": bad_rows} if bad_rows else {}
    if prior is not None:  # every partition answers with the table's classes
        notes["class_prior"] = prior
    if notes:
        table = replace(table, extra={**table.extra, **notes})
    return table, df


_NO_DECISION = (
    "[decision] labels a binary classifier's rows by a threshold, and this table has {n} "
    "classes: no version records one, and answers carry the most probable class"
)


def _check_derived(df: pd.DataFrame, spec: Spec, *, source: str) -> None:
    taken = [c for c in spec.derived_columns if c in df.columns]
    if taken:
        raise DataError(
            f"{source}: column(s) {', '.join(map(repr, taken))} already exist; the spec's "
            "calendar / lags / rolling / changes would derive them: rename them"
        )


def add_calendar(df: pd.DataFrame, spec: Spec, *, source: str) -> pd.DataFrame:
    """The spec's calendar parts of the (parsed) time column as int64 columns."""
    column = str(spec.time_column)
    return df.assign(**calendar_parts(df[column], spec.calendar_columns, source=source))


def calendar_parts(
    times: pd.Series, parts: Mapping[str, str], *, source: str
) -> dict[str, np.ndarray]:
    """``{feature: values}`` of the calendar ``parts`` (``{feature: part}``) of parsed
    ``times``: how training computes them, and how ``score`` computes those a table leaves
    out (``scoring.plan.with_calendar``)."""
    if not ptypes.is_datetime64_any_dtype(times):
        raise DataError(
            f"{source}: calendar features need dates in time column '{times.name}' "
            f"(found dtype {times.dtype})"
        )
    values = timefeatures.calendar_values(times, list(dict.fromkeys(parts.values())))
    return {name: values[part] for name, part in parts.items()}


def _add_time_series(table: PartitionedTable, spec: Spec, *, source: str) -> PartitionedTable:
    """The table's frequency, and the spec's target lags and rolling statistics appended as
    float64 features (``manymodels.lagfeatures``), then its feature changes
    (``manymodels.changes``)."""
    plan = LagPlan.from_spec(spec)
    lags = plan.columns
    if lags or spec.changes:  # a target_transform needs lags too
        needs = "target lags" if lags else "feature changes"
        repeated = timefeatures.repeated_times(table.time, table.offsets, table.keys, needs)
        if repeated:
            raise DataError(f"{source}: {repeated}")
    frequency = frequencies.infer_frequency(table.time, table.offsets, spec.holidays or ())
    extra = {**table.extra, "frequency": frequency}
    odd = timefeatures.off_frequency(
        table.time, table.offsets, frequency, table.keys
    ) or off_calendar(
        table.time, table.offsets, frequency, table.keys, spec.holidays or ()
    )  # one cause: one line
    if lags and not odd:  # lags count rows: a skipped period shifts them
        odd = lag_gaps(table.time, table.offsets, frequency, table.keys, spec.holidays or ())
    unused = unused_holidays(frequency) if spec.holidays else None
    if spec.holidays and unused is None:
        unused = rows_on_holidays(table.time, table.offsets, table.keys, spec.holidays)
    if odd or unused:
        extra["warnings"] = [*extra.get("warnings", []), *(w for w in (odd, unused) if w)]
    if not lags:
        return changes.add_to_table(replace(table, extra=extra), spec.change_columns, source=source)
    if table.y.dtype.kind not in "fiub":
        raise DataError(
            f"{source}: lags need a numeric target; '{spec.target}' has dtype {table.y.dtype}"
        )
    raw_y = None
    if spec.transforms != ("none",):  # the model learns the transformed target, lags included
        raw_y = table.y  # kept also when the first is none: a chunk derives the others from it
        table = replace(table, y=fit_transforms(table.y, table.offsets, plan.transform)[0])
    matrix = table_features(table.y, table.offsets, plan)
    X: np.ndarray | pd.DataFrame
    if isinstance(table.X, pd.DataFrame):
        X = table.X.assign(**{name: matrix[:, j] for j, name in enumerate(lags)})
    else:
        X = np.hstack([table.X, matrix])
    table = replace(
        table,
        X=X,
        features=[*table.features, *lags],
        feature_dtypes={**table.feature_dtypes, **dict.fromkeys(lags, "float64")},
        extra=extra,
        raw_y=raw_y,
    )
    return changes.add_to_table(table, spec.change_columns, source=source)
