"""Recording actuals: score the posted rows again with the version that answered them, and
add the model's and the naive answer's errors to the partition's window of the day."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine

from manymodels.exceptions import InvalidRows
from manymodels.feature_schema import FeatureSchema
from manymodels.monitoring import counted, store
from manymodels.monitoring.live import ErrorSums, error_sums, label_error, live_error, targets
from manymodels.registry.engine import WriteTransaction

Row = Mapping[str, Any]
READ: Any = object()  # ``measure``'s default: read the version's last actual itself


@dataclass(frozen=True)
class Recorded:
    """What one batch of actuals added: its rows, the day window, and this batch's errors."""

    key: str
    version: int
    day: str
    rows: int
    error: float | None
    naive_error: float | None
    metric: str
    label_error: float | None = None  # a [decision] classifier's labels at its threshold
    already_counted: int = 0  # rows a post before counted (``monitoring.counted``), skipped

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def time_order(rows: Sequence[Row], time_column: str | None) -> list[int]:
    """The rows' positions sorted by their time column (when every row has one, of
    comparable values), so the naive answer of each is the actual before it; else as given."""
    given = list(range(len(rows)))
    if not time_column or not all(row.get(time_column) is not None for row in rows):
        return given
    try:
        return sorted(given, key=lambda i: rows[i][time_column])
    except TypeError:
        return given


def target_of(schema: FeatureSchema, key: str, version: int) -> str:
    """The version's target column; ``DataError`` for a version that records none (imported
    from MLflow: its rows were never seen here), so its actuals cannot be scored."""
    from manymodels.exceptions import DataError

    target = schema.target
    if not target:
        raise DataError(
            f"partition '{key}' v{version} was imported and records no target column: "
            "actuals cannot be scored against it"
        )
    return str(target)


@dataclass(frozen=True)
class Measured:
    """One batch scored and compared with its actuals, not yet written (``save`` does). Each
    row's actual, answer and digest (in time order) are kept so that ``save`` counts only the
    rows no post before counted, as its write transaction finds them."""

    key: str
    version: int
    metric: str
    task: str
    sums: ErrorSums
    last: Any
    points: tuple[store.Point, ...] = ()
    digests: tuple[str, ...] = ()
    actual: tuple[Any, ...] = ()
    predicted: tuple[Any, ...] = ()
    labels: tuple[Any, ...] | None = None
    times: tuple[Any, ...] = ()
    naive: Any = None
    previous: Any = None  # the last actual before these that ``sums`` were measured from
    time_ordered: bool = False

    def counting(
        self, fresh: Sequence[bool], previous: Any
    ) -> tuple[ErrorSums, Any, tuple[store.Point, ...]]:
        """The sums, last actual and points of the rows ``fresh`` marks (those not counted
        before), after ``previous`` (the last actual recorded now): the measured ones when
        they are every row and the previous actual is the one measured from."""
        same = not self.time_ordered or previous == self.previous
        if not self.digests or (all(fresh) and same):  # (none: a batch told by its sums)
            return self.sums, self.last, self.points
        keep = [i for i, f in enumerate(fresh) if f]
        if not keep:  # every row counted before: nothing to add
            return ErrorSums(0, 0.0, 0.0, 0, 0.0, 0.0, 0), previous, ()
        actual = [self.actual[i] for i in keep]
        sums, last = error_sums(
            actual, [self.predicted[i] for i in keep], task=self.task, naive=self.naive,
            time_ordered=self.time_ordered, previous=previous if self.time_ordered else None,
            labels=None if self.labels is None else [self.labels[i] for i in keep],
        )  # fmt: skip
        answered = self.predicted if self.labels is None else self.labels
        times = [self.times[i] for i in keep]
        points = _points([{"t": when} for when in times], actual, [answered[i] for i in keep], "t")
        return sums, last, points


def check_times(rows: Sequence[Row], schema: FeatureSchema) -> None:
    """``InvalidRows`` naming rows whose time is not a time: an object, a list, a boolean, or
    text or a number that is no date where the version's times are dates. They were stored as
    sent, shown on the dashboard, and ordered the naive answers (a number beside a date's text
    left them unordered, silently)."""
    import numpy as np
    import pandas as pd

    from manymodels import timekeys
    from manymodels.exceptions import InvalidRows
    from manymodels.inputs import problem

    column = schema.time_column
    if not column:
        return
    dated = schema.history is not None and isinstance(schema.history.time, str)
    errors = []
    for i, row in enumerate(rows):
        value = row.get(column)
        if value is None or isinstance(value, date | np.datetime64):  # a Parquet date too
            continue
        if isinstance(value, float) and value != value:  # a blank CSV cell: no time, as None
            continue
        number = isinstance(value, int | float | np.number) and not isinstance(value, bool)
        ok = isinstance(value, str) or (number and not dated)  # 12345 is no date: it was
        if ok and dated and isinstance(value, str):  # stored, and ordered among the dates
            try:
                ok = not pd.isna(timekeys.read_time(value))  # "" and "NaT": no time
            except ValueError:
                ok = False
        if not ok:
            what = "a date (ISO 8601)" if dated else "a time (a date or a period number)"
            errors.append(problem(i, str(column), f"'{column}' must be {what}", "time_type"))
    if errors:
        raise InvalidRows(errors)


def _points(
    rows: Sequence[Row], actual: Sequence[Any], predicted: Sequence[Any], time_column: Any
) -> tuple[store.Point, ...]:
    """(time, actual, prediction) of the newest ``store.RECENT`` rows, as JSON values."""

    def plain(x: Any) -> Any:
        return x.item() if hasattr(x, "item") else x

    start = max(0, len(rows) - store.RECENT)
    return tuple(
        (rows[i].get(time_column) if time_column else None, plain(actual[i]), plain(predicted[i]))
        for i in range(start, len(rows))
    )


def measure(
    engine: Engine,
    *,
    key: str,
    version: int,
    metric: str,
    schema: FeatureSchema,
    predict: Callable[[Sequence[Row]], Any],
    rows: Sequence[Row],
    positions: Sequence[int] | None = None,
    previous: Any = READ,
    label: Callable[[Sequence[Row]], Any] | None = None,
    key_columns: Sequence[str] = (),
) -> Measured:
    """Score ``rows`` with ``predict`` (the version's model) and sum the errors against their
    target values; writes nothing. Raises ``InvalidRows`` (the target or a feature missing or
    mistyped), so a caller with several batches can check them all before writing one; its
    rows are numbered by ``positions`` (the rows' places in a file; default 0, 1, …), though
    they are scored in time order. ``previous`` is the version's last recorded actual when
    the caller read it already (``store.previous_actuals``, for many); by default it is read.
    ``label``: a ``[decision]`` classifier's labels at its threshold (``predict`` answers its
    most probable class), counted apart and drawn as what the version answered.
    ``key_columns``: the partition's (and a file's ``counted.VERSION_COLUMNS``), left out of
    each row's digest (``monitoring.counted``)."""
    task = schema.task or "regression"
    numbers = list(range(len(rows))) if positions is None else list(positions)
    try:
        check_times(rows, schema)
    except InvalidRows as e:  # numbered by their place in ``rows``
        raise InvalidRows([_renumbered(p, numbers) for p in e.errors], e.total) from None
    order = time_order(rows, schema.time_column)
    ordered = [rows[i] for i in order]
    where = [numbers[i] for i in order]
    actual = targets(
        ordered, target_of(schema, key, version), task=task, positions=where,
        classes=schema.classes,
    )  # fmt: skip
    try:
        predicted = list(predict(ordered))
        found = None if label is None else label(ordered)
        labels = None if found is None else list(found)
    except InvalidRows as e:  # numbered by their place in ``ordered``: by ``where`` instead
        raise InvalidRows([_renumbered(p, where) for p in e.errors], e.total) from None
    profile = schema.profile or {}
    time_ordered = bool(schema.time_column)
    if not time_ordered:
        previous = None
    elif previous is READ:
        previous = store.previous_actual(engine, key, version)
    sums, last = error_sums(
        actual, predicted, task=task, naive=profile.get("naive"),
        time_ordered=time_ordered, previous=previous, positions=where, labels=labels,
    )  # fmt: skip
    answered = predicted if labels is None else labels  # what the consumer was answered
    points = _points(ordered, actual, answered, schema.time_column)
    marks = counted.digests(rows, key_columns, schema.time_column)  # in the order posted
    column = schema.time_column
    return Measured(
        key, version, metric, task, sums, last, points,
        digests=tuple(marks[i] for i in order), actual=tuple(actual),
        predicted=tuple(predicted), labels=None if labels is None else tuple(labels),
        times=tuple(r.get(column) if column else None for r in ordered),
        naive=profile.get("naive"), previous=previous, time_ordered=time_ordered,
    )  # fmt: skip


def _renumbered(problem: dict[str, Any], where: Sequence[int]) -> dict[str, Any]:
    loc = list(problem.get("loc", []))
    if len(loc) > 2 and isinstance(loc[2], int) and 0 <= loc[2] < len(where):
        loc[2] = where[loc[2]]
    return {**problem, "loc": loc}


def save(engine: Engine, measured: Measured, day: str | None = None) -> Recorded:
    """Add a measured batch to its partition's window of ``day`` (default: today, UTC)."""
    return save_all(engine, [measured], day)[0]


def save_all(
    engine: Engine, measured: Sequence[Measured], day: str | None = None
) -> list[Recorded]:
    """Add every measured batch (a file's partitions) to its window of ``day`` (default:
    today, UTC), in one transaction: all or nothing. Rows a post before counted (their
    digests are in the version's kept windows: ``monitoring.counted``) are left out and
    said so (``already_counted``); what is checked and written is one write transaction, so
    a retry racing its original counts its rows once."""
    day = day or datetime.now(UTC).date().isoformat()
    out: list[Recorded] = []
    with WriteTransaction(engine) as conn:
        seen = counted.seen_in(conn, [(m.key, m.version) for m in measured])
        batches: list[store.Batch] = []
        for m in measured:
            kept, raw = seen.setdefault((m.key, m.version), (set(), None))
            fresh = [d not in kept for d in m.digests]
            new = [d for d, f in zip(m.digests, fresh, strict=True) if f]
            sums, last, points = m.counting(fresh, store.last_of(raw))
            if new:
                kept.update(new)
                batches.append((m.key, m.version, sums, last, points, new))
            out.append(_recorded(m.key, m.version, day, sums, m.metric, m.task,
                                 len(fresh) - len(new)))  # fmt: skip
        store.write_actuals(conn, day, batches)
    return out


def record(
    engine: Engine,
    *,
    key: str,
    version: int,
    metric: str,
    schema: FeatureSchema,
    predict: Callable[[Sequence[Row]], Any],
    rows: Sequence[Row],
    day: str | None = None,
    label: Callable[[Sequence[Row]], Any] | None = None,
    key_columns: Sequence[str] = (),
) -> Recorded:
    """Score ``rows`` with ``predict`` (the version's model) and add the errors against their
    target values to the day's window. Raises ``InvalidRows`` (the target or a feature
    missing or mistyped) before anything is written."""
    measured = measure(
        engine, key=key, version=version, metric=metric, schema=schema, predict=predict,
        rows=rows, label=label, key_columns=key_columns,
    )  # fmt: skip
    return save(engine, measured, day)


def _recorded(
    key: str, version: int, day: str, sums: ErrorSums, metric: str, task: str, skipped: int = 0
) -> Recorded:
    from manymodels.monitoring.live import live_metric

    return Recorded(
        key, version, day, sums.rows, live_error(metric, task, sums),
        live_error(metric, task, sums, naive=True), live_metric(metric, task),
        label_error(task, sums), skipped,
    )  # fmt: skip
