"""The address of an artifact: the sha256 of its bytes, and the check that a name is one.

Every store builds its paths and object names from a validated hex digest only, so that a
partition key, or any text a caller passes, never reaches the filesystem or the bucket; and
reading a digest back from a listing tells an artifact from anything else kept beside it. One
definition for the local store (``manymodels.artifacts``), the fsspec one
(``manymodels.artifact_stores``) and what a killed writer leaves (``artifact_leftovers``).
"""

from __future__ import annotations

import hashlib
import re

from manymodels.exceptions import ArtifactError

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_digest(digest: str) -> str:
    if not SHA256_HEX.fullmatch(digest):
        raise ArtifactError(f"'{digest[:80]}' is not a sha256 hex digest")
    return digest
