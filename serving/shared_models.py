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

from collections.abc import Sequence
from typing import Any

import numpy as np

from manymodels.training.booster_input import booster_predict
from manymodels.training.global_fit import KeyBound
from serving.rows import to_json_list
from serving.served import ServedModel

Member = tuple[ServedModel, list[int], slice]  # a model, its rows, where they are in X


def shared(models: Sequence[ServedModel]) -> list[list[int]]:
    """The positions of ``models`` bound to one global model, for each with two or more."""
    groups: dict[int, list[int]] = {}
    for i, served in enumerate(models):
        if isinstance(served.model, KeyBound):
            groups.setdefault(id(served.model.model), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def predict_rows(
    models: Sequence[ServedModel], X: np.ndarray, rows: Sequence[Sequence[int]]
) -> np.ndarray | None:
    """``models[i]``'s predictions of ``X[rows[i]]``, all in one call and in that order (the
    models: one ``shared`` group); ``None`` where the booster's path cannot vouch for them."""
    model = models[0].model.model
    at = np.concatenate([np.asarray(r, dtype=np.intp) for r in rows])
    sizes = [len(r) for r in rows]
    keys: list[Any] = []
    for name in model.keys:
        each = np.empty(len(models), dtype=object)
        each[:] = [served.model.key.get(name) for served in models]
        keys.append(np.repeat(each, sizes))  # each row its partition's key value
    got = booster_predict(model, X[at], keys)
    return got if got is not None and len(got) == len(at) else None


def score_shared(X: Any, members: Sequence[Member], answers: list[Any]) -> list[Member]:
    """Fill ``answers`` for the rows of every group of ``members`` bound to one global model
    (``batch.score``'s members: rows of ``X`` in slices); returns those left to their own
    ``predict``."""
    if type(X) is not np.ndarray:
        return list(members)
    done: set[int] = set()
    for group in shared([m for m, _, _ in members]):
        got = predict_rows(
            [members[i][0] for i in group],
            X,
            [range(members[i][2].start, members[i][2].stop) for i in group],
        )
        if got is None:
            continue
        values = to_json_list(got)
        at = 0
        for i in group:
            for k, row in enumerate(members[i][1]):
                answers[row] = values[at + k]
            at += len(members[i][1])
        done.update(group)
    return [m for i, m in enumerate(members) if i not in done]
