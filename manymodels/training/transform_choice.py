"""One partition's rows as each target transform sees them, and the choice among them.

``target_transform = ["none", "difference"]`` fits every partition under each transform's
view of its rows (``Inputs``: features, target, raw target, times) and keeps the best-scoring
one (``best_transform``); scores compare because each is taken in the target's units
(``manymodels.targetunits``). A retrain's champion may have learnt the other transform, so
it is judged on its own transform's view of the same periods (``in_target_units``). The
views of a whole chunk are built by ``training.transforms``; ``training.chunk`` trains each
partition with these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from manymodels.exceptions import error_text
from manymodels.feature_schema import transform_kind_of, transform_of
from manymodels.lagfeatures import TargetTransform
from manymodels.partition import PartitionedTable
from manymodels.targetunits import RawTarget
from manymodels.training.external import External
from manymodels.training.heldout import across_transforms, rerecorded
from manymodels.training.metrics import beats
from manymodels.training.rows import kept_rows
from manymodels.training.schema import partition_history
from manymodels.training.select import Fitted, refitted
from manymodels.training.splits import take


@dataclass(frozen=True)
class Inputs:
    """One partition's rows as one target transform sees them (``training.transforms``)."""

    X: Any
    y: np.ndarray
    schema: dict[str, Any]
    raw: RawTarget | None
    times: np.ndarray | None
    dropped: Mapping[str, int]
    rows: Any = None
    external: Sequence[External] = ()  # the global models fitted on this transform's target

    def with_external(self, external: Sequence[External], load: Callable[..., Any]) -> Inputs:
        """These inputs with the run's global models of their transform, each holding its
        predictions of these rows and able to load itself (``load(sha256)``)."""
        mine = [
            replace(
                e,
                pred=e.pred[self.rows],
                own={g: p[self.rows] for g, p in e.own.items()},
                load=partial(load, e.sha256),
            )
            for e in external
        ]
        return replace(self, external=mine)


def inputs_of(
    table: PartitionedTable,
    i: int,
    schema: dict[str, Any],
    masks: Mapping[str, np.ndarray],
    key_values: dict[str, Any],
    *,
    ordered: bool,
) -> Inputs:
    """Partition ``i``'s kept rows, schema (with its history) and raw target in ``table``."""
    given = table.rows(i)
    rows, dropped = kept_rows(given, masks)
    if "forecast" in schema:
        last = _last_known(given, masks.get("missing_target"))
        history = partition_history(table, i, schema, key_values, last=last)
        schema = {**schema, "history": history}
    return Inputs(
        take(table.X, rows),
        table.y[rows],
        schema,
        raw_target(table, given, rows, schema, ordered=ordered),
        None if table.time is None else table.time[rows],
        dropped,
        rows,
    )


def raw_target(
    table: PartitionedTable,
    given: slice,
    rows: Any,
    schema: Mapping[str, Any],
    *,
    ordered: bool = False,
) -> RawTarget | None:
    """The kept ``rows`` of the partition at ``given`` as the table gave them (target, and
    each row's previous target), with the transform its history records; ``None`` without a
    ``target_transform``. A partition's first row has no previous target (NaN). ``ordered``:
    validation folds follow the rows in time, so a differenced fold is judged as a forecast
    (``RawTarget.periods``)."""
    transform = transform_of(schema)
    if table.raw_y is None or transform is None:
        return None
    index = np.arange(rows.start, rows.stop) if isinstance(rows, slice) else np.asarray(rows)
    previous = np.where(index > given.start, table.raw_y[np.maximum(index - 1, 0)], np.nan)
    periods = index - given.start if ordered else None
    return RawTarget(table.raw_y[index], previous, TargetTransform.from_json(transform), periods)


def best_transform(
    fit: Callable[[Inputs], Fitted],
    given: Inputs,
    alternatives: Sequence[Inputs],
    *,
    margin: float = 0.0,
) -> tuple[Fitted, Inputs]:
    """The best-scoring fit of ``given`` and of each alternative transform's inputs (each with the
    global models fitted on its target), and the inputs it was fitted on; an alternative
    replaces ``given``'s fit only when it beats it by ``margin`` (``[selection]
    transform_margin``). ``fit`` may leave its model to be fitted on all rows
    (``Fitted.pending``): only the chosen transform's model is, here. A transform that
    cannot fit this partition on its folds (too few rows once differenced, a candidate's
    complaint) drops out, and so does a chosen one whose model cannot fit all rows (the next
    best is chosen); one not chosen is never fitted on all rows, so its score (and its
    held-out errors in the interval replay) stand. The first error is raised when none fits.
    With alternatives, the version's validation record keeps every transform's score
    (``transforms``: kind → score, ``None`` where it failed), and its interval record the
    errors of this choice too, replayed without each fold (``training.heldout``)."""
    options = [given, *alternatives]
    fits: dict[int, Fitted] = {}
    errors: dict[int, Exception] = {}
    for i, inputs in enumerate(options):
        try:
            fits[i] = fit(inputs)
        except Exception as e:
            errors[i] = e
    while True:
        if not fits:
            raise errors[min(errors)]
        best = max(fits, key=lambda i: fits[i].score)  # the first of equal scores
        if best != 0 and 0 in fits and not beats(fits[best].score, fits[0].score, margin):
            best = 0  # a narrow win of another transform is noise
        try:
            chosen = refitted(fits[best], options[best].X, options[best].y)
            break
        except Exception as e:  # its model cannot fit all rows: another transform's may
            del fits[best]
            errors[best] = e
    if alternatives and chosen.intervals:  # bands from errors of the transform choice too
        held = across_transforms(
            [f.held_out for f in fits.values()], first_fitted=0 in fits, margin=margin
        )
        if held is not None:
            chosen = replace(chosen, intervals=rerecorded(chosen.intervals, held))
    if alternatives:
        scores = {
            transform_kind(o): (fits[i].score if i in fits else None) for i, o in enumerate(options)
        }
        failed = [
            f"target_transform '{transform_kind(options[i])}' not fitted: {error_text(e)}"
            for i, e in sorted(errors.items())
        ]
        chosen = replace(
            chosen,
            validation={**chosen.validation, "transforms": scores},
            warnings=[*chosen.warnings, *failed],
        )
    return chosen, options[best]


def in_target_units(
    model: Any, own: Inputs, ours: Inputs
) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray] | None:
    """A champion of another target transform, as it predicts rows of ``ours`` (positions)
    in the target's units from ``own``, its transform's view of the same periods (matched by
    time), and which rows of ``ours`` that view holds (a differenced view lacks the change
    after a missing target, a level view has it): a retrain choosing the other transform was
    never compared, and so never promoted under ``if_better`` however much better it was.
    ``None`` without times to match by."""
    times = ours.times
    if own.times is None or times is None:
        return None
    where = {t: j for j, t in enumerate(own.times.tolist())}  # one row per period
    covered = np.fromiter((t in where for t in times.tolist()), dtype=bool, count=len(times))

    def predict(rows: np.ndarray) -> np.ndarray:
        mine = np.array([where[t] for t in times[rows].tolist()], dtype=np.intp)
        fit = model if own.raw is None else own.raw.judged(model, mine)
        return np.asarray(fit.predict(take(own.X, mine)), dtype=np.float64)

    return predict, covered


def transform_kind(inputs: Inputs) -> str:
    """The transform these inputs' model learns, as its history records it (``auto_difference``
    resolved; none recorded: ``none``)."""
    return transform_kind_of(inputs.schema)


def _last_known(rows: slice, missing_target: np.ndarray | None) -> int | None:
    """The table row of a partition's last row with a target (``None`` when it has none): a
    forecast starts after it. Rows after it are the periods to forecast; a row left out of
    training for another reason (a missing feature value under ``changes``) is still a
    period whose target is known, and was forecast again, its target ignored by the lags."""
    if missing_target is None:
        return rows.stop - 1 if rows.stop > rows.start else None
    known = np.flatnonzero(~missing_target[rows])
    return int(known[-1]) + rows.start if len(known) else None
