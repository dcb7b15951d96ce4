"""A derived feature sent without a value — JSON ``null``, or a NaN (V2's binary tensors have
no other missing value) — is a feature not given: computed from the version's history as if
the row left it out (``rowlags.fill_rows``), or refused in the words a left-out one is.

It was passed on as NaN: a model that takes missing values (HistGradientBoosting, LightGBM)
scored the row with a value the series never had and said nothing, a Ridge refused the row
naming its estimator's complaint. A client that builds rows from a table writes ``null`` for
what it does not know; ``score`` already reads an empty cell of such a column this way
(``scoring.lag_columns``). Ordinary features keep their ``null`` (NaN, for the model to take
or refuse). One pass over the request's rows: nothing per partition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from manymodels.feature_schema import FeatureSchema


def absent(value: Any) -> bool:
    """Whether a cell gives no value: ``None`` (JSON ``null``), ``pd.NA`` or a float NaN."""
    if value is None or value is pd.NA:
        return True
    if type(value) is float or isinstance(value, np.floating):
        return math.isnan(value)
    return False


def left_out(
    rows: Sequence[Mapping[str, Any]], schema: FeatureSchema
) -> Sequence[Mapping[str, Any]]:
    """``rows`` with each derived feature that has no value left out of its row; ``rows``
    itself (no copy) when none has one. Only the rows holding one are copied."""
    derived = schema.derived
    if not derived:
        return rows
    out: list[Mapping[str, Any]] | None = None
    for i, row in enumerate(rows):
        empty = [name for name in derived if name in row and absent(row[name])]
        if not empty:
            if out is not None:
                out.append(row)
            continue
        if out is None:
            out = list(rows[:i])
        out.append({k: v for k, v in row.items() if k not in empty})
    return rows if out is None else out


def any_absent(rows: Sequence[Mapping[str, Any]], schema: FeatureSchema) -> bool:
    """Whether some row leaves out, or sends without a value, any derived feature of the
    version — whatever it can compute. The router's batch builds one input for the rows of
    models with equal layouts, through the first model's schema: rows that need their
    derived features filled need their own model's history (or the fallback's refusal of
    lags it cannot know), so their model's rows are built apart."""
    derived = schema.derived
    return bool(derived) and any(absent(row.get(name)) for row in rows for name in derived)
