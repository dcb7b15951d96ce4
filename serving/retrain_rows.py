"""The rows a retrain request brings: checked against the spec of the partition's production
version, shaped into the frame that spec trains on, and stored as Parquet bytes — apart from
the job that runs the retrain (``serving.retrain``), as the checks are most of the code and
every one of them answers a client's mistake before a job is queued.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from manymodels.appended_times import refuse_other_times
from manymodels.appending import has_target, one_row_per_period
from manymodels.data import prepare
from manymodels.deferred import deferred
from manymodels.exceptions import DataError
from manymodels.feature_schema import FeatureSchema
from manymodels.features import column_values, feature_kinds
from manymodels.huge_numbers import is_too_large, too_large
from manymodels.huge_numbers import shown as shown_value
from manymodels.inputs import as_floats
from manymodels.label_matching import KnownClasses
from manymodels.partition import PartitionedTable, decode_key, format_value
from manymodels.registry.entities import ModelVersion
from manymodels.spec import Spec
from manymodels.tables import describe_source
from manymodels.timecolumn import parse_time
from manymodels.training.rows import HUGE, drop_masks, kept_rows
from serving.keys import named_pairs, names_partition


@dataclass(frozen=True)
class RetrainTarget:
    """A partition that can be retrained, and the spec its production version was made with."""

    key: str
    key_values: dict[str, Any]
    spec: Spec
    production: ModelVersion


def training_frame(
    frame: pd.DataFrame,
    target: RetrainTarget,
    present: Callable[[str], bool],
    *,
    kept: bool = False,
) -> pd.DataFrame:
    """The rows with the key columns filled in from the partition, checked against the spec.

    Rows that carry key columns must all belong to the partition (a value spelt otherwise,
    ``2024-01-05 10:30`` for ``2024-01-05T10:30:00``, does unless it is its own partition,
    one ``present`` holds); columns the spec needs
    (target, time, features) must be there, named in the error when they are not. A numeric
    feature of the version sent as JSON nulls only stays numeric (NaN), as a CSV's empty
    column is read: as text it trained a version on a category (``_numeric_cells``). With
    ``kept`` rows to be appended to (which count toward ``min_rows``), the times must be of
    their kind.
    """
    spec = target.spec
    if len(frame) == 0:
        raise DataError("no rows to train on")
    keyed, named = key_values(target), named_pairs(target.key)
    for col in spec.partition_by:
        if col not in frame.columns:
            continue
        expected = format_value(keyed[col])
        others = [
            v
            for v in frame[col].unique()
            if not names_partition(_formatted(v), expected, col, named, present)
        ]
        if others:
            shown = ", ".join(shown_value(_formatted(v)) for v in others[:5])  # cut short
            raise DataError(
                f"rows of another partition: key column '{col}' holds {shown}, but the rows are "
                f"posted to partition '{target.key}' ({col}={expected}); omit the key columns "
                "or post each partition's rows to its own URL"
            )
    frame = frame.assign(**{c: keyed[c] for c in spec.partition_by})
    needed = [(spec.target, "target")]
    needed += [(spec.time_column, "time column")] if spec.time_column else []
    features = [*(spec.features or []), *(spec.categorical or [])]
    needed += [(c, "feature") for c in dict.fromkeys(features)]
    missing = [f"'{c}' ({role})" for c, role in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"the rows lack column(s) {', '.join(missing)} needed to retrain partition "
            f"'{target.key}' with spec '{spec.name}'"
        )
    frame = _huge_ints_as_floats(_numeric_cells(frame, target))
    _check_values(frame, target)
    frame = _known_labels(frame, target)
    if spec.target in frame.columns and spec.missing_target == "error":
        n_missing = int(frame[spec.target].isna().sum())
        if n_missing:
            raise DataError(
                f"target '{spec.target}' is missing in {n_missing} of {len(frame)} row(s), and "
                f"spec '{spec.name}' says missing_target = \"error\": drop those rows"
            )
    if not kept and len(frame) < spec.min_rows:
        raise DataError(
            f"{len(frame)} row(s) is fewer than min_rows ({spec.min_rows}) of spec '{spec.name}': "
            "the partition would not be trained"
        )
    if spec.time_column and spec.missing_target == "drop":
        # as ``train --append`` reads them: a row without a target beside one with it at the
        # same time is not a second row of that period
        on = [*spec.partition_by, spec.time_column]
        frame = one_row_per_period(frame, on, has_target(frame, spec))
    try:
        table, _ = prepare(spec, frame)  # what training checks first: types, dates, derived…
    except DataError as e:
        reason = str(e).removeprefix(f"{describe_source(frame)}: ")
        raise DataError(f"the rows do not fit spec '{spec.name}': {reason}") from None
    if not kept:
        _refuse_too_few_left(table, spec)
    if kept and spec.time_column:
        _refuse_other_times(frame, spec.time_column, target.production.schema)
    return frame


@deferred
def constant_rule() -> Callable[[Spec, int], bool]:
    """``training.classify.gets_constant`` (scikit-learn): imported by the first retrain's
    check or the router's warm-up, not at a router's start."""
    from manymodels.training.classify import gets_constant

    return gets_constant


def _refuse_too_few_left(table: PartitionedTable, spec: Spec) -> None:
    """A ``DataError`` when the rows training leaves out (lags and rolling windows reaching
    before the first row, missing targets: ``drop_masks``) leave fewer than ``min_rows``: the
    run would skip the partition, a job that can only fail. Not for an append, whose kept
    rows give the posted ones their lags, nor where so few rows train a constant of the
    partition's own (a classifier's ``too_few_rows``: ``gets_constant``)."""
    n = len(table.y)
    rows, counts = kept_rows(slice(0, n), drop_masks(table, spec))
    left = rows.stop - rows.start if isinstance(rows, slice) else len(rows)
    if left < spec.min_rows and not constant_rule()(spec, left):  # a classifier's own rates
        why = ", ".join(f"{k} {reason.replace('_', ' ')}" for reason, k in counts.items())
        why = why or f"{n - left} unusable"
        raise DataError(
            f"{n} row(s) leave {left} to train on ({why}), fewer than min_rows "
            f"({spec.min_rows}) of spec '{spec.name}': the partition would not be trained"
        )


def _numeric_cells(frame: pd.DataFrame, target: RetrainTarget) -> pd.DataFrame:
    """``frame`` with each numeric feature of the version (and a regression's target) that
    pandas left as objects but holds only numbers, booleans and nulls as floats, as
    ``/v1/predict`` reads a row's cells: JSON's ``null`` only (a column of ``None``), an
    integer past int64 (``123456789012345678901234567890``, which predict scores as 1.2e29 and
    the retrain refused as "dtype object", naming no value), or booleans beside nulls. An
    integer past float64 is refused naming its value and row (``inputs.as_floats``)."""
    columns = [
        (name, f"feature '{name}'", True)
        for name, numeric in feature_kinds(target.production.schema)
        if numeric
    ]
    y = target.spec.target
    if target.spec.task == "regression" and y in frame.columns and frame[y].notna().any():
        # nulls only: ``prepare`` says it is missing; a boolean: no number, as to /actuals
        columns.append((y, f"target '{y}'", False))
    read = {}
    for name, what, booleans in columns:
        if name in frame.columns and frame[name].dtype == object:
            floats = as_floats(frame[name].tolist(), what, booleans=booleans)
            if floats is not None:
                read[name] = pd.Series(floats, index=frame.index, dtype=np.float64)
    return frame.assign(**read) if read else frame


def _huge_ints_as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """Integers past float's range left in other columns (a time, a column the spec does not
    use) as ``±inf``, as JSON's ``1e400`` reads: pandas keeps such a Python int in an object
    column, and its numeric checks (``pd.to_numeric``, coerced or not) raised OverflowError
    on it (a 500). The version's numeric features and a regression's target were refused
    before, naming the value (``_numeric_cells``, ``huge_numbers``). Only object columns are
    looked at: a column pandas read as numbers holds none."""
    for name in frame.columns[[dtype == np.dtype(object) for dtype in frame.dtypes]]:
        values = frame[name].tolist()
        if any(is_too_large(v) for v in values):
            inf = [(math.inf if v > 0 else -math.inf) if is_too_large(v) else v for v in values]
            frame = frame.assign(**{name: pd.Series(inf, index=frame.index)})
    return frame


def _refuse_other_times(frame: pd.DataFrame, column: str, schema: FeatureSchema) -> None:
    """The posted times of the kind the production version's (its last time: ISO text or a
    number), as the job will append them to its kept rows; nothing to compare for a version
    without. The job appends to the newest version's rows, and checks them again there: a
    candidate newer than production with times of another kind fails the job, saying so."""
    last = schema.history.time if schema.history is not None else None
    if isinstance(last, bool) or not isinstance(last, str | int | float):
        return
    dates = isinstance(last, str)
    try:
        aware = dates and pd.Timestamp(last).tzinfo is not None
    except (TypeError, ValueError):  # not a time pandas reads: nothing to compare with
        return
    times = parse_time(frame[[column]], column, source="the rows")[column]
    whole = isinstance(last, int)  # periods kept as integers: 31.5 is none of them
    refuse_other_times(times, column, dates=dates, aware=aware, whole=whole)


def refuse_lost_columns(frame: pd.DataFrame, target: RetrainTarget) -> None:
    """Appended rows must hold every column the kept rows do when the spec names no
    ``features`` (every other column is one), as ``manymodels.appending`` requires: the job
    could only fail on them. The kept rows' columns are production's features less those
    training derives (``training.history``); a newer unpromoted version's are the job's to
    judge."""
    spec = target.spec
    if spec.features is not None:
        return
    derived = {*spec.derived_columns, *spec.partition_by}  # key columns are filled in
    kept = [f for f in target.production.schema.features if f not in derived]
    lost = [c for c in kept if c not in frame.columns]
    if lost:
        raise DataError(
            f"the rows lack column(s) {', '.join(map(repr, lost))} that the kept rows of "
            f"partition '{target.key}' hold, and spec '{spec.name}' (without a features list) "
            "trains on every column: add them, name the spec's features, or post with "
            "?mode=replace"
        )


def _check_values(frame: pd.DataFrame, target: RetrainTarget) -> None:
    """Posted values the retrain could only fail on, named before a job is queued: a numeric
    feature of the version sent as text (``cheap``: the job failed naming row 62 of the
    merged rows), or an infinite or too large (``|x| > 1e150``) feature or target."""
    spec = target.spec
    kinds = dict(feature_kinds(target.production.schema))
    features = spec.features if spec.features is not None else list(kinds)  # none: every one
    numeric = [c for c in frame.columns if kinds.get(c) and c in features]
    for name in numeric:
        if frame[name].isna().all():  # JSON nulls only: no dtype to judge, and NaN may train
            continue
        values = column_values(frame[name], numeric=True, name=name, source="the rows")
        _refuse_unusable(values, f"feature '{name}'")
    if spec.task == "regression" and ptypes.is_numeric_dtype(frame[spec.target]):
        y = frame[spec.target].to_numpy(dtype=np.float64, na_value=np.nan)
        _refuse_unusable(y, f"target '{spec.target}'")


def _known_labels(frame: pd.DataFrame, target: RetrainTarget) -> pd.DataFrame:
    """A classifier's posted labels as the classes its version knows (``"1"`` as ``1``, as
    ``/actuals`` reads them), or a ``DataError`` naming the first it does not. A version
    answers with the table's classes; one mistyped label (``"Yes"`` beside ``"yes"``) made a
    job train a model of a third class on one row, and promote it (the champion could not
    know that class); ``"1"`` beside ``1`` failed the job in sorting them. A new class is a
    full run's to add."""
    spec = target.spec
    classes = target.production.schema.classes
    if spec.task != "classification" or not classes or spec.target not in frame.columns:
        return frame
    known = KnownClasses(classes)
    out: list[Any] = []
    changed = False
    for i, value in enumerate(frame[spec.target].tolist()):
        if pd.isna(value):  # None, NaN, pd.NA (a nullable column): ``missing_target`` decides
            out.append(np.nan)
            continue
        why = known.refusal(value)  # none, or two by value ("01" and "1" for a 1)
        if why is not None:
            raise DataError(
                f"target '{spec.target}' is {value!r} in row {i}, {why} partition "
                f"'{target.key}' v{target.production.version} knows ({known.shown}): "
                "correct the label, or add a class with a full training run (manymodels train)"
            )
        (cls,) = known.matching(value)
        out.append(cls)
        changed = changed or type(cls) is not type(value)
    if not changed:  # as posted (a nullable integer column stays one)
        return frame
    return frame.assign(**{spec.target: pd.Series(out, index=frame.index, dtype=object)})


def _refuse_unusable(values: np.ndarray, what: str) -> None:
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(np.isinf(values) | (np.abs(values) > HUGE))
    if len(bad) and np.isinf(values[bad[0]]):  # JSON's 1e400: as every door says it
        raise DataError(too_large(what, float(values[bad[0]]), f"row {int(bad[0])}"))
    if len(bad):
        raise DataError(
            f"{what} is {values[bad[0]]:g} in row {int(bad[0])}: too large to train on "
            f"(|x| > {HUGE:g}); {len(bad)} row(s) in all"
        )


def key_values(target: RetrainTarget) -> dict[str, Any]:
    """The partition's key values, each as its key writes it where the record's value would
    be written otherwise: a timestamp column trained from a DataFrame is keyed
    ``ts=2024-01-05T10:30:00`` but recorded as the text ``2024-01-05 10:30:00``, and rows
    given that text trained the new partition ``ts=2024-01-05%2010:30:00`` (the job: "the run
    produced no version"). Other values keep their type (an integer key stays a number)."""
    try:
        named = decode_key(target.key)
    except DataError:
        return dict(target.key_values)
    out = dict(target.key_values)
    for col, value in target.key_values.items():
        text = named.get(col)
        if text is not None and _formatted(value) != text:
            out[col] = text
    return out


def _formatted(value: Any) -> str:
    try:
        return format_value(value)
    except DataError:
        return "<missing>"


def to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, index=False)
    except (ValueError, TypeError, OverflowError) as e:  # ArrowInvalid, ArrowTypeError…
        column = _unstorable_column(frame)
        where = f"column '{column}'" if column is not None else "the rows"
        raise DataError(
            f"{where} cannot be stored as a table (mixed types, or a number too large for "
            f"64 bits?): {_first_line(e)}"
        ) from None
    return buffer.getvalue()


def _unstorable_column(frame: pd.DataFrame) -> str | None:
    """The first column pyarrow cannot convert on its own, to name it in the error."""
    import pyarrow as pa

    for col in frame.columns:
        try:
            pa.Table.from_pandas(frame[[col]], preserve_index=False)
        except (ValueError, TypeError, OverflowError, pa.ArrowException):
            return str(col)
    return None


def _first_line(error: BaseException) -> str:
    args = [a for a in error.args if isinstance(a, str) and a.strip()]
    text = args[0].strip() if args else str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
