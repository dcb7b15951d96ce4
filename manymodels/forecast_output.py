"""A forecast's rows: one frame of a chunk of partitions' steps, with the key and time columns,
predictions, decision labels and interval bands typed alike in every chunk (a file written a
chunk at a time takes its first chunk's types).

Kept apart from ``manymodels.forecasting``, which loads the models and predicts the steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from manymodels import intervals as conformal
from manymodels.classes import UnitProba, proba_column
from manymodels.exceptions import DataError
from manymodels.forecast_formats import key_kind, label_fits
from manymodels.forecast_select import Selection
from manymodels.registry.entities import ModelVersion
from manymodels.written_columns import DECISION_COLUMNS, FORECAST_COLUMNS

Labels = tuple[np.ndarray, float]
"""A binary classifier's labels of the steps at its ``[decision]`` threshold, and the threshold."""


def refuse_overwritten(chosen: Selection) -> None:
    """A ``DataError`` for a key or time column named as a column the forecast writes
    (``prediction``, ``model_version``, a ``[decision]``'s, an interval's, a class's
    probability): the frame would hold the forecast's column in its place, and its rows no
    key. Training allows such a name (the router keys partitions by their path; ``score``
    refuses the table), so it is checked here, before any model loads: training refuses
    such a name now (``written_columns.reserved``), a registry trained before did not."""
    written = {*FORECAST_COLUMNS, *conformal.column_names(chosen.levels)}
    if chosen.decides:
        written |= set(DECISION_COLUMNS)
    written |= {proba_column(c) for c in chosen.classes or ()}
    named = [("key", c) for c in chosen.key_columns] + [("time", chosen.time_column)]
    taken = [f"{role} column '{c}'" for role, c in named if c in written]
    if taken:
        raise DataError(
            f"the forecast would overwrite its {' and '.join(taken)} with a column it writes: "
            "rename it in the table and train again"
        )


def output(
    records: Sequence[ModelVersion],
    key_columns: Sequence[str],
    time_column: str,
    horizon: int,
    times: Sequence[Any],
    predictions: Sequence[np.ndarray],
    levels: Sequence[float] = (),
    labels: Sequence[Labels | None] | None = None,
    label_dtype: str = "object",
    probabilities: tuple[Sequence[str], Sequence[UnitProba]] | None = None,
) -> pd.DataFrame:
    """The rows of ``records``' steps, sorted by key then time: ``times`` per group of one
    frequency, ``predictions`` and ``labels`` per partition in ``records``' order;
    ``probabilities``: the forecast's classes (every chunk's) and each partition's."""
    keys = [r.schema.history.key if r.schema.history else {} for r in records]
    out: dict[str, Any] = {c: _key_column([k.get(c) for k in keys], horizon) for c in key_columns}
    if isinstance(times[0], pd.DatetimeIndex):
        out[time_column] = times[0].append(list(times[1:])) if len(times) > 1 else times[0]
    else:
        out[time_column] = np.concatenate(times)
    prediction = np.concatenate(predictions)
    if prediction.dtype.kind in "iuf" and not any(r.schema.classifies for r in records):
        # a regression's, float64 whatever its models answer in (XGBoost's float32, a model's
        # ints): a file written a chunk at a time takes its first chunk's type for the column
        prediction = prediction.astype(np.float64, copy=False)
    out["prediction"] = prediction
    if labels is not None:  # a forecast with a [decision]: the columns in every chunk
        label = np.full(len(prediction), None, dtype=object)
        threshold = np.full(len(prediction), np.nan)
        for p, found in enumerate(labels):
            if found is not None:
                label[p * horizon : (p + 1) * horizon] = found[0].tolist()
                threshold[p * horizon : (p + 1) * horizon] = found[1]
        # of one type in every chunk, a chunk without a label too (forecast_formats.label_dtype)
        fits = label_fits(label_dtype)  # pandas casts 0 to '0' and True to 1 silently
        if all(v is None or fits(v) for v in label):
            out["decision_label"] = pd.array(label, dtype=label_dtype)
        else:  # versions of other class types ('yes' beside 1): kept as written
            out["decision_label"] = label
        out["decision_threshold"] = threshold
    if probabilities is not None:
        out.update(_probability_columns(*probabilities, horizon))
    schemas = [r.schema for r in records]
    out.update(conformal.stacked_bands(schemas, predictions, levels, steps=horizon))
    out["model_version"] = np.repeat([r.version for r in records], horizon)
    frame = pd.DataFrame(out)
    by_key = np.argsort(np.array([r.key for r in records], dtype=object), kind="stable")
    if (by_key != np.arange(len(records))).any():  # partitions of several frequencies
        frame = frame.iloc[(by_key[:, None] * horizon + np.arange(horizon)).ravel()]
    return frame.reset_index(drop=True)


def _key_column(values: list[Any], horizon: int) -> np.ndarray:
    """A key column, each partition's value as its key names it: ``np.repeat`` of a list
    made one type of all — the number 0 of one spec's partition beside another's text code
    '005' became the text '0' — so the values are repeated as objects unless they are of one
    kind, which pandas then types (int64, text)."""
    kinds = {key_kind(v) for v in values}  # ints and floats: numbers, float64 as before
    if len(kinds) <= 1:
        return np.repeat(values, horizon)
    return np.repeat(np.array(values, dtype=object), horizon)


def _probability_columns(
    classes: Sequence[str], found: Sequence[UnitProba], horizon: int
) -> dict[str, np.ndarray]:
    """A ``proba-<class>`` column per class of the whole forecast, 0 for a class a
    partition's version does not answer."""
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(found) * horizon, len(classes)))
    for p, (answered, proba) in enumerate(found):
        missing = [c for c in answered if c not in index]
        if missing:  # a model whose classes its table does not list (imported)
            raise DataError(
                f"a model answers class(es) {', '.join(map(repr, missing))} that its table "
                "does not list: its probabilities have no column"
            )
        cols = np.array([index[c] for c in answered], dtype=np.intp)
        out[p * horizon : (p + 1) * horizon, cols] = proba
    return {proba_column(c): out[:, i] for i, c in enumerate(classes)}
