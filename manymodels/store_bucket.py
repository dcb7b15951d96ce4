"""Whether an object store's bucket exists, asked before a new registry is made over it.

A first ``train`` into ``s3://models/prod`` whose bucket is missing (a typo, or not made yet)
made the registry's tables in the empty database, then failed at its first write into the
store (``cannot mark … as this registry's``: S3 says ``NoSuchBucket``, a server that may not
make buckets for this key ``AccessDenied``). The database then held an empty registry, which
``serve`` took for one to route: a router of no partition started where the empty database
had been refused. One ``HeadBucket``, only when a registry is about to be made, tells it
before anything is; and a store refused for holding none of a registry's models
(``ownership.check_store``) says so when that is why. A local store that cannot be made (a
path under a file, a read-only mount) is told the same way (``require_new_store``): the run
was refused at its first mark (``cannot mark … as this registry's``), once the database was
made, and a new SQLite file stayed behind with its tables and no run.
"""

from __future__ import annotations

import os
from pathlib import Path

from manymodels.artifact_stores import FsspecArtifactStore
from manymodels.artifacts import ArtifactStore, LocalArtifactStore
from manymodels.exceptions import ArtifactError
from manymodels.s3_client import is_s3


def require_new_store(store: ArtifactStore) -> None:
    """``ArtifactError`` when a new registry's store is known not to be writable: its bucket
    missing, or a local directory that cannot be made there. Asked before the registry's
    database (a new SQLite file) is made, so a refusal leaves nothing (``SqlStore``)."""
    require_bucket(store)
    if isinstance(store, LocalArtifactStore):
        why = unmakeable(store.root)
        if why is not None:
            raise ArtifactError(f"the artifact store {store.url} cannot be written: {why}")


def unmakeable(root: Path) -> str | None:
    """Why the directory ``root`` cannot be made or written (a file in its place or in its
    path, or it or its nearest existing parent read-only or not this user's to write:
    ``read_only_reason``), or ``None``. Only the path is looked at: nothing is made to find
    out. A store directory that is there but read-only (a read-only mount's) was let through,
    and the writer's own check refused it once the new database was made: a registry file
    with its tables and no run stayed, and the refusal named the registry as read-only."""
    from manymodels.registry.engine import read_only_reason

    parent = next((p for p in [root, *root.parents] if os.path.lexists(p)), None)
    if parent is None:
        return None
    if not parent.is_dir():
        return f"{parent} is not a directory"
    why = read_only_reason(str(parent))
    return f"{parent} is read-only ({why})" if why is not None else None


def require_bucket(store: ArtifactStore) -> None:
    """``ArtifactError`` naming the bucket when the store's server says it does not exist."""
    bucket = missing_bucket(store)
    if bucket is not None:
        raise ArtifactError(
            f"the artifact store {store.url} cannot be written: its bucket '{bucket}' does not "
            "exist (make it, or correct --artifacts / MANYMODELS_ARTIFACTS)"
        )


def missing_bucket(store: ArtifactStore) -> str | None:
    """The store's bucket when its server says it does not exist, else ``None``. Only a
    definite "no such bucket" counts: a key allowed its prefix alone may not ask (403), and a
    server that does not answer is said by what asked the store before; either way the
    store's first use says what is wrong, as before."""
    if not isinstance(store, FsspecArtifactStore) or not is_s3(store.fs):
        return None
    bucket, _, _ = store.fs.split_path(store.url)  # s3fs's own reading: as its requests name it
    try:
        store.fs.invalidate_cache(bucket)
        store.fs.info(bucket)
    except FileNotFoundError:
        return bucket
    except Exception:  # not ours to judge: the store's first use says it
        return None
    return None
