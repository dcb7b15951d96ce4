"""What a model's V2 request may hold beyond one tensor per feature, and how its metadata lists
its inputs: ``RowInputs`` (a version that derives features from its history takes its time
column and targets instead of them) and the ``inputs`` of ``GET /v2/models/{name}``. Read by
``v2_tensors.to_rows`` for every request and by ``v2_metadata`` for the model's metadata; kept
apart from the tensors' parsing, a job of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from manymodels.feature_schema import FeatureSchema
from serving.v2_schemas import MetadataTensor, feature_datatype

if TYPE_CHECKING:
    from serving.served import ServedModel


@dataclass(frozen=True, slots=True)
class RowInputs:
    """The inputs a model's request may hold beyond the one-tensor-per-feature rule, as a
    ``/v1`` row may: a version that derives features from its history (lags, calendar parts)
    takes its time column and posted targets instead of them (``manymodels.rowlags``), and a
    differenced one needs its time. A request of such a model could not be scored over V2."""

    optional: frozenset[str] = frozenset()  # features its history fills when left out
    extra: tuple[str, ...] = ()  # inputs that are not features: the time column, the target
    text: frozenset[str] = frozenset()  # features of text: a 2-D tensor's words go there
    time: str | None = None  # the time column, when it is one of ``extra``
    time_needed: bool = False  # by every row (a differenced model's; rowlags refuses one without)
    # lags and rolling statistics a version without a history (the fallback) cannot compute:
    # a request that leaves them out is told so, not only that they are missing
    no_series: frozenset[str] = frozenset()

    @classmethod
    def of(cls, schema: FeatureSchema) -> RowInputs:
        dtypes = schema.dtypes
        text = frozenset(
            f for f in schema.features if feature_datatype(dtypes.get(f, "float64")) == "BYTES"
        )
        differenced = schema.transform_kind == "difference"
        # a version without a history (the fallback) still reads calendar parts off the time
        calendar = schema.forecast.calendar if schema.forecast and schema.history is None else {}
        if schema.time_column is None or not (schema.may_derive or differenced or calendar):
            return cls(text=text)
        extra = [schema.time_column]
        if schema.target and not calendar:  # posted targets extend a history; none here
            extra.append(schema.target)
        optional = frozenset(schema.derived if schema.may_derive else calendar)
        extra = [c for c in extra if c not in schema.features]
        time = schema.time_column if schema.time_column in extra else None
        forecast = schema.forecast
        lags = [*forecast.lags, *forecast.rolling] if forecast and schema.history is None else []
        return cls(optional, tuple(extra), text, time, differenced, frozenset(lags))


def row_inputs(model: ServedModel) -> RowInputs:
    """``RowInputs.of`` the model's schema, built on its first V2 request and kept with it
    (``ServedModel.v2_inputs``): it was built again for every request, a set of its text
    features included. Equal ones are one object (the partitions of one spec), so keeping
    it adds no object per model for a full garbage collection to walk."""
    inputs = model.v2_inputs
    if inputs is None:
        inputs = RowInputs.of(model.schema)
        if len(_SHARED) >= 1_000:  # a few per spec; bounded all the same
            _SHARED.clear()
        inputs = _SHARED.setdefault(inputs, inputs)
        object.__setattr__(model, "v2_inputs", inputs)  # frozen; a race sets an equal value
    return inputs


_SHARED: dict[RowInputs, RowInputs] = {}


def input_tensors(schema: FeatureSchema, inputs: RowInputs) -> list[MetadataTensor]:
    """What ``to_rows`` takes, as the model metadata's ``inputs``: every feature in the
    model's order (a 2-D tensor's columns), then ``inputs.extra``. A feature every request
    gives has no ``parameters``; the others say what they are (``role``) and whether a
    request may leave them out (``optional``): a ``derived`` feature (its history fills
    it from the row's time), the ``time`` (needed where a derived feature is left out; by
    every row of a differenced model) and the ``target`` (earlier periods' values extend
    the history). Metadata listed the derived features as plain inputs and did not name
    the time column, which a request may send instead of them."""
    dtypes = schema.dtypes
    out = [
        MetadataTensor(
            name=f,
            datatype=feature_datatype(dtypes.get(f, "float64")),
            shape=[-1],
            parameters={"role": "derived", "optional": True} if f in inputs.optional else None,
        )
        for f in schema.features
    ]
    for name in inputs.extra:
        if name == inputs.time:
            datatype = _time_datatype(schema)
            parameters: dict[str, Any] = {"role": "time", "optional": not inputs.time_needed}
        else:
            datatype, parameters = _target_datatype(schema), {"role": "target", "optional": True}
        out.append(MetadataTensor(name=name, datatype=datatype, shape=[-1], parameters=parameters))
    return out


def _target_datatype(schema: FeatureSchema) -> str:
    """A regressor's targets are numbers; a classifier's are its labels: text labels are
    BYTES (its labels "yes"/"no" were listed as FP64, which ``infer`` takes only as numbers),
    number labels the kind they are."""
    if not schema.classifies:
        return "FP64"
    labels = schema.classes or []
    if any(isinstance(c, str) for c in labels):
        return "BYTES"
    if labels and all(isinstance(c, int) and not isinstance(c, bool) for c in labels):
        return "INT64"
    return "BOOL" if labels and all(isinstance(c, bool) for c in labels) else "FP64"


def _time_datatype(schema: FeatureSchema) -> str:
    """A dated series' times are ISO text (a number is no date: ``timekeys.time_key``); a
    series of numbered periods takes numbers, of the kind its last recorded time is."""
    last = schema.history.time if schema.history is not None else None
    if isinstance(last, bool) or not isinstance(last, int | float):
        return "BYTES"
    return "INT64" if isinstance(last, int) else "FP64"
