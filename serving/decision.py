"""Labels from probabilities: a binary classifier's answer beside its probability.

A version trained with a spec's ``[decision]`` rule records its threshold in its feature
schema (``decision.threshold``, chosen on its validation rows or the global one); a request
may override it (``?threshold=0.3``). A row is labelled the positive class when the positive
class's probability is at least the threshold. Versions without a rule, asked without a
threshold, answer as before: no label.

Kept beside the scoring path rather than in it: the probabilities are computed again here
(one ``predict_proba`` per model), which costs little against a request and leaves the
batch path's stacked linear scoring untouched.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from manymodels.exceptions import first_line
from manymodels.features import missing_value
from manymodels.labels import from_probabilities, threshold_classes
from serving.errors import MODEL_REFUSALS, ScoringFailed
from serving.rows import model_input
from serving.served import ServedModel

Row = Mapping[str, Any]
Pair = tuple[str, int]

# per router (service): (key, version) → labels by default; a version never changes
_DECIDES: weakref.WeakKeyDictionary[object, dict[Pair, bool]] = weakref.WeakKeyDictionary()
_DECIDES_MAX = 100_000


@dataclass(frozen=True)
class Labels:
    labels: list[Any]
    threshold: float


def decides(router: object, pair: Pair, load: Callable[[], ServedModel]) -> bool:
    """Whether the version ``pair`` of ``router``'s registry labels its rows by default (its
    schema has a threshold).

    Remembered per router and version (versions are immutable), so a request asks the model
    cache only the first time it meets a version: the scoring path already counted its hit."""
    memo = _DECIDES.setdefault(router, {})
    known = memo.get(pair)
    if known is None:
        if len(memo) >= _DECIDES_MAX:
            memo.clear()
        known = memo[pair] = bool(load().schema.decision)
    return known


def binary_classes(loaded: ServedModel) -> list[Any]:
    """The two classes a threshold chooses between; ``ScoringFailed`` (a client's mistake:
    the request asked for a threshold) naming the partition for any other model."""
    where = f"partition '{loaded.key}' v{loaded.version}"
    return threshold_classes(loaded.schema, where, loaded.model, error=ScoringFailed)


def label_rows(loaded: ServedModel, rows: Sequence[Row], threshold: float | None) -> Labels:
    """The labels of ``rows`` at ``threshold`` (the version's own when ``None``).

    A threshold asked of a model that is not a binary classifier is a ``ScoringFailed``
    (422) naming the partition: a label needs a probability of one positive class."""
    schema = loaded.schema
    model = loaded.model
    where = f"partition '{loaded.key}' v{loaded.version}"
    known = binary_classes(loaded)
    X = model_input(rows, schema)
    try:
        proba = model.predict_proba(X)
    except MODEL_REFUSALS as e:
        why = first_line(e) + missing_value(X, schema)
        raise ScoringFailed(f"{where} could not score the rows: {why}") from e
    columns = getattr(model, "classes_", [])
    decision = schema.decision or {}
    labels, t = from_probabilities(proba, columns, decision, among=known, threshold=threshold)
    return Labels(labels.tolist(), t)


def label_answers(
    router: object,
    load: Callable[[Pair], ServedModel],
    rows: Sequence[Row],
    answers: list[dict[str, Any]],
    threshold: float | None,
) -> None:
    """Add ``label`` and ``threshold`` to the answers of a batch, in place: per model that
    answered (``served_by``, ``version``), the rows it scored, when it labels by default or
    the request gave a threshold."""
    by_model: dict[Pair, list[int]] = {}
    for i, answer in enumerate(answers):
        by_model.setdefault((answer["served_by"], answer["version"]), []).append(i)
    for pair, idx in by_model.items():
        if threshold is None and not decides(router, pair, partial(load, pair)):
            continue
        found = label_rows(load(pair), [rows[i] for i in idx], threshold)
        for n, i in enumerate(idx):
            answers[i]["label"] = found.labels[n]
            answers[i]["threshold"] = found.threshold
