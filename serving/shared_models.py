"""Rows of many partitions served by one global model, scored in one call.

A partition that chose a global candidate serves the run's one ``GlobalModel`` bound to its key
(``KeyBound``). A batch over a hundred such partitions called the booster a hundred times, a
row or two each (~25 µs a call, most of it LightGBM's own overhead per call); here their rows go
in one matrix, each row with its own partition's key (``booster_input.booster_predict``).

Only where that path answers: LightGBM predicts each row on its own, so a row's value is the
same bits in a call of one row or of many. A model that would go the frame's way (or any other
global estimator: a one-hot linear model's matrix product may round differently over many
rows) is left to the caller, partition by partition, as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from manymodels.deferred import deferred
from manymodels.training.booster_input import booster_predict
from serving.served import ServedModel

if TYPE_CHECKING:
    from manymodels.training.global_fit import KeyBound, KeyBoundClassifier


@deferred
def bound_types() -> tuple[type[KeyBound], type[KeyBoundClassifier]]:
    """A bound global model's classes: imported at the first model's load (its ``bind_key``)
    or by the router's warm-up, not at the router's start (scikit-learn, SciPy: ~2 s); a
    cached call per batch after that."""
    from manymodels.training.global_fit import KeyBound, KeyBoundClassifier

    return KeyBound, KeyBoundClassifier


def on_one_global_model(models: Sequence[ServedModel]) -> list[list[int]]:
    """The positions of ``models`` bound to one global model, for each with two or more."""
    KeyBound, _ = bound_types()
    groups: dict[int, list[int]] = {}
    for i, served in enumerate(models):
        if isinstance(served.model, KeyBound):
            groups.setdefault(id(served.model.model), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def predicted_together(
    models: Sequence[ServedModel],
    X: np.ndarray | pd.DataFrame,
    rows: Sequence[Sequence[int]],
    *,
    classifiers: bool = True,
) -> Iterator[tuple[list[int], np.ndarray]]:
    """For each group of ``models`` on one global model (``on_one_global_model``): its
    positions, and the predictions of every ``X[rows[i]]`` of them in one call, in that
    order (``X`` a frame when the model has categorical features). A group the booster's
    path cannot vouch for is left out (each of its models then predicts its own rows), and so
    are classifiers unless ``classifiers``."""
    for group in on_one_global_model(models):
        _, KeyBoundClassifier = bound_types()
        bound = models[group[0]].model
        if not classifiers and isinstance(bound, KeyBoundClassifier):
            continue
        at = np.concatenate([np.asarray(rows[i], dtype=np.intp) for i in group])
        keys: list[Any] = []
        for name in bound.model.keys:
            each = np.empty(len(group), dtype=object)
            each[:] = [models[i].model.key.get(name) for i in group]
            keys.append(np.repeat(each, [len(rows[i]) for i in group]))  # each row its key's
        mine = X.iloc[at] if isinstance(X, pd.DataFrame) else X[at]
        got = booster_predict(bound.model, mine, keys)
        if got is not None and len(got) == len(at):
            yield group, got
