"""What the router keeps per cached model, and how a cache miss loads it.

A cached entry holds the estimator and only what scoring needs (key, version, feature schema;
the version's drift profile as one JSON text, for the monitor), not the whole registry record: a
miss then costs one indexed lookup of two columns (``SqlStore.model_ref``), one file read, a
sha256 and an unpickle — at a high miss rate that is the router's throughput, so nothing else is
read. (A whole schema cannot be shared between partitions: it carries each one's history for
forecasting; its other parts are, ``served_schema``.) Linear regressors score through their
coefficients directly (``serving.affine``).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from manymodels.artifacts import deserialize
from manymodels.classes import dates_as_text_classes, iso_class_texts
from manymodels.deferred import deferred
from manymodels.exceptions import ArtifactUnreadable, ManyModelsError, first_line
from manymodels.feature_schema import FeatureSchema, History
from manymodels.features import is_numeric
from manymodels.global_members import GlobalModels, linked, member_names
from manymodels.registry.client import Registry
from manymodels.rowlags import derived_missing
from manymodels.serialization import FORMATS, format_of
from manymodels.signing import verify
from serving.affine import COEF, PACKED, Affine, accepts, affine_of, apply
from serving.affine import linear_regressors as linear_regressors  # where tests look
from serving.answer_text import joined_head
from serving.errors import ModelNotServed

if TYPE_CHECKING:
    from manymodels.training.global_fit import GlobalModel
    from serving.v2_inputs import RowInputs

# ``ServedModel.plain``: its ``layout`` (interned by ``plain_of``: batches compare layouts by
# identity); its ``affine``'s packed row when it is a one-output affine map, stacked with
# other models' in a batch (``None`` when it does not stack); and the text before each of its
# predictions in a batch answer, the previous answer's close included
# (``answer_text.joined_head``)
PlainParts = tuple[tuple[Any, ...], bytes | None, str]


@dataclass(frozen=True, slots=True)
class ServedModel:
    """A loaded estimator and what scoring needs to feed it."""

    model: Any
    key: str
    version: int
    schema: FeatureSchema
    affine: Affine | None = None  # set when predict is an affine map of X
    layout: tuple[Any, ...] = ()  # what its input is built from: equal layouts, same input
    artifact_format: str = "pickle"  # how it was stored: dropped if the registry stops trusting it
    # what a plain batch (``serving.plain``) reads of it, set when a batch may feed it a shared
    # float64 matrix and answer with its predictions as they are (numeric numpy input, no
    # target transform, derived lags or decision rule): ``(layout, stack row, joined head)``,
    # see ``PlainParts``. One exact tuple of untracked objects, which the collector stops
    # walking: each slot more made every cached model a bigger allocation, and a full
    # collection under cold load took twice as long (15 → 29 ms with 8,700 models held)
    plain: PlainParts | None = None
    # the version's monitoring profile as JSON text, out of its schema: only the
    # monitor's flush reads it, and as ~20 dicts and lists per cached model it was the most
    # of what a full garbage collection walks under cold load (a str is not walked)
    profile_json: str | None = None
    # what a V2 request of it may hold (``v2_inputs.row_inputs``): set on its first V2
    # request, one shared object for equal ones; ``None`` costs a model never asked over V2
    # nothing (ten slots are the allocation nine are)
    v2_inputs: RowInputs | None = field(default=None, compare=False, repr=False)

    def profile(self) -> dict[str, Any] | None:
        """The version's monitoring profile (``manymodels.monitoring.profile``), if any."""
        return json.loads(self.profile_json) if self.profile_json else None

    def predict(self, X: Any) -> Any:
        if self.affine is not None and accepts(self.affine, X):
            return apply(self.affine, X)
        return self.model.predict(X)


def served_model(
    model: Any, key: str, version: int, doc: Mapping[str, Any], artifact_format: str = "pickle"
) -> ServedModel:
    """A model ready to serve, from its version's stored schema document (``doc``)."""
    schema, profile_json = served_schema(doc)
    return serve(model, key, version, schema, profile_json, artifact_format)


def serve(
    model: Any,
    key: str,
    version: int,
    schema: FeatureSchema,
    profile_json: str | None = None,
    artifact_format: str = "pickle",
) -> ServedModel:
    """A model ready to serve, its schema parsed by ``served_schema``."""
    layout = layout_of(schema)
    affine = affine_of(model, len(layout[0]))
    plain = plain_parts(key, version, plain_of(schema, layout), affine, schema.target)
    return ServedModel(
        model, key, version, schema, affine, layout, artifact_format, plain, profile_json
    )


def plain_parts(
    key: str,
    version: int,
    plain: tuple[Any, ...] | None,
    affine: Affine | None,
    target: str | None,
) -> PlainParts | None:
    """``ServedModel.plain`` of a model whose ``plain_of`` is ``plain`` (``None``: not plain);
    ``target``, the column it predicts, is written into its head once, here."""
    if plain is None:
        return None
    stacks = affine is not None and affine[PACKED] is not None
    stacks = stacks and affine[COEF].shape[0] == len(plain[0])  # type: ignore[index]
    row = affine[PACKED] if stacks else None  # type: ignore[index]
    return (plain, row, joined_head(key, key, version, False, target))


_SLIM_SCHEMAS: dict[str, FeatureSchema] = {}  # equal slim schemas shared (coefficient entries)
_SHELLS: dict[str, FeatureSchema] = {}  # equal schemas but for the history (one spec's partitions)
_SHARED_MAX = 10_000  # entries of each table; cleared past it (a new spec's versions refill it)


def _interned(table: dict[str, Any], text: str, value: Any) -> Any:
    """The value ``table`` keeps for the JSON ``text``, ``value`` if none yet."""
    shared = table.get(text)
    if shared is None:
        if len(table) >= _SHARED_MAX:
            table.clear()
        shared = table[text] = value
    return shared


def served_schema(doc: Mapping[str, Any]) -> tuple[FeatureSchema, str | None]:
    """A version's schema as the router keeps it, and its monitoring ``profile`` apart as
    JSON text (see ``ServedModel``).

    All but the partition's ``history`` is shared with every equal schema (the same JSON
    text, key order included) that earlier loads parsed: the partitions of one spec have the
    same features, dtypes and forecast plan, and each full model held its own ~8 copies for
    every full garbage collection to walk. Nothing mutates a served schema."""
    rest = {k: v for k, v in doc.items() if k not in ("history", "profile")}
    profile, history = doc.get("profile"), doc.get("history")
    profile_json = json.dumps(profile) if profile else None
    try:
        text = json.dumps(rest)
    except (TypeError, ValueError):  # not JSON (a schema built by hand): parsed as it is
        return FeatureSchema.parse({**rest, "history": history}), profile_json
    shell = _SHELLS.get(text)
    if shell is None:
        shell = _interned(_SHELLS, text, FeatureSchema.parse(rest))
    if not isinstance(history, Mapping):
        return shell, profile_json
    return replace(shell, history=History.parse(history)), profile_json


def coefficients_only(served: ServedModel) -> ServedModel | None:
    """``served`` without its estimator (``model`` is ``None``), for a model whose answers
    are its ``affine`` map: what ``CoefficientCache`` keeps of an evicted linear model.

    Its schema drops the partition's ``history`` (forecasting reads it from a full model), it
    keeps no monitoring profile (the drift flusher reads that from the model cache or the
    registry), and is shared with every equal one — unless the version derives lags or
    calendar parts a row may leave out (``rowlags``): those are computed from that history,
    which stays. Kept per partition, the profile's histograms were ~25 objects per entry for
    the collector to walk: at ten thousand entries, full collections of ~90 ms under cold
    load. It answers rows its affine map accepts; for others (a NaN) the caller loads the
    full model, which answers as it always did."""
    if served.affine is None or served.model is None or served.schema.transform is not None:
        return None  # a target_transform's answers are turned back with the history it drops
    schema = served.schema
    if not derived_missing([{}], schema):  # rows may leave out lags: they need the history
        schema = replace(schema, history=None)
    shared = _interned(_SLIM_SCHEMAS, repr(schema), schema)
    return ServedModel(
        None, served.key, served.version, shared, served.affine, served.layout,
        served.artifact_format, served.plain,
    )  # fmt: skip


def can_score(served: ServedModel, X: Any) -> bool:
    """Whether ``served`` can score ``X`` as it is: a full model always can (or raises as
    its estimator does); coefficients alone only when their affine map accepts ``X``."""
    return served.model is not None or (served.affine is not None and accepts(served.affine, X))


def plain_of(schema: FeatureSchema, layout: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The interned layout of ``ServedModel.plain`` (``None``: not plain): decided once per
    load, so that a batch over 100 partitions asks one attribute of each model rather than
    four questions of its schema."""
    if layout[2] != "numpy" or not all(is_numeric(d) for d in layout[1]):
        return None
    if schema.transform is not None or schema.decision or schema.may_derive:
        return None
    if len(_PLAIN_LAYOUTS) >= 1_000:  # a few per spec; bounded all the same
        _PLAIN_LAYOUTS.clear()
    return _PLAIN_LAYOUTS.setdefault(layout, layout)


# One object per distinct plain layout, so a batch compares its models' layouts by identity.
_PLAIN_LAYOUTS: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def layout_of(schema: FeatureSchema) -> tuple[Any, ...]:
    """What ``model_input`` reads from a schema: models with equal layouts (partitions of one
    spec) take the same input for the same rows, so a batch builds it once for all of them."""
    features = tuple(schema.features)
    dtypes = schema.dtypes
    return (features, tuple(str(dtypes.get(f, "float64")) for f in features), schema.input)


@deferred
def key_binding() -> Callable[[Any, Mapping[str, Any] | None], Any]:
    """``training.global_fit.bind_key`` (scikit-learn): imported at the first model load or
    by the router's warm-up, not at the router's start."""
    from manymodels.training.global_fit import bind_key

    return bind_key


def load_served(registry: Registry, key: str, version: int) -> ServedModel:
    """One version's model: its signature checked (with a signing key), then its bytes
    against their sha256, and only then unpickled.

    Raises what ``Registry.get_version`` raises for a missing partition or version (the
    precise message is worth a second query on that rare path), ``ArtifactNotFound`` /
    ``ArtifactCorrupted`` for the artifact, ``BadSignature`` (an ``ArtifactCorrupted``) for
    a missing or wrong signature.
    """
    ref = registry.store.model_ref(key, version)
    if ref is None:
        registry.store.get_version(key, version)  # raises PartitionNotFound / VersionNotFound
        raise AssertionError(f"{key} v{version} has no row yet get_version found it")
    doc = json.loads(ref.feature_schema_json)
    verify(registry.signer, ref.signature, key, version, ref.artifact_sha256, ref.data_sha256, doc)
    schema, profile_json = served_schema(doc)
    sha = ref.artifact_sha256
    what = f"partition '{key}' v{version}"
    # global models, chosen or an ensemble's members: one loaded copy for every partition on
    # them, its format checked against the policy on every reuse
    shared = GlobalModels(
        registry.artifacts.get, registry.trusted_formats, _SHARED, _FORMATS, owner=what
    )
    try:
        if schema.bound is not None:
            model = shared(sha)
            fmt = _FORMATS[sha]  # recorded with the model, in the same call
        else:
            data = registry.artifacts.get(sha)
            model = deserialize(data, registry.trusted_formats, what=what)
            if dates_as_text_classes(model):  # trained before dates were text classes
                schema = iso_dated_schema(schema)
            names = member_names(model)
            model = linked(model, shared)
            fmt = joined_formats(format_of(data), *(_FORMATS[n] for n in names))
        model = key_binding()(model, schema.bound)
    except ArtifactUnreadable as e:  # verified bytes that do not load (a crafted skops file,
        # a pickle of a library version this one cannot read): a 500 as for a tampered one
        raise _not_served(key, version, e.why) from None
    except ManyModelsError:
        raise
    except Exception as e:  # a model that loaded but cannot be bound to its key
        raise _not_served(key, version, f"{type(e).__name__}: {first_line(e)}") from None
    return serve(model, key, version, schema, profile_json, fmt)


def iso_dated_schema(schema: FeatureSchema) -> FeatureSchema:
    """The schema of a version whose model's date classes were turned into ISO text at load
    (``classes.dates_as_text_classes``): its ``classes`` and ``[decision]`` positive as that
    text too, so its probabilities keep a key per class of its table and its labels the
    recorded positive class."""
    decision = schema.decision
    if decision is not None and isinstance(decision.get("positive"), str):
        (positive,) = iso_class_texts([decision["positive"]]) or [decision["positive"]]
        decision = {**decision, "positive": positive}
    return replace(schema, classes=iso_class_texts(schema.classes), decision=decision)


def _not_served(key: str, version: int, why: str) -> ModelNotServed:
    return ModelNotServed(
        f"the artifact of partition '{key}' version {version} does not load ({why}); "
        "model not served"
    )


_SHARED: weakref.WeakValueDictionary[str, GlobalModel] = weakref.WeakValueDictionary()
"""Global models by sha256: every partition served by one global model shares one loaded
copy (one read, one unpickle) for as long as any cache entry holds it; when the last entry
referencing it is evicted, it goes. (Keyed by content: a sha256 names one model.)"""
_FORMATS: dict[str, str] = {}  # their artifact formats: one short entry per global model


def joined_formats(*formats: str) -> str:
    """``ServedModel.artifact_format`` of a model loaded from artifacts in ``formats`` (an
    ensemble and its global members): ``"pickle+skops"`` when they differ."""
    return "+".join(f for f in FORMATS if f in formats)


def needs_formats(served: ServedModel) -> frozenset[str]:
    """The formats a registry must trust for ``served`` to answer (``joined_formats``)."""
    return frozenset(served.artifact_format.split("+"))
