"""An MLflow scikit-learn model registered as a version of a partition.

**Import.** An MLflow model with the sklearn flavour and a column signature becomes a new
version of a partition: its feature schema is read from the signature, its estimator stored in
the artifact store like any other (with skops when the registry trusts no pickles; signed when
it has a signing key), in a run of kind ``import``. It was neither trained nor validated here,
and its row says so: ``n_rows`` 0, no training rows, ``metric = "none"`` and ``score = -inf``
(below any measured score; shown as "—" and as ``null`` in JSON), ``validation = {"strategy":
"none"}`` and ``evaluation.imported`` naming the source. Loading an MLflow model unpickles it:
import only directories you trust — except into a registry that trusts no pickles, where a
pickled model is refused unread and a skops one read with manymodels' trusted types.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manymodels.exceptions import DataError, ManyModelsError
from manymodels.global_members import member_names
from manymodels.interop.mlflow_io import first_line, quiet_mlflow, require_mlflow
from manymodels.key_lookup import check_new_key
from manymodels.registry.entities import ModelVersion, NewVersion, Run
from manymodels.registry.ownership import check_store, claim_store

if TYPE_CHECKING:
    from manymodels.registry import Registry
    from manymodels.serialization import Format

# MLflow column type → the dtype recorded in the feature schema (pandas name)
_DTYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32",
           "boolean": "bool", "string": "object"}  # fmt: skip
IMPORTED_METRIC = "none"


def storable(model: Any, format: Format, path: Path) -> bytes:
    """``model`` as the registry will store it; a ``DataError`` naming ``path`` for a model that
    cannot be (a lambda in a pipeline pickles with cloudpickle, which MLflow uses, not with
    pickle). ``UntrustedArtifact`` (a type skops is not trusted to load) as it is."""
    from manymodels.artifacts import serialize

    try:
        return serialize(model, format)
    except ManyModelsError:
        raise
    except Exception as e:
        raise DataError(
            f"{path}: its model cannot be stored as {format} ({type(e).__name__}: {first_line(e)})"
        ) from None


@dataclass(frozen=True)
class MlflowSklearn:
    """An MLflow sklearn model read from its directory (checked, loaded), not yet registered."""

    path: Path
    model: Any
    columns: list[tuple[str, str]]  # (name, MLflow type) of its signature's inputs
    meta: Any  # mlflow.models.Model: the parsed MLmodel file


def import_mlflow(
    reg: Registry, source: Path | MlflowSklearn, key: str, *, promote: bool = False
) -> ModelVersion:
    """Register the MLflow sklearn model at ``source`` as a new version of ``key``.

    The partition's first version becomes ``production``; a later one ``candidate`` unless
    ``promote``. Refuses (``DataError``) what ``read_mlflow`` refuses, and a key whose columns
    are not the registry's."""
    read = source if isinstance(source, MlflowSklearn) else read_mlflow(source, reg.trusted_formats)
    check_new_key(key, reg.partition_by)  # spaces, other columns: refused as other commands do
    canonical = reg.key(key, as_trained=False)  # the partition named, new or not
    _check_key_columns(reg, canonical)
    schema = _schema_from(read.columns, read.model, canonical)
    return _register(reg, read.path, canonical, read.model, schema, read.meta, promote=promote)


def read_mlflow(path: Path, formats: Iterable[str] | None = None) -> MlflowSklearn:
    """The MLflow model at ``path``, loaded (unpickled: trust it first). Refuses
    (``DataError``) a directory that is not an MLflow model, a model without the sklearn
    flavour, or one without a column signature of types a feature can have.

    ``formats``: those the target registry trusts (default: all). Without ``pickle``, a
    model MLflow pickled is refused unread, and a skops one is read by
    ``manymodels.serialization`` with its own trusted types — never the list the MLmodel
    file offers (a crafted one could name any callable)."""
    require_mlflow()
    from mlflow.models import Model

    if not (path / "MLmodel").is_file():
        raise DataError(f"{path}: not an MLflow model directory (no MLmodel file)")
    try:
        meta = Model.load(str(path))
    except Exception as e:  # MLflow raises its own (and yaml's) errors for a bad MLmodel
        raise DataError(f"{path}: cannot read its MLmodel file ({first_line(e)})") from None
    if "sklearn" not in meta.flavors:
        found = ", ".join(sorted(meta.flavors)) or "none"
        raise DataError(f"{path}: not a scikit-learn MLflow model (flavours: {found})")
    columns = _signature_columns(path, meta.signature)
    if formats is not None and "pickle" not in set(formats):
        model = _load_skops_only(path, meta.flavors["sklearn"], formats)
    else:
        model = _load_sklearn(path)
    if member_names(model):  # gc keeps a member only for the versions that list it
        raise DataError(
            f"{path}: its model names global models by sha256 (a manymodels ensemble as its "
            "artifact stores it), which no version of this registry would keep: export the "
            "version with `manymodels export KEY --format mlflow`, which writes it whole"
        )
    return MlflowSklearn(path, model, columns, meta)


def _signature_columns(path: Path, signature: Any) -> list[tuple[str, str]]:
    """``[(name, mlflow type)]`` of a column signature; ``DataError`` for anything else."""
    inputs = None if signature is None else signature.inputs
    if inputs is None or not inputs.has_input_names():
        raise DataError(
            f"{path}: the model has no column signature: its feature names and types are needed "
            "(log it with signature=infer_signature(X, model.predict(X)))"
        )
    out = []
    for col in inputs.inputs:
        kind = getattr(getattr(col, "type", None), "name", None)
        if kind not in _DTYPES:
            raise DataError(
                f"{path}: input '{col.name}' is of MLflow type {col.type}; a feature must be "
                f"one of {', '.join(_DTYPES)}"
            )
        out.append((str(col.name), str(kind)))
    return out


def _check_key_columns(reg: Registry, key: str) -> None:
    from manymodels.keys import FALLBACK_KEY, decode_key

    columns = reg.partition_by
    if key == FALLBACK_KEY or columns is None:
        return
    if list(decode_key(key)) != list(columns):
        raise DataError(
            f"'{key}' is not a key of this registry: its partitions are keyed by "
            f"{', '.join(columns)}"
        )


def _load_skops_only(path: Path, flavor: dict[str, Any], formats: Iterable[str]) -> Any:
    from manymodels.exceptions import ArtifactUnreadable, UntrustedArtifact
    from manymodels.serialization import describe, loads

    found = flavor.get("serialization_format")
    if found != "skops":
        raise UntrustedArtifact(
            f"{path}: MLflow stored its model as {found}, and this registry trusts only "
            f"{describe(formats)} artifacts: refusing to unpickle it (save the model with "
            "serialization_format='skops')"
        )
    file = (path / str(flavor.get("pickled_model", ""))).resolve()
    if not file.is_relative_to(path.resolve()) or not file.is_file():
        raise DataError(f"{path}: its MLmodel names no model file inside the directory")
    try:
        model = loads(file.read_bytes(), formats, what=f"{path}: its model")
    except ArtifactUnreadable as e:  # damaged, cut short, or crafted: said as a pickle's is
        raise DataError(f"{path}: cannot load its scikit-learn model ({e.why})") from None
    if not callable(getattr(model, "predict", None)):
        raise DataError(f"{path}: its model ({type(model).__name__}) has no predict method")
    return model


def _load_sklearn(path: Path) -> Any:
    import mlflow.sklearn

    try:
        with quiet_mlflow():
            model = mlflow.sklearn.load_model(str(path))
    except Exception as e:  # a missing module, a corrupt pickle, a skops type not trusted…
        raise DataError(f"{path}: cannot load its scikit-learn model ({first_line(e)})") from None
    if not callable(getattr(model, "predict", None)):
        raise DataError(f"{path}: its model ({type(model).__name__}) has no predict method")
    return model


def _schema_from(columns: list[tuple[str, str]], model: Any, key: str) -> dict[str, Any]:
    """The feature schema of an imported model: fed a DataFrame in signature order (a model
    logged by MLflow was usually fitted on one), or the float64 matrix when it was fitted on
    numbers without names."""
    from manymodels.keys import FALLBACK_KEY, decode_key

    text = [name for name, kind in columns if kind == "string"]
    named = hasattr(model, "feature_names_in_") or bool(text)
    schema: dict[str, Any] = {
        "features": [name for name, _ in columns],
        "dtypes": {name: _DTYPES[kind] for name, kind in columns},
        "categorical": text,
        "input": "dataframe" if named else "numpy",
        "target": None,
        "task": "classification" if _classifies(model) else "regression",
        "partition_by": [] if key == FALLBACK_KEY else list(decode_key(key)),
        "time_column": None,
    }
    classes = getattr(model, "classes_", None)
    if schema["task"] == "classification" and classes is not None:
        schema["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
    return schema


def _classifies(model: Any) -> bool:
    """Whether ``model`` is a classifier: scikit-learn's word, or its classes where it has
    none to give. A manymodels export from a skops-only registry holds our own models: a
    global model bound to its key has no scikit-learn tags (``is_classifier`` raised
    AttributeError: the import was a traceback), and a ``top2`` ensemble of classifiers no
    ClassifierMixin (imported as a regression, its probabilities never offered)."""
    from sklearn.base import is_classifier

    try:
        if is_classifier(model):
            return True
    except AttributeError:  # not a scikit-learn estimator
        pass
    return getattr(model, "classes_", None) is not None


def _register(
    reg: Registry,
    path: Path,
    key: str,
    model: Any,
    schema: dict[str, Any],
    meta: Any,
    *,
    promote: bool,
) -> ModelVersion:
    """Store the artifact, then the run and the version (one transaction for the version
    and its alias move, as training does)."""
    from manymodels.keys import FALLBACK_KEY, decode_key
    from manymodels.registry.client import library_versions
    from manymodels.registry.engine import now
    from manymodels.serialization import artifact_libraries

    reg.require_writable("cannot import a model")
    check_store(reg)  # a misspelt --artifacts: the version would be served from a store no
    # router reads, and the store marked as this registry's
    # stored as the registry's readers will load it: skops where pickles are refused
    format: Format = "pickle" if "pickle" in reg.trusted_formats else "skops"
    data = storable(model, format, path)
    digest, size = reg.artifacts.put(data)
    mlmodel = (path / "MLmodel").read_bytes()
    source: dict[str, Any] = {
        "from": "mlflow", "path": str(path.resolve()),
        "mlflow_version": getattr(meta, "mlflow_version", None),
        "model_uuid": getattr(meta, "model_uuid", None),
        "run_id": getattr(meta, "run_id", None),
        "mlmodel_sha256": hashlib.sha256(mlmodel).hexdigest(),
    }  # fmt: skip
    if isinstance(meta.metadata, dict) and "manymodels" in meta.metadata:
        source["exported_from"] = meta.metadata["manymodels"]  # a round trip: say from where
    try:
        current = reg.get_version(key).version
    except LookupError:
        current = None
    run = Run(
        run_id=uuid.uuid4().hex[:12], kind="import", status="running",
        spec_name="mlflow-import", spec_hash=source["mlmodel_sha256"],
        spec={"partition_by": schema["partition_by"], "imported": source},
        data_source=str(path.resolve()), data_fingerprint=digest[:32], started_at=now(),
        ended_at=None, n_partitions=1, n_trained=0, n_skipped=0, n_failed=0,
    )  # fmt: skip
    values: dict[str, Any] = {} if key == FALLBACK_KEY else dict(decode_key(key))
    with suppress(LookupError):
        values = reg.get_partition(key).key_values
    version = NewVersion(
        key=key, key_values=values, n_rows=0, data_fingerprint=f"imported:{digest[:32]}",
        estimator=_class_path(model), params=_params(model), metric=IMPORTED_METRIC,
        score=-math.inf, naive_score=None, candidates=[], feature_schema=schema,
        artifact_sha256=digest, artifact_size=size, train_seconds=0.0,
        warnings=["imported from MLflow: not trained or validated by manymodels"],
        validation={"strategy": "none"},
        evaluation={"imported": source, "champion_version": current},
    )  # fmt: skip
    claim_store(reg)
    reg.store.create_run(run)
    libraries = artifact_libraries(
        {**library_versions(), "mlflow": str(source["mlflow_version"])}, format
    )
    reason = "imported from MLflow, promoted on import (--promote)"
    numbers = reg.store.record(
        run.run_id, [version], [], libraries=libraries,
        promote=(lambda _v: reason) if promote else None,
    )  # fmt: skip
    reg.store.finish_run(run.run_id, "completed")
    return reg.get_version(key, numbers[key])


def _class_path(model: Any) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def _params(model: Any) -> dict[str, Any]:
    """The estimator's top-level parameters that are JSON values (nested estimators by name)."""
    get = getattr(model, "get_params", None)
    if get is None:
        return {}
    out: dict[str, Any] = {}
    for name, value in get(deep=False).items():
        try:
            json.dumps(value, allow_nan=False)
            out[name] = value
        except (TypeError, ValueError):
            out[name] = type(value).__name__ if hasattr(value, "fit") else repr(value)[:200]
    return out
