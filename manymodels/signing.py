"""Signed digests: a registry row is trusted only if a key kept outside the registry vouches
for it.

An artifact is verified against the sha256 its version row records, so a tampered *file* is
never unpickled. But whoever can write the database can store a pickle of their own under its
own sha256 and point a version row at it: the database was the only trust anchor. With a
signing key (``MANYMODELS_SIGNING_KEY``, read by the CLI and the router's settings, never by
library code), every version's digests are HMAC-SHA256-signed when it is registered, and
every load checks the signature (``hmac.compare_digest``) before any byte is unpickled.

What is signed is one version's identity and content: its partition key, version number,
model sha256 and training-rows sha256, so a signature cannot be moved to another partition or
version, nor a model swapped for another signed one. A signature reads
``hmac-sha256:<key id>:<hex mac>``; the key id (8 hex characters derived from the key, which
it does not reveal) tells "signed with another key" from "altered".

A version without a signature is refused while a key is set, as pip's hash-checking mode
refuses a requirement without a hash: a switch that accepted unsigned versions would let
anyone who can write the database clear the column and load anything. Versions registered
before the key was set are signed once, deliberately, with ``manymodels sign``.

    signer = Signer.from_env(os.environ)   # at the edge; None without a key
    reg = Registry.open("mmregistry", signer=signer)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from manymodels.exceptions import BadSignature

ENV_SIGNING_KEY = "MANYMODELS_SIGNING_KEY"
ENV_SIGNING_KEY_FILE = "MANYMODELS_SIGNING_KEY_FILE"
MIN_KEY_BYTES = 16  # HMAC-SHA256 keys shorter than this are guessable offline
SCHEME = "hmac-sha256"


@dataclass(frozen=True)
class Signer:
    """Signs and verifies version digests with one secret key (never shown in ``repr``)."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise ValueError(
                f"the signing key must be at least {MIN_KEY_BYTES} bytes long "
                f"(e.g. `openssl rand -hex 32`)"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Signer | None:
        """The key from ``MANYMODELS_SIGNING_KEY`` or the file named by
        ``MANYMODELS_SIGNING_KEY_FILE`` (a mounted secret); ``None`` when neither is set.
        Both at once is an error: one of them would be silently ignored."""
        direct = environ.get(ENV_SIGNING_KEY, "").strip()
        path = environ.get(ENV_SIGNING_KEY_FILE, "").strip()
        if direct and path:
            raise ValueError(f"set {ENV_SIGNING_KEY} or {ENV_SIGNING_KEY_FILE}, not both")
        if path:
            try:
                direct = Path(path).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ValueError(f"{ENV_SIGNING_KEY_FILE}={path}: cannot read it ({e})") from None
            if not direct:
                raise ValueError(f"{ENV_SIGNING_KEY_FILE}={path}: the file is empty")
        return cls(direct.encode("utf-8")) if direct else None

    @cached_property
    def key_id(self) -> str:
        """8 hex characters naming the key in signatures and messages; a one-way function of
        the key (an HMAC of a constant), so it says which key without revealing it."""
        return hmac.new(self.key, b"manymodels key id", hashlib.sha256).hexdigest()[:8]

    def sign(self, key: str, version: int, artifact_sha256: str, data_sha256: str | None) -> str:
        """The signature of one version's digests."""
        return f"{SCHEME}:{self.key_id}:{self._mac(key, version, artifact_sha256, data_sha256)}"

    def verify(
        self,
        signature: str | None,
        key: str,
        version: int,
        artifact_sha256: str,
        data_sha256: str | None,
    ) -> None:
        """Return if ``signature`` vouches for these digests under this key, else raise
        ``BadSignature`` saying whether it is missing, another key's, or wrong."""
        if signature is None:
            raise BadSignature(
                f"version {version} of partition '{key}' is not signed and a signing key is "
                "set: refusing to load it (sign the versions you trust with `manymodels sign`)"
            )
        key_id = key_id_of(signature)
        if key_id is not None and key_id != self.key_id:
            raise BadSignature(
                f"version {version} of partition '{key}' is signed with another key (id "
                f"{key_id[:8]}, this key's is {self.key_id}): refusing to load it"
            )
        scheme, _, rest = signature.partition(":")
        mac = rest.partition(":")[2]
        expected = self._mac(key, version, artifact_sha256, data_sha256)
        if scheme != SCHEME or not hmac.compare_digest(mac.encode(), expected.encode()):
            raise BadSignature(
                f"the signature of version {version} of partition '{key}' does not match its "
                "digests: its registry row was altered; refusing to load it"
            )

    def _mac(self, key: str, version: int, artifact_sha256: str, data_sha256: str | None) -> str:
        # Unambiguous whatever characters a key holds: the key is length-prefixed, and the
        # other fields (an integer, hex digests, "-" for none) hold no newline. One-shot
        # ``hmac.digest`` and no JSON: ~1/3 of the cost, on every cold load of the router.
        message = (
            f"manymodels-v1\n{len(key)}:{key}\n{version}\n{artifact_sha256}\n{data_sha256 or '-'}"
        )
        return hmac.digest(self.key, message.encode("utf-8"), "sha256").hex()


def key_id_of(signature: str | None) -> str | None:
    """The id of the key a well-formed signature names (``None`` for none or garbage)."""
    if signature is None:
        return None
    scheme, _, rest = signature.partition(":")
    key_id, _, mac = rest.partition(":")
    return key_id if scheme == SCHEME and key_id and mac else None


def verify(
    signer: Signer | None,
    signature: str | None,
    key: str,
    version: int,
    artifact_sha256: str,
    data_sha256: str | None,
) -> None:
    """``signer.verify(...)`` when a key is set; nothing without one (behaviour unchanged)."""
    if signer is not None:
        signer.verify(signature, key, version, artifact_sha256, data_sha256)
