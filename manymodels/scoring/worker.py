"""What a worker does with one chunk: load each model once, verified by its sha256, and predict
on slices of the chunk's rows.

``score_chunk`` is the task body the backend ships (a Ray task, or a call in this process), so
it only takes picklable plain data and the artifact store, and it returns our own errors rather
than raising them: ``task_error`` turns whatever comes back into one ``ManyModelsError``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from manymodels.artifacts import ArtifactStore, deserialize
from manymodels.classes import dates_as_text_classes, require_probabilities
from manymodels.exceptions import (
    ArtifactError,
    ArtifactUnreadable,
    DataError,
    ManyModelsError,
    ScoringError,
    UntrustedArtifact,
)
from manymodels.feature_schema import FeatureSchema
from manymodels.features import assemble, feature_kinds, missing_value
from manymodels.global_members import GlobalModels, linked
from manymodels.labels import threshold_classes, thresholded
from manymodels.scoring.plan import ModelRef, ScoreChunk
from manymodels.scoring.probabilities import UnitProba, unit_probabilities
from manymodels.training.global_fit import GlobalModel, bind_key


class ChunkScores(NamedTuple):
    """A chunk's prediction array per unit, and by unit (its place in the chunk) the labels
    and threshold of a binary classifier with a ``[decision]``, as the router answers them,
    and, when the chunk asks for them, its class probabilities."""

    predictions: list[np.ndarray]
    labels: dict[int, tuple[np.ndarray, float]]
    probabilities: dict[int, UnitProba]


def score_chunk(chunk: ScoreChunk, store: ArtifactStore) -> ChunkScores | ManyModelsError:
    """The task body shipped to workers: one prediction array per unit (and labels). Our own
    errors are returned, not raised, so they reach the driver as themselves rather than
    wrapped."""
    try:
        return _score_chunk(chunk, store)
    except ManyModelsError as e:
        return e


def _score_chunk(chunk: ScoreChunk, store: ArtifactStore) -> ChunkScores:
    inputs: dict[int, tuple[np.ndarray, dict[int, np.ndarray]]] = {}
    models: dict[tuple[str, int], Any] = {}
    shared: dict[str, GlobalModel] = {}
    out: list[np.ndarray] = []
    labels: dict[int, tuple[np.ndarray, float]] = {}
    proba: dict[int, UnitProba] = {}
    for i, ref in enumerate(chunk.units):
        lo, hi = int(chunk.offsets[i]), int(chunk.offsets[i + 1])
        schema = chunk.schemas[ref.schema]
        if ref.schema not in inputs:
            inputs[ref.schema] = _matrix(chunk, schema)
        values, text = inputs[ref.schema]
        X = assemble(schema, values[lo:hi], {j: t[lo:hi] for j, t in text.items()})
        if (ref.key, ref.version) not in models:  # a global model: read once per chunk
            base = shared[ref.sha256] if ref.sha256 in shared else _load(ref, store, shared)
            if isinstance(base, GlobalModel):
                shared[ref.sha256] = base
            models[ref.key, ref.version] = bind_key(base, ref.bound)
            if chunk.threshold is not None:  # as forecast and the router check the model:
                # one without probabilities left its rows unlabelled, the threshold unsaid
                where = f"partition '{ref.key}' v{ref.version}"
                threshold_classes(schema, where, models[ref.key, ref.version])
            if chunk.probabilities:  # not in the try: its error names the partition itself
                where = f"partition '{ref.key}' v{ref.version}"
                require_probabilities(models[ref.key, ref.version], where)
        try:
            model = models[ref.key, ref.version]
            pred = np.asarray(model.predict(X))
            # one predict_proba serves the labels and the columns: twice cost a quarter of
            # scoring 3,000 users' logistic pipelines with --probabilities and a [decision]
            raw = _probabilities(model, X) if ref.decision and chunk.probabilities else None
            if ref.decision:
                found = thresholded(model, X, ref.decision, raw)
                if found is not None:
                    labels[i] = found
            if chunk.probabilities:
                proba[i] = unit_probabilities(model, X, ref, raw)
        except (ValueError, TypeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            error = DataError(
                f"partition '{ref.key}' v{ref.version} could not score its {hi - lo} row(s): "
                f"{first}{missing_value(X, schema, numbered=False)}"
            )
            error.chunk_row = _first_missing(X, lo)  # the driver names its data row
            raise error from None
        if pred.shape[:1] != (hi - lo,):
            raise DataError(
                f"partition '{ref.key}' v{ref.version} returned {len(pred)} prediction(s) for "
                f"{hi - lo} row(s)"
            )
        out.append(pred)
    return ChunkScores(out, labels, proba)


def _first_missing(X: Any, lo: int) -> int | None:
    """The chunk position of the unit's first row without a value (``lo``: where the unit
    starts), or ``None``: the chunk's rows are sorted by partition, so only the driver, which
    holds the plan's positions, can turn it into the data row a user counts."""
    rows = np.flatnonzero(pd.DataFrame(X).isna().to_numpy().any(axis=1))
    return lo + int(rows[0]) if len(rows) else None


def _probabilities(model: Any, X: Any) -> Any:
    """``model.predict_proba(X)``, or ``None`` for a model without (``require_probabilities``
    has named it, and ``thresholded`` leaves it unlabelled)."""
    return model.predict_proba(X) if hasattr(model, "predict_proba") else None


def _matrix(chunk: ScoreChunk, schema: FeatureSchema) -> tuple[np.ndarray, dict[int, Any]]:
    """The whole chunk as one schema's float64 matrix and text columns; units take slices."""
    kinds = feature_kinds(schema)
    values = np.zeros((int(chunk.offsets[-1]), len(kinds)), dtype=np.float64)
    text: dict[int, np.ndarray] = {}
    for j, (name, numeric) in enumerate(kinds):
        if numeric:
            values[:, j] = chunk.columns[name, True]
        else:
            text[j] = chunk.columns[name, False]
    return values, text


def _load(ref: ModelRef, store: ArtifactStore, shared: dict[str, GlobalModel]) -> Any:
    """Bytes checked against the registry's sha256 before they are unpickled; an ensemble's
    global members read once per chunk (``shared``)."""
    what = f"partition '{ref.key}' v{ref.version}"
    try:
        data = store.get(ref.sha256)
    except ArtifactError as e:
        raise type(e)(f"cannot score {what}: {e}") from None
    try:
        model = deserialize(data, store.formats, what=what)
        dates_as_text_classes(model)  # a version from before dates were text classes
        return linked(model, GlobalModels(store.get, store.formats, shared, owner=what))
    except UntrustedArtifact:
        raise  # names the partition (or the member and its partition) and the policy already
    except ArtifactUnreadable as e:
        message = f"cannot score {what}: its artifact does not load ({e.why})"
        raise ArtifactUnreadable(message, e.why) from None
    except ArtifactError as e:  # a global member missing or corrupted
        raise type(e)(f"cannot score {what}: {e}") from None
    except Exception as e:  # e.g. pickled by an incompatible library version
        raise ArtifactError(
            f"cannot score {what}: its artifact does not load ({type(e).__name__}: {e})"
        ) from None


def task_error(error: BaseException) -> ManyModelsError:
    """A failed task as the error the driver raises: ours as is, anything else (a worker
    crash, a lost node) as a ``ScoringError`` carrying its last line."""
    if isinstance(error, ManyModelsError):
        return error
    last = (str(error).strip().splitlines() or [""])[-1][:500]
    return ScoringError(f"a scoring task failed ({type(error).__name__}: {last})")
