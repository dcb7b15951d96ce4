"""Artifact formats: how a fitted model becomes bytes and back, and which formats a reader trusts.

``pickle`` (the default) is the fastest, but loading a pickle runs whatever code its bytes
name: it is safe only where nobody but manymodels can write the store. ``skops`` stores a
model as data (a zip of a JSON schema and arrays) and rebuilds it only from types on an
explicit list, ``TRUSTED_TYPES`` — never ``trusted=True``.

The loader goes by what the bytes are, never by what a database row says: a skops file is a
zip archive (``PK\\x03\\x04``), and anything else is treated as a pickle. A row can be edited,
but a pickle cannot pass for a zip, so a registry that trusts only skops (``manymodels trust
--trusted-formats skops``) refuses a pickle by its first four bytes, before any of it is
unpickled. The formats a registry trusts live in its ``meta`` table (``TRUSTED_META``): every
reader of it — ``Registry.load_model``, batch scoring and forecasting, the router (which reads
the policy again after ``FORMATS_TTL``), the champion a retrain compares against — enforces
them, and a champion refused so is replaced by its challenger (``training.compare``).

skops is an optional dependency (``pip install 'manymodels[skops]'``), imported only when a
skops artifact is written or read.
"""

from __future__ import annotations

import importlib.util
import pickle
from collections.abc import Iterable
from typing import Any, Literal

from manymodels.deferred import IMPORTING
from manymodels.exceptions import (
    ArtifactError,
    ArtifactUnreadable,
    SpecError,
    UntrustedArtifact,
    first_line,
)

Format = Literal["pickle", "skops"]
FORMATS: tuple[Format, ...] = ("pickle", "skops")
ALL_FORMATS: frozenset[str] = frozenset(FORMATS)
TRUSTED_META = "trusted_formats"
"""The ``meta`` row naming the formats a registry trusts (comma-separated); none: all."""

_ZIP_MAGIC = b"PK\x03\x04"

TRUSTED_TYPES: tuple[str, ...] = (
    # manymodels' own estimators (manymodels.candidates): plain attributes (floats, arrays)
    # set on a BaseEstimator, no __setstate__ or __reduce__ of their own.
    "manymodels.candidates.ConstantProbabilityClassifier",
    "manymodels.candidates.LastValueRegressor",
    "manymodels.candidates.MeanOf",  # [selection] ensemble = "top2": a list of estimators
    "manymodels.training.global_fit.GlobalModel",  # an estimator and lists of key values
    "manymodels.training.global_fit.KeyBound",  # a GlobalModel and a key (older top2 MeanOf)
    "manymodels.global_members.GlobalMember",  # a global model's sha256 and a key, in a top2
    "manymodels.training.global_fit.KeyBoundClassifier",
    "manymodels.prior_shift.PriorShifted",  # a global member (by sha256) and two lists
    # the fitted parts of CalibratedClassifierCV ([calibration] in a spec): arrays and floats
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # tree structures (forests, gradient boosting). skops leaves them off its defaults: it
    # cannot check their node indices, and a crafted file could crash the reader (not run
    # code). Here the registry vouches for every artifact — its sha256, and its signature
    # when a signing key is set (manymodels.signing) — before skops reads a byte of it.
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # the float64 step an export to MLflow puts in front of a model fitted on a matrix
    # (``interop.mlflow_io``): a numpy function that copies an array. Without it an export of
    # a skops-only registry could not be imported back into one.
    "numpy.ascontiguousarray",
)
"""Types skops loads beyond its own defaults (scikit-learn's estimators, numpy, scipy):
what the candidates and manymodels' wrappers produce, found with
``skops.io.get_untrusted_types`` on each kind of model a spec can train."""

SKOPS_MISSING = "format = 'skops' needs skops: pip install 'manymodels[skops]'"


def require_skops() -> None:
    """Raise ``SpecError`` (a ``ValueError``) when skops is not installed; imports nothing."""
    if importlib.util.find_spec("skops") is None:
        raise SpecError(SKOPS_MISSING)


def _skops_io() -> Any:
    try:
        import skops.io
    except ImportError:
        raise ArtifactError(
            "a skops artifact needs skops to be written or read: pip install 'manymodels[skops]'"
        ) from None
    return skops.io


def warm_skops(formats: Iterable[str]) -> bool:
    """Import ``skops.io`` now when skops is installed and ``formats`` (a registry's trusted
    formats) are skops alone; whether it did. The router's warm-up calls it so that the first
    skops artifact a request loads does not pay the import (scikit-learn's test utilities come
    with it: ~23,000 objects, seconds of CPU under load).

    A registry that refuses pickles loads only skops artifacts: every cold load needs it. One
    that trusts pickles too (the default) holds pickles unless a spec asked for skops, which
    only a scan of its versions would tell: it is left to its first skops load, as before,
    rather than every default router paying the import — and its ``catch_warnings`` calls
    (hundreds, on a thread beside requests; Python 3.11's warning filters are process-wide,
    see ``manymodels.warning_capture``) — for artifacts it almost never holds."""
    if set(formats) != {"skops"} or importlib.util.find_spec("skops") is None:
        return False
    _skops_io()
    return True


def format_of(data: bytes) -> Format:
    """Which loader ``data`` needs: ``skops`` for a zip archive, ``pickle`` for anything else
    (so an unknown format is never mistaken for a trusted one)."""
    return "skops" if data[:4] == _ZIP_MAGIC else "pickle"


def dumps(model: Any, format: Format = "pickle") -> bytes:
    """The artifact bytes of a fitted model.

    A skops dump is checked to load back with ``TRUSTED_TYPES``: a model holding another type
    (a custom estimator class) raises ``UntrustedArtifact`` here, at training time, rather than
    being stored and refused by every reader later.
    """
    if format == "pickle":
        # joblib's format only pays off for large arrays kept out of band; per-partition
        # models are small, and its pure-Python pickler costs ~100 µs per dump and ~70 µs per
        # load against ~8 µs and ~6 µs here (measured).
        return pickle.dumps(model, protocol=5)
    sio = _skops_io()
    data: bytes = sio.dumps(model)
    untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if untrusted:
        raise UntrustedArtifact(
            f"format = 'skops' cannot store a {type(model).__name__}: it holds "
            f"{', '.join(untrusted)}, which manymodels does not trust skops to load (it "
            "trusts its own models and what skops trusts: scikit-learn's estimators, but not "
            "every fitted part of them); use format = 'pickle' for it"
        )
    return data


def loads(data: bytes, formats: Iterable[str] = ALL_FORMATS, *, what: str = "artifact") -> Any:
    """The model in ``data`` — bytes the caller has already checked against their sha256.

    A format outside ``formats`` is refused (``UntrustedArtifact``) before it is read: a
    pickle in a skops-only registry is never unpickled. ``what`` names the artifact in
    messages (``"partition 'store=2' v3"``).
    """
    found = format_of(data)
    require_loadable(found, formats, what=what)
    sio = _skops_io() if found == "skops" else None
    try:
        with IMPORTING:  # an unpickle may import its classes' modules: not beside the warm-up
            if sio is None:
                return pickle.loads(data)  # trusted: the registry allows pickles, sha256 checked
            return sio.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as e:
        if sio is not None and isinstance(e, sio.exceptions.UntrustedTypesFoundException):
            raise UntrustedArtifact(f"{what} holds a type manymodels does not trust: {e}") from None
        # bytes of a trusted format that do not load: a class renamed since it was pickled,
        # a damaged or crafted skops file (BadZipFile, KeyError, JSONDecodeError…). Raised
        # as they came, they reached `export`, `forecast`, `import` and Registry.load_model's
        # callers as a traceback; only batch scoring and the router had said why.
        why = f"{type(e).__name__}: {first_line(e)}"
        raise ArtifactUnreadable(f"{what}: its artifact does not load ({why})", why) from None


def require_loadable(found: str, formats: Iterable[str], *, what: str = "artifact") -> None:
    """Refuse (``UntrustedArtifact``) an artifact of format ``found`` outside ``formats``: checked
    before its bytes are read, and again whenever a loaded copy is reused (a global model shared
    by many versions, after the registry's policy changed)."""
    allowed = frozenset(formats)
    if found not in allowed:
        raise UntrustedArtifact(
            f"{what} is a {found} artifact, and this registry trusts only "
            f"{describe(allowed)} artifacts: refusing to load it (retrain it with "
            f"[artifacts] format = '{sorted(allowed)[0]}', or trust {found} artifacts too: "
            f"manymodels trust --trusted-formats {','.join(sorted(allowed | {found}))})"
        )


def require_trusted_format(format: str, trusted: frozenset[str]) -> None:
    """Refuse (``UntrustedArtifact``) to train models in a format their registry would refuse
    to load: before anything is trained or written."""
    if format not in trusted:
        raise UntrustedArtifact(
            f"this registry trusts only {describe(trusted)} artifacts, and the spec stores "
            f"{format}: set [artifacts] format = '{sorted(trusted)[0]}' in the spec"
        )


def artifact_libraries(libraries: dict[str, str], format: str) -> dict[str, str]:
    """What a version records of the libraries that made it: with skops, skops' version too
    (so the row says which format it was stored in; ``ModelVersion.artifact_format``)."""
    if format != "skops":
        return libraries
    from importlib.metadata import version

    return {**libraries, "skops": version("skops")}


def parse_formats(text: str | Iterable[str] | None) -> frozenset[str]:
    """Formats from a ``meta`` value or a CLI option (``"skops"``, ``"pickle,skops"``); none
    given means all. An unknown name is a ``ValueError`` naming the known ones."""
    if text is None:
        return ALL_FORMATS
    names = text.split(",") if isinstance(text, str) else list(text)
    found = frozenset(n.strip().lower() for n in names if n.strip())
    unknown = sorted(found - ALL_FORMATS)
    if unknown or not found:
        raise ValueError(
            f"unknown artifact format(s) {', '.join(unknown) or '(none given)'}: "
            f"choose from {', '.join(FORMATS)}"
        )
    return found


def describe(formats: Iterable[str]) -> str:
    """``"skops"``, ``"pickle and skops"``: formats as messages name them."""
    return " and ".join(f for f in FORMATS if f in set(formats))
