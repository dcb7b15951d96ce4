"""A global grid point's work as tasks that run side by side: one per validation fold (or per
``[validation] global_refit`` folds), and the refit on every usable row.

Each fold's fit is independent of the others — the same training rows of all partitions the
fold leaves in, its validation rows predicted in one call — so a run ships them as separate
tasks (``run_globals``) instead of one task fitting them in turn: on 2 cores with one transform
the global phase takes about half as long, on a cluster about ``1 / (folds + 1)``. The table is
shipped once and shared by the tasks (an object reference on Ray); each task builds its own
transform's view and the same splits (``global_folds.fold_rows``: deterministic, from the spec
and the keys), so nothing but predictions and a digest travel back (with ``[selection]
prior_shifted``, also each fit's predictions of the partitions' own training rows: the
shift's reference rates, ``training.shifted``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from manymodels.artifacts import ArtifactStore, serialize
from manymodels.classes import as_labels
from manymodels.exceptions import error_text
from manymodels.partition import PartitionedTable
from manymodels.spec import Candidate, Spec
from manymodels.timefeatures import comparable_times, latest_time
from manymodels.training.global_fit import (
    GlobalFit,
    build_model,
    empty_predictions,
    predict_into,
    row_keys,
    take_rows,
)
from manymodels.training.global_folds import fold_rows, own_training_rows
from manymodels.training.transforms import view

REFIT = -1
"""The ``fold`` of the task that fits every usable row and stores the model."""
MAX_CUTOFFS = 4
"""The most fits one fold makes for partitions whose validation rows start at different
times (``time_groups``): at most this many times the fold's fitting cost, on any panel."""


@dataclass(frozen=True)
class GlobalTask:
    """One task of one global grid point: validation fold ``fold``, or ``REFIT``."""

    candidate: Candidate
    params: dict[str, Any]
    transform: str | None
    fold: int


@dataclass(frozen=True)
class TaskResult:
    """A fold's validation rows and their predictions; the refit's digest, size and rows."""

    fold: int
    rows: np.ndarray | None = None
    pred: np.ndarray | None = None
    sha256: str | None = None
    size: int = 0
    n_rows: int = 0
    seconds: float = 0.0
    through: str | int | float | None = None  # the refit's latest time (``GlobalFit.through``)
    unscored: str | None = None  # why some validation rows have no prediction (``GlobalFit``)
    own: np.ndarray | None = None  # training rows predicted for the shift (``own_predictions``)
    own_pred: np.ndarray | None = None


def fold_count(spec: Spec) -> int:
    """How many validation folds a partition can have: ``folds`` with ``kfold``, else one
    window (a partition with too few rows has none, and trains every fold)."""
    return spec.validation.folds if spec.validation_strategy == "kfold" else 1


def refit_every(spec: Spec) -> int:
    """How many consecutive folds one validation fit predicts (``[validation]
    global_refit``): 1 refits on every fold, ``fold_count`` fits once."""
    refit = spec.validation.global_refit
    if refit is True:
        return 1
    return fold_count(spec) if refit is False else min(refit, fold_count(spec))


def fit_folds(spec: Spec) -> list[int]:
    """The folds whose validation fit is made, in order: every ``refit_every`` folds from the
    first, and each of the last ``[validation] global_refit_last`` — so the folds nearest the
    forecast are judged on a model that saw every row before them, as local candidates are,
    while the earlier ones share a fit. Each fit predicts its fold and those after it up to
    the next fit's (``predicted_folds``)."""
    count = fold_count(spec)
    last = spec.validation.global_refit_last
    return sorted({*range(0, count, refit_every(spec)), *range(max(0, count - last), count)})


def fit_of(spec: Spec, fold: int) -> int:
    """The validation fit that predicts fold ``fold`` (``predicted_folds``)."""
    return max(f for f in fit_folds(spec) if f <= fold)


def predicted_folds(spec: Spec, fold: int) -> range:
    """The folds that the validation fit of fold ``fold`` predicts: up to the next fit's."""
    later = [f for f in fit_folds(spec) if f > fold]
    return range(fold, later[0] if later else fold_count(spec))


def tasks(
    spec: Spec, grid: Sequence[tuple[str | None, Candidate, dict[str, Any]]]
) -> list[GlobalTask]:
    """Every task of every ``(transform, candidate, params)``: the refit first (it also
    stores), then each validation fit — one per fold, or one per ``refit_every`` folds."""
    folds = [REFIT, *fit_folds(spec)]
    return [GlobalTask(c, dict(p), kind, f) for kind, c, p in grid for f in folds]


def run_task(
    task: GlobalTask, spec: Spec, store: ArtifactStore, table: PartitionedTable
) -> TaskResult:
    """Fit one fold and predict its validation rows and those of the folds after it up to the
    next fit's (``predicted_folds``), or the refit (stored once). The model fitted on fold ``f``'s
    training rows predicts fold ``f + 1``'s rows from their own features, every lag the
    observed value (exact for direct lags ≥ the fold size; with shorter lags these are
    one-step errors, as every fold's are: ``manymodels.intervals``)."""
    started = time.perf_counter()
    if task.transform is not None:
        table = view(table, spec, task.transform).table
    everything, folds = fold_rows(table, spec)
    if not len(everything):  # else the estimator's own words: "0 sample(s)", "non empty"
        raise ValueError(_no_rows(table, spec))
    model = build_model(task.candidate, task.params, table, spec)
    if task.fold == REFIT:
        X, y = take_rows(table.X, everything), _y(table, spec, everything)
        model.fit(X, y, row_keys(table, everything))
        sha, size = store.put(serialize(model, spec.artifacts.format))
        seconds = time.perf_counter() - started
        through = latest_time(table.time, everything) if table.time is not None else None
        return TaskResult(
            REFIT, sha256=sha, size=size, n_rows=len(everything), seconds=seconds, through=through
        )
    if task.fold >= len(folds):  # no partition has this many folds
        return TaskResult(task.fold, seconds=time.perf_counter() - started)
    train, _ = folds[task.fold]
    span = predicted_folds(spec, task.fold)
    valid = np.concatenate([v for _, v in folds[span.start : span.stop]])
    val = empty_predictions(table, spec)
    groups = time_groups(table, spec, train, valid)
    unscored = None
    own = own_predictions(table, spec, span)
    fitted = empty_predictions(table, spec) if own is not None else None
    owner = np.searchsorted(table.offsets, own, side="right") - 1 if own is not None else None
    for at, (rows, predicted) in enumerate(groups):
        if at:
            model = build_model(task.candidate, task.params, table, spec)
        try:
            model.fit(take_rows(table.X, rows), _y(table, spec, rows), row_keys(table, rows))
            predict_into(val, model, table, predicted)
            if fitted is not None and own is not None and owner is not None:
                # by the model that predicts their validation rows
                mine = np.searchsorted(table.offsets, predicted, side="right") - 1
                predict_into(fitted, model, table, own[np.isin(owner, mine)])
        except Exception as e:
            if at == len(groups) - 1:  # the fold's own fit, on the most rows: the grid
                raise  # point fails with its error, as it always did
            # an early cutoff's few rows (fewer than KNeighbors' n_neighbors): its partitions
            # are left unpredicted (unscored), as for a cutoff of one class (``time_groups``),
            # not the candidate lost for every partition
            unscored = unscored or (
                f"its fit on the {len(rows)} row(s) of every partition before this one's "
                f"validation starts failed ({error_text(e)})"
            )
    if unscored is None and sum(len(p) for _, p in groups) < len(valid):
        unscored = (
            "no fit on the rows of every partition before this one's validation starts (there "
            "are none, or they hold one class)"
        )
    seconds = time.perf_counter() - started
    kept = None if own is None or fitted is None else fitted[own]
    return TaskResult(
        task.fold, valid, val[valid], seconds=seconds, unscored=unscored, own=own, own_pred=kept
    )


def own_predictions(table: PartitionedTable, spec: Spec, span: range) -> np.ndarray | None:
    """The training rows a validation fit predicts besides its validation rows, for the
    prior-shifted option's reference rates (``training.shifted``): every partition's own
    training rows of the folds ``span`` (its fold's training rows, never its validation rows);
    ``None`` unless a classification asks for the shift (``[selection] prior_shifted``)."""
    if spec.task != "classification" or not spec.selection.prior_shifted:
        return None
    per_fold = own_training_rows(table, spec)[span.start : span.stop]
    return np.unique(np.concatenate(per_fold)) if per_fold else None


def time_groups(
    table: PartitionedTable, spec: Spec, train: np.ndarray, valid: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """A fold's fits as ``(training rows, validation rows)`` such that no fit learns a row
    as late as the validation rows it predicts, of any partition.

    A fold's training rows are every partition's rows before *its own* validation rows. When
    partitions end at different times (a store that closed, series of different lengths),
    one partition's training rows reach past another's validation start: a global model
    fitted on them learnt the days it is judged on (a shock every partition shares, a
    holiday), scored as if it foresaw them, and was chosen over local models that could
    not (mlforecast cuts every series at the same dates). So each partition's validation
    rows are predicted by a fit on the training rows before its cutoff (its first
    validation time) — one fit per distinct cutoff, at most ``MAX_CUTOFFS``: beyond, the
    cutoffs are a spread of them, each partition taking the latest at or before its own.
    A panel whose partitions end together is one fit on the fold's rows, as before; one
    without a time column, or validated on a random holdout, too."""
    ordered = spec.validation_strategy in ("last", "kfold")
    if table.time is None or not ordered or not len(valid) or not len(train):
        return [(train, valid)]
    stamps = comparable_times(table.time)
    partition = np.searchsorted(table.offsets, valid, side="right") - 1
    owners, where = np.unique(partition, return_inverse=True)
    first = np.full(len(owners), stamps[valid].max(), dtype=stamps.dtype)
    np.minimum.at(first, where, stamps[valid])
    cutoff = first[where]  # each validation row's partition's first validation time
    levels = np.unique(first)
    if levels[0] > stamps[train].max():  # every training row before every validation row
        return [(train, valid)]
    if len(levels) > MAX_CUTOFFS:
        at = np.linspace(0, len(levels) - 1, MAX_CUTOFFS).round().astype(np.int64)
        levels = np.unique(levels[at])  # the earliest stays: every partition has one
    group = np.searchsorted(levels, cutoff, side="right") - 1
    out = []
    for g, level in enumerate(levels):
        predicted = valid[group == g]
        rows = train[stamps[train] < level]
        if len(predicted) and len(rows):  # none before it: left unpredicted (unscored)
            out.append((rows, predicted))
    if spec.task == "classification" and len(out) > 1:
        # an early cutoff's rows may hold one class where the fold's hold several: a
        # classifier cannot fit them, and that one error dropped the global candidate for
        # every partition; such a cutoff's partitions are left unpredicted (unscored) instead
        out = [(rows, p) for rows, p in out if len(np.unique(table.y[rows])) > 1] or out[-1:]
    return out


def assemble(
    base: GlobalFit,
    results: Sequence[TaskResult | BaseException],
    table: PartitionedTable,
    spec: Spec,
) -> GlobalFit:
    """One grid point's ``GlobalFit`` from its tasks' results: every fold's predictions in
    one array aligned to ``table``'s rows; the first task's error if any failed."""
    for r in results:
        if isinstance(r, BaseException):
            return replace(base, error=error_text(r))
    done = [r for r in results if isinstance(r, TaskResult)]
    refit = next(r for r in done if r.fold == REFIT)
    val = empty_predictions(table, spec)
    own: dict[int, np.ndarray] = {}
    for r in done:
        if r.rows is not None and r.pred is not None:
            val[r.rows] = r.pred
        if r.own is not None and r.own_pred is not None:
            own[r.fold] = empty_predictions(table, spec)
            own[r.fold][r.own] = r.own_pred
    unscored = next((r.unscored for r in done if r.unscored), None)
    return replace(
        base, sha256=refit.sha256, size=refit.size, val_pred=val, rows=refit.n_rows,
        seconds=sum(r.seconds for r in done), through=refit.through, unscored=unscored,
        own_pred=own,
    )  # fmt: skip


def _no_rows(table: PartitionedTable, spec: Spec) -> str:
    """Why a global model has no row to fit on: each reason's count of the table's rows (a
    rolling window or lag longer than every series leaves none of them defined)."""
    from manymodels.training.rows import drop_masks

    masks = drop_masks(table, spec) or drop_masks(table, spec, pooled=True)
    why = ", ".join(f"{int(m.sum()):,} {r.replace('_', ' ')}" for r, m in masks.items() if m.any())
    return (
        f"no row of any partition is left to fit on: of {table.n_rows:,} row(s), "
        f"{why or 'none usable'} (shorter lags or rolling windows, or longer series, leave some)"
    )


def _y(table: PartitionedTable, spec: Spec, rows: Any) -> np.ndarray:
    """The target of ``rows`` to fit on: a classification's as int classes where the table
    holds whole numbers as float (``classes.as_labels``), as partitions are fitted."""
    y = table.y[rows]
    return as_labels(y) if spec.task == "classification" else y
