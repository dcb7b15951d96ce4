"""Labels from probabilities: a binary classifier's answer beside its probability.

A version trained with a spec's ``[decision]`` rule records its threshold in its feature
schema (``decision.threshold``, chosen on its validation rows or the global one); a request
may override it (``?threshold=0.3``). A row is labelled the positive class when the positive
class's probability is at least the threshold. Versions without a rule, asked without a
threshold, answer as before: no label.

Kept beside the scoring path rather than in it, so the batch path's stacked linear scoring
(no probabilities) stays untouched. When the request asked for probabilities, the answer
already holds each row's, and the labels are read from them: computing them again per model
was ~30 % of a warm batch over 3,000 users' classifier pipelines. Only when it did not are
they computed here (one ``predict_proba`` per model). Which of the two is ``labels``' choice,
made there once for every route that labels.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeGuard

import numpy as np

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


def labels(
    loaded: ServedModel,
    rows: Sequence[Row],
    answered: Sequence[Mapping[str, float] | None] | None,
    threshold: float | None,
) -> Labels:
    """The labels of ``rows`` at ``threshold`` (the version's own when ``None``), as ``loaded``
    answers them: read back from ``answered`` (each row's ``{class: p}`` as the answer holds
    it, or ``None`` where it holds none) when it holds every row's, else computed by the
    model (one ``predict_proba``). The same labels and threshold either way, byte for byte.

    The one place that choice is made: the batch, the one-partition route (on the event loop
    or off it) and V2 each wrote it out, and kept it in step by hand. A model held as
    coefficients only (``model`` is ``None``: a linear regressor) is left to ``_label_rows``,
    whose check names it as no classifier; nothing here asks it for probabilities."""
    if loaded.model is not None and answered_probabilities(answered):
        return _label_answered(loaded, answered, threshold)  # back, not computed again
    return _label_rows(loaded, rows, threshold)


def _label_rows(loaded: ServedModel, rows: Sequence[Row], threshold: float | None) -> Labels:
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
    return _labelled(loaded, proba, known, threshold)


def _label_answered(
    loaded: ServedModel, answered: Sequence[Mapping[str, float]], threshold: float | None
) -> Labels:
    """``_label_rows`` for rows whose probabilities the answer already holds (``answered``:
    each row's ``{class: p}``, as ``serving.rows.probabilities`` wrote them from this model's
    ``predict_proba``), without running the rows through the model again.

    The model's columns are read back by their text names (every class of the model is one),
    so the labels and threshold are those ``_label_rows`` gives, byte for byte."""
    known = binary_classes(loaded)
    names = [str(c) for c in np.asarray(getattr(loaded.model, "classes_", [])).tolist()]
    proba = np.array([[row[n] for n in names] for row in answered], dtype=np.float64)
    return _labelled(loaded, proba.reshape(len(answered), len(names)), known, threshold)


def _labelled(loaded: ServedModel, proba: Any, known: list[Any], threshold: float | None) -> Labels:
    """The labels of rows whose ``predict_proba`` by ``loaded``'s model is ``proba``."""
    columns = getattr(loaded.model, "classes_", [])
    decision = loaded.schema.decision or {}
    found, t = from_probabilities(proba, columns, decision, among=known, threshold=threshold)
    return Labels(found.tolist(), t)


def answered_probabilities(
    answers: Sequence[Mapping[str, float] | None] | None,
) -> TypeGuard[Sequence[Mapping[str, float]]]:
    """Whether every one of ``answers`` (a row's ``probabilities``, or ``None``; ``None``
    for an answer without any) holds its row's probabilities: then ``labels`` reads them
    back, and a route may label on the event loop however many rows there are."""
    return answers is not None and all(a is not None for a in answers)


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
        probs = [answers[i].get("probabilities") for i in idx]
        found = labels(load(pair), [rows[i] for i in idx], probs, threshold)
        for n, i in enumerate(idx):
            answers[i]["label"] = found.labels[n]
            answers[i]["threshold"] = found.threshold
