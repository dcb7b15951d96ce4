"""The scored table: the input's columns, in its row order, plus ``OUTPUT_COLUMNS``.

Chunks finish in any order and each holds its rows in the plan's (key) order, so predictions
are scattered back through the plan's ``positions``; rows no model scored stay missing, as
nullable values rather than a sentinel a caller could mistake for a prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from manymodels import intervals as conformal
from manymodels.feature_schema import FeatureSchema
from manymodels.partition import FALLBACK_KEY
from manymodels.scoring.plan import Plan
from manymodels.scoring.probabilities import Probabilities, probability_columns

Labelled = Sequence[tuple[int, list[np.ndarray], dict[int, tuple[np.ndarray, float]]]]


def scored_frame(
    df: pd.DataFrame,
    plan: Plan,
    done: Sequence[tuple[int, list[np.ndarray]]],
    levels: Sequence[float] = (),
    labelled: Labelled = (),
    probabilities: Probabilities | None = None,
    *,
    source: str,
    classes: Sequence[str] = (),
    decides: bool = False,
) -> pd.DataFrame:
    """``df`` with the predictions of ``done`` (each chunk's start in the plan's row order and
    its prediction arrays), each row's own key and which model answered it, and ``lo-`` /
    ``hi-`` columns for ``levels`` (each row's model's pooled interval; NaN where it has none).
    ``labelled`` (chunks' labels by unit) adds ``decision_label`` and ``decision_threshold``
    after ``prediction``: the ``label`` and ``threshold`` the router answers of a classifier
    with a ``[decision]`` (named apart: a table's target is often called ``label``); empty
    where a row's model has none. ``probabilities`` (chunks' class probabilities by unit)
    adds a ``proba-<class>`` column per class after those (``scoring.probabilities``), and
    ``classes`` (``unscored_columns``) first; ``decides`` writes the decision columns even
    when no row was labelled (a threshold asked, a version with a ``[decision]``). ``source``
    names the table in a refusal of a column those would overwrite."""
    n, at = len(df), plan.positions
    counts = np.diff(plan.offsets)
    names = list(dict.fromkeys(u.key for u in plan.units))
    code_of = {k: i for i, k in enumerate(names)}
    codes = np.full(n, -1, dtype=np.int64)
    codes[at] = np.repeat([code_of[u.key] for u in plan.units], counts)
    fallback = np.zeros(n, dtype=bool)
    fallback[at] = np.repeat([u.key == FALLBACK_KEY for u in plan.units], counts)
    versions = np.zeros(n, dtype=np.int64)
    versions[at] = np.repeat([u.version for u in plan.units], counts)
    predictions = _predictions(n, plan, done)
    return df.assign(
        prediction=predictions,
        **_labels(len(df), plan, labelled, decides),
        **(
            probability_columns(df, plan, probabilities, classes, source=source)
            if probabilities is not None
            else {}
        ),
        **_bands(predictions, plan, counts, levels),
        model_version=_versions(versions, plan),
        partition=pd.Categorical.from_codes(plan.key_codes, categories=plan.keys),
        served_by=pd.Categorical.from_codes(codes, categories=names),
        fallback=fallback,
    )


def as_given(frame: pd.DataFrame, given: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the input's own columns and index as the caller gave them (``given``):
    a ``category`` column came back as its values' dtype (the int or text that scoring reads,
    ``tables.plain``), and an index named like a column lost its name."""
    categories = [c for c, t in given.dtypes.items() if isinstance(t, pd.CategoricalDtype)]
    if not given.columns.is_unique or (not categories and frame.index.names == given.index.names):
        return frame
    out = frame.copy(deep=False)
    for column in categories:
        out[column] = given[column].array
    out.index = given.index
    return out


def _labels(n: int, plan: Plan, labelled: Labelled, decides: bool) -> dict[str, Any]:
    """``decision_label`` and ``decision_threshold`` in input order; ``None`` and NaN for rows
    no decision labelled (another model's, unscored)."""
    if not labelled and not decides:
        return {}
    kinds = {by_unit[j][0].dtype.kind for _, _, by_unit in labelled for j in by_unit}
    typed = bool(kinds) and (kinds <= {"i", "u"} or kinds == {"b"})
    label = np.zeros(n, dtype=bool if kinds == {"b"} else np.int64) if typed else None
    if label is None:
        label = np.full(n, None, dtype=object)
    labelled_rows = np.zeros(n, dtype=bool)
    threshold = np.full(n, np.nan)
    for start, predictions, by_unit in labelled:
        for j, p in enumerate(predictions):
            if j in by_unit:
                at = plan.positions[start : start + len(p)]
                label[at], threshold[at] = by_unit[j][0], by_unit[j][1]
                labelled_rows[at] = True
            start += len(p)
    if typed and not labelled_rows.all():  # integer (or boolean) classes stay so: a row
        # another model answered, or none, is <NA> rather than a float NaN (1.0 in a file)
        cls = pd.arrays.BooleanArray if label.dtype.kind == "b" else pd.arrays.IntegerArray
        return {"decision_label": cls(label, ~labelled_rows), "decision_threshold": threshold}
    return {"decision_label": label, "decision_threshold": threshold}


def _bands(
    predictions: Any, plan: Plan, counts: np.ndarray, levels: Sequence[float]
) -> dict[str, np.ndarray]:
    """Each row's interval columns: its model's pooled half-width around its prediction."""
    if not levels:
        return {}
    units = [
        conformal.widths(FeatureSchema([], intervals=u.intervals), levels)[:, 0] for u in plan.units
    ]
    half = np.full((len(levels), len(predictions)), np.nan)
    if units:
        half[:, plan.positions] = np.repeat(np.array(units).T, counts, axis=1)
    pred = np.asarray(predictions, dtype=np.float64)
    return conformal.bands(pred, half, levels)


def _predictions(n: int, plan: Plan, done: Sequence[tuple[int, list[np.ndarray]]]) -> Any:
    """Predictions scattered into input order; unscored rows missing (NaN, <NA> or None)."""
    pieces = [p for _, chunk in done for p in chunk]
    try:
        dtype = np.result_type(*{p.dtype for p in pieces}) if pieces else np.dtype(np.float64)
    except TypeError:  # e.g. text labels from one model, numbers from another
        dtype = np.dtype(object)
    if dtype.kind == "f":
        out = np.full(n, np.nan, dtype=dtype)
    elif dtype.kind in "iub":
        out = np.zeros(n, dtype=dtype)
    else:
        out = np.full(n, None, dtype=object)
    for start, chunk in done:
        for p in chunk:
            out[plan.positions[start : start + len(p)]] = p
            start += len(p)
    return _with_missing(out, plan) if dtype.kind in "iub" else out


def _versions(values: np.ndarray, plan: Plan) -> pd.arrays.IntegerArray:
    """The ``model_version`` column: ``Int64`` whether or not a row went unscored (``<NA>``),
    so its dtype does not hang on the rows: it was ``int64`` when every row was scored (an
    empty table too) and ``Int64`` when one was not, so batches of one job disagreed."""
    mask = np.ones(len(values), dtype=bool)
    mask[plan.positions] = False
    return pd.arrays.IntegerArray(values, mask)


def _with_missing(values: np.ndarray, plan: Plan) -> Any:
    """Integers or booleans as is, or as a nullable array when some rows went unscored."""
    if plan.n_scored == len(values):
        return values
    mask = np.ones(len(values), dtype=bool)
    mask[plan.positions] = False
    if values.dtype.kind == "b":
        return pd.arrays.BooleanArray(values, mask)
    return pd.arrays.IntegerArray(values.astype(np.int64), mask)


def labels_as_classes(df: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """``df`` with a classifier's target column of whole floats as integers (``Int64``,
    blanks kept missing), as its models' classes and ``prediction`` are.

    A CSV's 0/1 labels with a blank cell (an unlabelled row) are read as floats: the scored
    table echoed them ``1.0`` beside a ``prediction`` of ``1``, as ``train`` never saw them
    (``classes.as_labels``), and a join on label = prediction missed nothing but looked
    wrong; in a Parquet output the column was float64."""
    targets = {s.target for s in plan.schemas if s.task == "classification" and s.target}
    found: dict[str, pd.Series] = {}
    for name in targets:
        if name not in df.columns or df[name].dtype.kind != "f":
            continue
        values = df[name].to_numpy()
        present = values[~np.isnan(values)]
        if len(present) and np.all(present % 1 == 0) and np.abs(present).max() < 2**53:
            found[name] = df[name].astype("Int64")
    return df.assign(**found) if found else df
