"""What the open inference protocol's model metadata says of a served model: its inputs (the
row schema's features as tensors), its outputs (a classifier's probabilities and label only
where it has them) and the versions that may be asked for by URL. Apart from the routes
(``serving.routes.v2``) because infer checks a request's outputs against the same list.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from manymodels.classes import answered_classes
from manymodels.partition import FALLBACK_KEY
from serving.resolution import Target
from serving.served import ServedModel
from serving.service import ModelService
from serving.v2_inputs import input_tensors, row_inputs
from serving.v2_schemas import MetadataTensor, ModelMetadata, output


def outputs_of(model: ServedModel, threshold: float | None = None) -> list[MetadataTensor]:
    """``predict``, and a classifier's ``predict_proba`` (and ``label`` with a threshold)."""
    out = [MetadataTensor(name="predict", datatype=predict_type(model), shape=[-1])]
    schema = model.schema
    if schema.classifies and hasattr(model.model, "predict_proba"):
        own = getattr(model.model, "classes_", ())
        k = len(answered_classes(own, schema.classes))
        out.append(MetadataTensor(name="predict_proba", datatype="FP64", shape=[-1, k]))
        if schema.decision or threshold is not None:
            out.append(MetadataTensor(name="label", datatype=predict_type(model), shape=[-1]))
    return out


def proba_classes(model: ServedModel) -> list[Any]:
    """The classes of ``predict_proba``'s columns, in their order, as the JSON values
    ``predict`` gives (``0``, ``true``, ``"yes"``): ``/v1``'s probabilities are keyed by their
    text, and V2 listed that text, so a client looking a prediction up among the classes
    (``classes.index(1)``) found no ``"1"``."""
    own = np.asarray(model.model.classes_).tolist()
    answered = answered_classes(own, model.schema.classes)
    return list(answered) if answered is model.schema.classes else own


def predict_type(model: ServedModel) -> str:
    """FP64 for a regressor; a classifier's labels' own type."""
    if not model.schema.classifies:
        return "FP64"
    classes = getattr(model.model, "classes_", None)
    return output("x", classes.tolist()).datatype if classes is not None else "BYTES"


def metadata_of(service: ModelService, target: Target, model: ServedModel) -> ModelMetadata:
    """The model metadata of ``target`` (its versions read from the registry: the fallback
    answering for an unknown key lists none of that key's)."""
    versions: list[str] = []
    if not target.fallback or target.partition == FALLBACK_KEY:
        numbers = sorted(v.version for v in service.registry.list_versions(target.key))
        versions = [str(n) for n in numbers]
    return ModelMetadata(
        name=target.partition,
        versions=versions,
        platform="sklearn",
        inputs=input_tensors(model.schema, row_inputs(model)),
        outputs=outputs_of(model),
        parameters={
            "served_by": target.key,
            "version": target.version,
            "fallback": target.fallback,
            "target": model.schema.target,
        },
    )
