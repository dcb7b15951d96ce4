"""A version's feature schema as typed records: what training recorded of its inputs, read by
scoring, forecasting, the router, monitoring and the exports.

The registry stores the schema as one JSON document per version (``ModelVersion.feature_schema``:
what the API answers and a signature covers), written by ``manymodels.training.schema`` and
``manymodels.training.records``. Every reader parses it here, once, into ``FeatureSchema``, so
that the document's layout is known to this module alone: elsewhere a schema is read by
attribute, not by string key. Parts a version written before them lacks read as their
defaults (no rolling statistics, no changes, no transform, no intervals), as they always did.

The ``intervals`` and ``profile`` records stay mappings: each has one module that writes and
reads it (``manymodels.intervals``, ``manymodels.monitoring.profile``). Light on purpose (no
numpy, no pandas): read-only commands parse schemas too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, cast

from manymodels import holiday_sets

TransformKind = Literal["none", "difference", "scale", "auto_difference"]
"""A spec's ``target_transform`` (a version records what ``auto_difference`` resolved to)."""


@dataclass(frozen=True, slots=True)
class ForecastPlan:
    """What forecasting needs of every partition of a spec with a time column (the
    document's ``forecast``): the table's ``frequency`` (a pandas offset alias, or a number
    for a numeric time), the derived features by name — ``calendar`` part, target ``lags``,
    ``rolling`` statistics (``{lag, window, stat}``), ``changes`` (their source feature) —
    the ``exogenous`` features (the others), the time column's ``timezone`` and the target
    ``transform`` the spec asked for."""

    frequency: str | int | float | None
    exogenous: list[str]
    lags: dict[str, int] = field(default_factory=dict)
    calendar: dict[str, str] = field(default_factory=dict)
    rolling: dict[str, dict[str, Any]] = field(default_factory=dict)
    changes: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None
    transform: TransformKind = "none"
    holidays: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> ForecastPlan:
        transform = doc.get("transform")
        return cls(
            frequency=doc.get("frequency"),
            exogenous=_list(doc.get("exogenous")),
            lags=_dict(doc.get("lags")),
            calendar=_dict(doc.get("calendar")),
            rolling=_dict(doc.get("rolling")),
            changes=_dict(doc.get("changes")),
            timezone=doc.get("timezone"),
            transform=cast(TransformKind, _kind(transform)),
            holidays=list(holiday_sets.plan_dates(doc)),  # inline, or the registry's by hash
        )

    @property
    def derived(self) -> list[str]:
        """Every derived feature the plan records: lags, rolling statistics, calendar parts,
        changes, in that order."""
        return [*self.lags, *self.rolling, *self.calendar, *self.changes]

    @property
    def derives(self) -> bool:
        """Whether the plan derives any feature (cheaper than ``bool(derived)``)."""
        return bool(self.lags or self.rolling or self.calendar or self.changes)


@dataclass(frozen=True, slots=True)
class History:
    """Where a partition's forecast starts (the document's ``history``): its ``key`` values,
    its last ``time`` (as JSON: ISO text or a number), its last targets (oldest first, as
    many as its lags reach; ``None`` for a missing one), its last row of exogenous
    ``features`` and, when the model learnt one, its target ``transform`` record
    (``manymodels.lagfeatures.TargetTransform``'s JSON with the last raw target)."""

    key: dict[str, Any]
    time: Any
    target: list[float | None] = field(default_factory=list)
    features: dict[str, Any] = field(default_factory=dict)
    transform: dict[str, Any] | None = None

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> History:
        transform = doc.get("transform")
        return cls(
            key=_dict(doc.get("key")),
            time=doc.get("time"),
            target=_list(doc.get("target")),
            features=_dict(doc.get("features")),
            transform=_mapping(transform),
        )


@dataclass(frozen=True, slots=True)
class FeatureSchema:
    """What scoring rows are checked against and a model's input is built by: the feature
    order and dtypes, the categorical ones (fed as a DataFrame: ``input``), the target and
    task, the key and time columns; with a time column its ``forecast`` plan and the
    partition's ``history``. A classifier's also lists the table's ``classes`` and may
    carry a ``decision`` threshold; a version that chose a global model records the key it
    binds (``bound``: ``{"key": …, "label": …}``, the document's ``global``)."""

    features: list[str]
    dtypes: dict[str, str] = field(default_factory=dict)
    categorical: list[str] = field(default_factory=list)
    input: str = "numpy"
    target: str | None = None
    task: str | None = None
    partition_by: list[str] = field(default_factory=list)
    time_column: str | None = None
    forecast: ForecastPlan | None = None
    history: History | None = None
    classes: list[Any] | None = None
    class_prior: dict[str, Any] | None = None
    """The table's class ``rates`` (in ``classes``' order) and prior ``strength``."""
    decision: dict[str, Any] | None = None
    intervals: dict[str, Any] | None = None
    bound: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> FeatureSchema:
        """The typed schema of a stored document (its JSON, parsed)."""
        forecast, history = doc.get("forecast"), doc.get("history")
        return cls(
            features=_list(doc.get("features")),
            dtypes=_dict(doc.get("dtypes")),
            categorical=_list(doc.get("categorical")),
            input=str(doc.get("input") or "numpy"),
            target=_text(doc.get("target")),
            task=_text(doc.get("task")),
            partition_by=_list(doc.get("partition_by")),
            time_column=_text(doc.get("time_column")),
            forecast=ForecastPlan.parse(forecast) if isinstance(forecast, Mapping) else None,
            history=History.parse(history) if isinstance(history, Mapping) else None,
            classes=doc["classes"] if isinstance(doc.get("classes"), list) else None,
            class_prior=_mapping(doc.get("class_prior")),
            decision=_mapping(doc.get("decision")),
            intervals=_mapping(doc.get("intervals")),
            bound=_mapping(doc.get("global")),
            profile=_mapping(doc.get("profile")),
        )

    @classmethod
    def from_json(cls, text: str | None) -> FeatureSchema:
        """The typed schema of a stored document still in its JSON text."""
        return cls.parse(json.loads(text) if text else {})

    @property
    def classifies(self) -> bool:
        return self.task == "classification"

    @property
    def transform(self) -> dict[str, Any] | None:
        """The target transform the partition's model learnt (``None``: most versions)."""
        return self.history.transform if self.history is not None else None

    @property
    def transform_kind(self) -> str:
        """The kind of that transform (``scale``, ``difference``; ``none`` when there is none —
        ``auto_difference`` is recorded as what it resolved to)."""
        return _kind(self.transform)

    @property
    def derived(self) -> list[str]:
        """The derived features its plan records (none without a time column)."""
        return self.forecast.derived if self.forecast is not None else []

    @property
    def may_derive(self) -> bool:
        """Whether rows may leave out derived features for its history to fill: a version
        with a history and a plan that derives some."""
        return self.history is not None and self.forecast is not None and self.forecast.derives


def _kind(transform: Any) -> str:
    return str(transform.get("kind", "none")) if isinstance(transform, Mapping) else "none"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# The document's own lists and dicts are kept, not copied: the router shares equal parts
# between the partitions of one spec (``serving.served``), and a copy per model would undo it.
# Nothing mutates a parsed schema.


def _list(value: Any) -> list[Any]:
    return value if type(value) is list else list(value or ())


def _dict(value: Any) -> dict[str, Any]:
    return value if type(value) is dict else dict(value or {})


def _mapping(value: Any) -> dict[str, Any] | None:
    """A record (an empty one reads as none, as the document's readers took it)."""
    if not isinstance(value, Mapping) or not value:
        return None
    return value if type(value) is dict else dict(value)


def transform_of(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """``FeatureSchema.parse(doc).transform`` without parsing the rest: selection reads it
    for every partition and transform (twice each), and a parse of a document with a
    history costs ~0.3 ms (3 % of us_employment's one spec in process)."""
    history = doc.get("history")
    return _mapping(history.get("transform")) if isinstance(history, Mapping) else None


def transform_kind_of(doc: Mapping[str, Any]) -> str:
    """``FeatureSchema.parse(doc).transform_kind``, as ``transform_of``."""
    return _kind(transform_of(doc))


def transform_kind_json(text: str | None) -> str:
    """``FeatureSchema.transform_kind`` of a schema still in its JSON text, parsed only when
    it names a transform (the run plan reads one per partition: most need no parse)."""
    if not text or '"transform"' not in text:
        return "none"
    return FeatureSchema.from_json(text).transform_kind


class Predicts(NamedTuple):
    """What a version's models answer, as its schema records it (``None``: not recorded, as
    an MLflow import's target)."""

    target: str | None
    task: str | None


def predicts(text: str | None, likely: Predicts | None = None) -> Predicts:
    """``FeatureSchema``'s ``target`` and ``task`` of a schema still in its JSON text.
    ``likely`` is the answer expected (the spec's, or the version read before's): when the
    text says both its fields as the registry writes them (``"target":"units"``, no space),
    it is the answer, unparsed, so a check of 100,000 versions of one spec parses none
    (~2 s if it did: ``champion_targets.require_same_target``, doctor's
    ``production_targets``). Otherwise the text is parsed: ``None`` for what it lacks, both
    for a text that is no JSON object."""
    said = text or ""
    if (
        likely is not None
        and None not in likely  # an unrecorded field is read, never taken from a search
        and f'"target":{json.dumps(likely.target)}' in said
        and f'"task":{json.dumps(likely.task)}' in said
    ):
        return likely
    try:
        doc = json.loads(said or "{}")
    except ValueError:
        return Predicts(None, None)
    if not isinstance(doc, Mapping):
        return Predicts(None, None)
    return Predicts(_text(doc.get("target")), _text(doc.get("task")))
