"""Class probabilities in a scored table (``score(..., probabilities=True)``, ``manymodels
score --probabilities``): a ``proba-<class>`` column per class, the router's
``?probabilities=true`` answer (``{class: p}`` per row) as columns.

Every class of every answering version's table (``classes.over_table_classes``, the rule the
router and ``LoadedModel.predict_proba`` answer by), so a partition that never held a class
gives it 0 rather than shifting a column's meaning from one partition to the next; the union
over versions, should retrained tables differ. Rows no model scored are NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from manymodels.classes import UnitProba, model_probabilities, proba_column
from manymodels.exceptions import DataError
from manymodels.intervals import choose_levels
from manymodels.labels import threshold_classes
from manymodels.registry.client import Registry
from manymodels.scoring.plan import ModelRef, Plan, refuse_written

WRITER = "--probabilities writes"  # a clash's words, before scoring and after it
Probabilities = Sequence[tuple[int, list[np.ndarray], dict[int, UnitProba]]]


def refuse_regressors(plan: Plan, *, source: str) -> None:
    """A ``DataError`` naming a version that is not a classifier: a regression has no class
    probabilities (the router answers it ``probabilities: null``; a table cannot)."""
    for u in plan.units:
        if not plan.schemas[u.schema].classifies:
            raise _regression(u.key, u.version, source=source)


def _regression(key: str, version: int, *, source: str) -> DataError:
    return DataError(
        f"{source}: partition '{key}' v{version} is a regression model: class "
        "probabilities need a classifier (leave out --probabilities)"
    )


def refuse_taken(df: pd.DataFrame, plan: Plan, *, source: str) -> None:
    """A ``DataError`` for a column of ``df`` that a class of an answering version's table
    would write (``proba-yes``), before any model loads, as the decision and interval
    columns are checked: found after scoring, the whole job was done for nothing.
    ``probability_columns`` checks again the classes a model answers beyond its table's."""
    names = (proba_column(str(c)) for u in plan.units for c in u.classes or ())
    refuse_written(df, names, source=source, by=WRITER)


def unscored_columns(
    reg: Registry,
    alias: str,
    *,
    source: str,
    probabilities: bool = False,
    threshold: float | None = None,
    levels: Sequence[float] | None = None,
) -> tuple[list[str], bool, list[float]]:
    """The class labels, whether a ``[decision]`` labels, and the interval levels it recorded
    (``lo-``/``hi-`` columns by default; ``levels`` when it recorded them), of one version at
    ``alias``:
    what a table none of whose rows was scored (every key unknown, no fallback) writes
    columns for, so that its columns do not depend on its rows (a reader of a file of
    ``proba-<class>`` / ``decision_label`` / ``lo-80`` columns broke on the run that scored
    none). Every version of a spec answers the classes of its whole table
    (``over_table_classes``) and records the spec's ``[intervals]`` levels.

    ``probabilities`` / ``threshold`` asked of a regression, and ``levels`` it did not
    record, are refused for that version as a scored row's would be (``refuse_regressors``,
    ``labels.threshold_classes``, ``intervals.choose_levels``): a table of unknown keys wrote
    those columns, empty, and no error, so whether the job failed hung on its rows."""
    one = reg.store.one_at_alias(alias)
    found = reg.store.get_versions([one]) if one is not None else []
    if not found:
        return [], False, list(levels or [])
    record = found[0]
    schema, where = record.schema, f"partition '{record.key}' v{record.version}"
    if probabilities and not schema.classifies:
        raise _regression(record.key, record.version, source=source)
    if threshold is not None:
        threshold_classes(schema, where)
    levels = choose_levels([(where, schema)], levels)
    if not schema.classifies:
        return [], False, levels
    return [str(c) for c in schema.classes or ()], bool(schema.decision), levels


def unit_probabilities(model: Any, X: Any, ref: ModelRef, proba: Any = None) -> UnitProba:
    """A classifier's probabilities of ``X``, a column per class of its table (``proba``: its
    ``predict_proba(X)``, when the caller has it)."""
    where = f"partition '{ref.key}' v{ref.version}"
    return model_probabilities(model, X, ref.classes, where, proba)


def probability_columns(
    df: pd.DataFrame,
    plan: Plan,
    found: Probabilities,
    classes: Sequence[str] = (),
    *,
    source: str,
) -> dict[str, np.ndarray]:
    """The ``proba-<class>`` columns in input order: the classes in the order the versions'
    tables list them (first seen in key order), 0 for a class a row's version does not
    answer, NaN for a row no model scored; ``classes`` first (``unscored_columns``). A
    column of ``df`` one would overwrite is refused as ``refuse_taken`` refuses it (the
    models' own classes are known only now)."""
    pieces: list[tuple[np.ndarray, UnitProba]] = []
    for start, predictions, by_unit in sorted(found, key=lambda f: f[0]):
        for j, p in enumerate(predictions):
            if j in by_unit:
                pieces.append((plan.positions[start : start + len(p)], by_unit[j]))
            start += len(p)
    labels = list(dict.fromkeys([*classes, *(c for _, (cs, _) in pieces for c in cs)]))
    names = [proba_column(c) for c in labels]
    refuse_written(df, names, source=source, by=WRITER)
    index = {c: i for i, c in enumerate(labels)}
    out = np.full((len(df), len(labels)), np.nan)
    for at, (classes, proba) in pieces:
        cols = np.array([index[c] for c in classes], dtype=np.intp)
        if len(cols) < len(labels):
            out[at] = 0.0
        out[np.ix_(at, cols)] = proba
    return {name: out[:, i] for i, name in enumerate(names)}
