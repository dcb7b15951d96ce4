"""A cache miss's load, and why a version is not served: every refusal in one place.

``ModelService``'s cache loads a version through ``load_for_serving``. Whatever keeps its
artifact from answering (a failed signature or sha256 check, a format the registry does not
trust, an artifact that does not load or is missing) becomes a ``ModelNotServed``
(``ModelCorrupted`` for a sha256 mismatch: a 500, the store's fault) that names the artifact,
logged once here. Kept apart from the service, which caches and scores: naming a missing
artifact reads the version's record, which the per-request path never does.
"""

from __future__ import annotations

import logging

from manymodels.artifacts import LocalArtifactStore
from manymodels.exceptions import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactStoreUnavailable,
    BadSignature,
    RegistryError,
    UntrustedArtifact,
)
from manymodels.registry.client import Registry
from serving.errors import ModelCorrupted, ModelNotServed
from serving.served import ServedModel, load_served

logger = logging.getLogger("manymodels.serving")


def load_for_serving(registry: Registry, key: str, version: int) -> ServedModel:
    """``load_served``, with each reason the model cannot answer said as a ``ModelNotServed``
    or ``ModelCorrupted`` (both 500) and logged."""
    try:
        return load_served(registry, key, version)
    except BadSignature as e:
        logger.error("refusing to serve %s v%d: %s", key, version, e)
        raise ModelNotServed(
            f"the artifact of partition '{key}' version {version} failed its signature "
            "check; model not served"
        ) from e
    except ArtifactCorrupted as e:
        logger.error("refusing to serve %s v%d: %s", key, version, e)
        raise ModelCorrupted(
            f"the artifact of partition '{key}' version {version} failed its sha256 check; "
            "model not served"
        ) from e
    except UntrustedArtifact as e:  # a pickle in a skops-only registry: never unpickled
        logger.error("refusing to serve %s v%d: %s", key, version, e)
        raise ModelNotServed(f"{e}; model not served") from e
    except ModelNotServed as e:  # its artifact does not load (``load_served``)
        logger.error("refusing to serve %s v%d: %s", key, version, e)
        raise
    except ArtifactNotFound as e:
        logger.error("cannot serve %s v%d: %s", key, version, e)
        raise ModelNotServed(
            f"{missing_artifact(registry, key, version, e.digest)}; model not served"
        ) from e
    except ArtifactStoreUnavailable:  # an outage to retry (503), not this model's fault
        raise
    except ArtifactError as e:  # bytes that cannot be read (EIO, permissions, a directory
        # in the way): the same 500 as any model not served, naming partition and version as
        # the others do (the store's message names only the artifact's sha256)
        logger.error("cannot serve %s v%d: %s", key, version, e)
        raise ModelNotServed(
            f"the artifact of partition '{key}' version {version} cannot be read ({e}); "
            "model not served"
        ) from e


def missing_artifact(registry: Registry, key: str, version: int, digest: str | None) -> str:
    """Which artifact a load missed: the version's own, a global model its ``top2`` ensemble
    names (``members``), or the global model it serves — the fix differs (a retrain of the
    partition brings back only its own)."""
    try:  # the store's read: ``key`` is already the stored form
        record = registry.store.get_version(key, version)
    except RegistryError:
        record = None
    what = f"partition '{key}' version {version}"
    if record is not None and digest is not None and digest in record.members:
        return (
            f"the global model {digest[:12]} that {what} averages with its own (a top2 "
            "ensemble member) is missing from the artifact store"
        )
    if record is not None and record.selection.chosen == "global":
        return (
            f"the global model {record.artifact_sha256[:12]} that {what} serves (one model "
            "over every partition's rows) is missing from the artifact store"
        )
    return f"the artifact of {what} is missing from the artifact store"


def local_registry(registry: Registry) -> bool:
    """A SQLite file and a local artifact directory: a cache miss reads only local files
    (~0.1 ms from the page cache), never waiting on a network."""
    return registry.store.engine.dialect.name == "sqlite" and isinstance(
        registry.artifacts, LocalArtifactStore
    )
