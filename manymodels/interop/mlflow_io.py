"""A version as an MLflow model (and what exporting and importing share).

**Export.** A version whose model is plain scikit-learn (every class it pickles comes from
scikit-learn, numpy, scipy or pandas) is written with MLflow's sklearn flavour, so
``mlflow.sklearn.load_model`` gives a scikit-learn object and ``mlflow.pyfunc.load_model``
scores it without manymodels installed. A model fitted on a float64 matrix (the feature
schema's ``input = "numpy"``) is exported behind one step, ``Pipeline([("features",
FunctionTransformer(numpy.ascontiguousarray, dtype float64)), ("model", <the estimator>)])``:
MLflow hands a model a DataFrame in signature order, and that step turns it into the very
matrix ``LoadedModel.predict`` builds (same values, same memory order, so the same bits), with
no "X has feature names" warning; the estimator itself is not altered. Any other model (our
naive ``LastValueRegressor``, the single-class ``ConstantProbabilityClassifier``, a user's
estimator class) is exported as a pyfunc ``python_model`` (``interop.pyfunc.ManyModelsModel``)
that carries the estimator and its feature schema and scores through
``manymodels.inputs.model_input`` as the router does: loading it needs ``manymodels`` (and the
user's module) importable. Both carry a signature built from the feature schema (names and
types, ``feature_signature``), an input example (the version's first training rows, when it kept
them), and the version's identity under ``metadata.manymodels``. From a registry that trusts no
pickles (``manymodels trust --trusted-formats skops``) every model is written with the sklearn
flavour in skops' format, its extra trusted types (``skops_types``) recorded for MLflow's loader
(our naive and single-class models, global models and ``top2`` ensembles then need
``manymodels`` importable too). Labels are what
``LoadedModel.predict`` gives: a ``[decision]`` threshold is applied by the router, not by the
model, so it is not part of the export.

**Import** (an MLflow sklearn model as a version) is ``mlflow_import``.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import pickletools
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manymodels.durable_files import fsync_dir, fsync_tree
from manymodels.exceptions import DataError, ManyModelsError
from manymodels.feature_schema import FeatureSchema
from manymodels.key_selection import KeyLike
from manymodels.parent_dirs import missing_parent
from manymodels.registry.entities import ModelVersion
from manymodels.tempnames import remove_dead_leftovers, writer_tag

if TYPE_CHECKING:
    from manymodels.registry import Registry

# Packages whose classes a plain scikit-learn model may pickle (and pickle's own helpers, by
# their Python 2 names too: protocol 2 writes ``__builtin__`` and ``copy_reg``).
PLAIN_PACKAGES = frozenset(
    {"sklearn", "numpy", "scipy", "pandas", "builtins", "__builtin__", "copyreg", "copy_reg",
     "_codecs"}
)  # fmt: skip
# Recorded dtype (pandas name) → MLflow column type; other numeric dtypes widen to these. A
# float32 feature is "double" too: MLflow refuses float64 where "float" is declared ("Can not
# safely convert float64 to float32"), so an ordinary frame of floats was refused, while the
# model is fed float64 whatever the column's width (and MLflow widens float32 to double).
_MLFLOW_TYPES = {"float64": "double", "float32": "double", "bool": "boolean", "boolean": "boolean"}
EXAMPLE_ROWS = 3
EXPORT_TMP_PREFIX = ".tmp-mlflow-"
"""How the name of an export being written starts (``export_mlflow``)."""
MLFLOW_IMPORT_WARNING = r".*Any type hint is inferred as AnyType"


@dataclass(frozen=True)
class Exported:
    """What ``export_mlflow`` wrote: which version, where, and as which flavour."""

    key: str
    version: int
    path: Path
    flavor: str  # "sklearn" (with pyfunc) or "pyfunc" (a python_model carrying our wrapper)
    format: str  # how MLflow stored the model: pickle, skops, or cloudpickle (a python_model)
    foreign_modules: tuple[str, ...]  # why it is not plain scikit-learn (empty when it is)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "version": self.version, "path": str(self.path),
                "flavor": self.flavor, "format": self.format,
                "foreign_modules": list(self.foreign_modules)}  # fmt: skip


def require_mlflow() -> Any:
    """The ``mlflow`` module, or one clear error saying which extra installs it."""
    try:
        with warnings.catch_warnings():
            # MLflow warns about its own type hints while importing pyfunc (3.x)
            warnings.filterwarnings("ignore", MLFLOW_IMPORT_WARNING, UserWarning)
            import mlflow
            import mlflow.pyfunc
            import mlflow.sklearn
    except ImportError:
        raise ManyModelsError(
            "MLflow is not installed: pip install 'manymodels[mlflow]' (or mlflow-skinny)"
        ) from None
    return mlflow


# ---------------------------------------------------------------------------------- export
def export_mlflow(
    reg: Registry,
    key: KeyLike,
    path: Path,
    *,
    version: int | None = None,
    alias: str = "production",
) -> Exported:
    """Write ``key``'s version (by number, or where ``alias`` points) to ``path``, a new or
    empty directory, as an MLflow model (see the module docstring)."""
    mlflow = require_mlflow()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise DataError(f"{path}: exists and is not an empty directory")
    said = missing_parent(path)
    if said is not None:  # a typo'd path: no mkdir -p, as --shuffle-dir
        raise DataError(said)
    loaded = reg.load_model(key, version, alias=alias)  # digest (and signature) verified
    record, model = loaded.version, loaded.model
    schema = record.schema
    pickle_free = "pickle" not in reg.trusted_formats  # the registry refuses pickles
    _check_transform(record, pickle_free)
    foreign = foreign_modules(model)
    wrapped = bool(foreign) or schema.transform is not None  # our pyfunc model: not plain
    common: dict[str, Any] = {
        "signature": feature_signature(schema),
        "input_example": _example(reg, record),
        "pip_requirements": _requirements(with_manymodels=wrapped, with_skops=pickle_free),
        "metadata": {"manymodels": _provenance(record)},
    }
    # written beside its name and renamed into place once whole: a writer killed or failing
    # mid-way left a directory without its MLmodel (or with half a model), which a later
    # export refused as not empty; a dead writer's leftover goes with the next export here
    remove_dead_leftovers(path.parent, EXPORT_TMP_PREFIX)
    tmp = path.with_name(f"{EXPORT_TMP_PREFIX}{writer_tag()}-{os.urandom(4).hex()}-{path.name}")
    try:
        with quiet_mlflow():  # MLflow creates the directory itself
            if wrapped and not pickle_free:
                from manymodels.interop.pyfunc import ManyModelsModel

                python_model = ManyModelsModel(model, record.feature_schema)
                mlflow.pyfunc.save_model(str(tmp), python_model=python_model, **common)
                flavor, format = "pyfunc", "cloudpickle"
            else:
                fed = _fed_as_fitted(model, schema)
                format = "skops" if pickle_free else "pickle"
                how: dict[str, Any] = {"serialization_format": format}
                if pickle_free:
                    how["skops_trusted_types"] = skops_types(fed)
                mlflow.sklearn.save_model(fed, str(tmp), **how, **common)
                flavor = "sklearn"
        try:
            fsync_tree(tmp)  # whole on disk before its name: a power loss never shows less
            os.rename(tmp, path)  # onto an empty directory too; never onto a filled one
            fsync_dir(str(path.parent))  # and the name itself
        except OSError as e:
            raise DataError(f"{path}: cannot put the exported model there ({e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Exported(record.key, record.version, path, flavor, format, tuple(foreign))


def _check_transform(record: ModelVersion, pickle_free: bool) -> None:
    """A version whose model learnt a transformed target answers in the target's units only
    through manymodels' pyfunc model, which turns ``scale`` answers back (``p · spread +
    center``, the partition's numbers, carried in the export). A ``difference`` answer needs
    the previous period's target, which an MLflow request does not carry; and a registry that
    trusts no pickles cannot write the pyfunc model (cloudpickle): both refused, naming why,
    rather than exported answering the transformed target."""
    kind = record.schema.transform_kind
    if kind == "none" or (kind == "scale" and not pickle_free):
        return
    what = f"partition '{record.key}' v{record.version} learnt a target transform ({kind})"
    why = (
        "each answer is a change from the previous period's target, which an MLflow request "
        "does not carry"
        if kind != "scale"
        else "its answers are turned back by manymodels' pyfunc model, stored with cloudpickle, "
        "which this registry's trusted formats refuse"
    )
    raise DataError(
        f"{what}: {why}; serve it with manymodels (LoadedModel.predict, the router), or "
        "export a version trained without target_transform"
    )


def skops_types(model: Any) -> list[str]:
    """The types beyond skops' defaults that loading ``model`` from skops needs, recorded in
    the export for MLflow's loader: only those manymodels trusts (``TRUSTED_TYPES``, the
    float64 step in front among them); any other is refused (``UntrustedArtifact``)."""
    import skops.io as sio

    from manymodels.exceptions import UntrustedArtifact
    from manymodels.serialization import TRUSTED_TYPES

    needed = set(sio.get_untrusted_types(data=sio.dumps(model)))
    refused = sorted(needed - set(TRUSTED_TYPES))
    if refused:
        raise UntrustedArtifact(
            f"this registry trusts no pickles, and {type(model).__name__} cannot be exported "
            f"with skops: it holds {', '.join(refused)}"
        )
    return sorted(needed)


def foreign_modules(model: Any) -> list[str]:
    """The modules outside scikit-learn, numpy and scipy whose classes ``model`` pickles (read
    from the GLOBAL opcodes of a protocol-2 pickle, which name each class's module)."""
    found: set[str] = set()
    for op, arg, _ in pickletools.genops(pickle.dumps(model, protocol=2)):
        if op.name == "GLOBAL":
            module = str(arg).split(" ", 1)[0]
            if module.split(".", 1)[0] not in PLAIN_PACKAGES:
                found.add(module)
    return sorted(found)


def feature_signature(schema: FeatureSchema) -> Any:
    """An MLflow ``ModelSignature`` of the version's features, in order, with their types:
    text features ``string``; numeric ones ``boolean`` as recorded, any float width ``double``
    and any integer dtype ``long`` (MLflow refuses an int column where ``double`` is declared,
    and float64 where ``float`` is, while the model is fed float64 whatever the number's
    type)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from manymodels.features import feature_kinds

    dtypes = schema.dtypes
    cols: list[Any] = []
    for name, numeric in feature_kinds(schema):
        dtype = str(dtypes.get(name, "float64"))
        kind = "string" if not numeric else _MLFLOW_TYPES.get(dtype.lower(), "long")
        if numeric and kind == "long" and "int" not in dtype.lower():
            kind = "double"  # e.g. a nullable Float64 or a decimal dtype
        cols.append(ColSpec(kind, name))
    return ModelSignature(inputs=Schema(cols))


def _fed_as_fitted(model: Any, schema: FeatureSchema) -> Any:
    """``model`` as scikit-learn scores it from a DataFrame: as is when it was fitted on one;
    behind a step that makes the float64 matrix it was fitted on otherwise. A global model
    bound to its partition's key (``KeyBound``, what a skops-only registry exports for a
    version on a global model) is no scikit-learn estimator, which a Pipeline's predict
    refused ("is not an estimator instance") in every export: it takes the frame of its
    features as it is (``GlobalModel.frame``)."""
    if schema.input != "numpy" or not hasattr(model, "fit"):
        return model
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    features = list(schema.features)
    to_matrix = FunctionTransformer(np.ascontiguousarray, kw_args={"dtype": "float64"})
    to_matrix.fit(pd.DataFrame({f: [0.0] for f in features}))  # learns the names, nothing else
    return Pipeline([("features", to_matrix), ("model", model)])


def _example(reg: Registry, record: ModelVersion) -> Any:
    """The version's first training rows, features only, or ``None`` (a version that kept
    none, such as the fallback, or whose derived features are not columns of its rows)."""
    import pandas as pd

    if record.data_sha256 is None:
        return None
    rows = reg.training_rows(record.key, record.version)
    features = list(record.schema.features)
    if not set(features) <= set(rows.columns):
        return None
    example = rows[features].head(EXAMPLE_ROWS).reset_index(drop=True)
    # object column labels: MLflow compares them with a range, which pandas 3 deprecates for
    # its default (Arrow) string labels, with a warning at every export
    example.columns = pd.Index(features, dtype=object)
    return example


def _requirements(*, with_manymodels: bool, with_skops: bool) -> list[str]:
    """Pinned to what exported it; given, so MLflow need not infer them (it loads the model in
    a subprocess to do so, ~10 s)."""
    from importlib.metadata import version

    from manymodels.registry.client import library_versions

    v = library_versions()
    pins = [f"scikit-learn=={v['scikit-learn']}", f"numpy=={v['numpy']}",
            f"pandas=={v['pandas']}"]  # fmt: skip
    if with_skops:
        pins.append(f"skops=={version('skops')}")
    return [*pins, f"manymodels=={v['manymodels']}"] if with_manymodels else pins


def _provenance(record: ModelVersion) -> dict[str, Any]:
    score = record.score if math.isfinite(record.score) else None
    return {
        "key": record.key, "version": record.version, "run_id": record.run_id,
        "estimator": record.estimator, "metric": record.metric, "score": score,
        "artifact_sha256": record.artifact_sha256, "task": record.schema.task,
    }  # fmt: skip


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow logs a warning on every pickle-format save; the format is chosen knowingly (the
    artifact is pickled already) and documented, so it is not repeated at every export. Its
    pyfunc save also warns when there is no input example: a version whose derived features
    are not columns of its training rows has none to give (``_example``), knowingly."""
    log = logging.getLogger("mlflow")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*An input example was not provided", UserWarning)
            yield
    finally:
        log.setLevel(level)


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
