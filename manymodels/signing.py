"""Signed digests: a registry row is trusted only if a key kept outside the registry vouches
for it.

An artifact is verified against the sha256 its version row records, so a tampered *file* is
never unpickled. But whoever can write the database can store a pickle of their own under its
own sha256 and point a version row at it: the database was the only trust anchor. With a
signing key (``MANYMODELS_SIGNING_KEY``, read by the CLI and the router's settings, never by
library code), every version's digests are HMAC-SHA256-signed when it is registered, and
every load checks the signature (``hmac.compare_digest``) before any byte is unpickled.

What is signed is one version's identity and content: its partition key, version number,
model sha256, training-rows sha256 and the sha256 of its feature schema (feature order,
dtypes, classes, a decision threshold: how the model is fed and its output labelled), so a
signature cannot be moved to another partition or version, nor a model swapped for another
signed one, nor a signed model fed differently. The schema's digest is of its canonical form
(``schema_sha256``: the parsed dict dumped with sorted keys), so a verifier holding the dict and
one holding the stored text agree. A signature reads ``hmac-sha256-v2:<key id>:<hex mac>``; the
key id (8 hex characters derived from the key, which it does not reveal) tells "signed with
another key" from "altered".

The first format (``hmac-sha256:…``, before the schema was signed) is refused at every load
with a message saying to run ``manymodels sign``, which re-signs such a version only when its
old signature verifies with the key (``Signer.upgrade``): the schema is then vouched for as it
is now, as signing an unsigned version vouches for it.

The first signature written to a registry records the key id in its ``meta`` table
(``SIGNED_META``): a process that opens it without a key can then say that nothing is being
verified (a warning, not a refusal: a database writer can delete that row, so it guards
against a forgotten key, not an attacker).

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
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from manymodels.exceptions import BadSignature, UnsignedVersion
from manymodels.secrets import secret_from_env

ENV_SIGNING_KEY = "MANYMODELS_SIGNING_KEY"
ENV_SIGNING_KEY_FILE = "MANYMODELS_SIGNING_KEY_FILE"
MIN_KEY_BYTES = 16  # HMAC-SHA256 keys shorter than this are guessable offline
SCHEME = "hmac-sha256-v2"  # signs the feature schema too
OLD_SCHEME = "hmac-sha256"  # the first format: refused at load, upgraded by ``manymodels sign``
SIGNED_META = "signing_key_id"  # ``meta`` row naming the key of the first signature written

Schema = Mapping[str, Any] | str  # a feature schema, parsed or as the stored JSON text


def schema_sha256(schema: Schema) -> str:
    """The sha256 of a feature schema's canonical form: the parsed dict as
    ``json.dumps(schema, sort_keys=True, separators=(",", ":"))``, so the dict and any text
    encoding of it give one digest. Stored texts are cached (the versions of a run usually
    share one schema text; a router's cold loads meet the same few)."""
    if isinstance(schema, str):
        return _text_sha256(schema)
    return _canonical_sha256(schema)


@lru_cache(maxsize=1024)
def _text_sha256(text: str) -> str:
    try:
        schema = json.loads(text)
    except ValueError:  # no signed schema reads so: a refusal (BadSignature), not a crash
        return hashlib.sha256(b"not json\n" + text.encode("utf-8", "replace")).hexdigest()
    return _canonical_sha256(schema)


def _canonical_sha256(schema: Mapping[str, Any]) -> str:
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
        secret = secret_from_env(environ, ENV_SIGNING_KEY, ENV_SIGNING_KEY_FILE)
        return cls(secret.text.encode("utf-8")) if secret is not None else None

    @cached_property
    def key_id(self) -> str:
        """8 hex characters naming the key in signatures and messages; a one-way function of
        the key (an HMAC of a constant), so it says which key without revealing it."""
        return hmac.new(self.key, b"manymodels key id", hashlib.sha256).hexdigest()[:8]

    def sign(
        self,
        key: str,
        version: int,
        artifact_sha256: str,
        data_sha256: str | None,
        schema: Schema,
    ) -> str:
        """The signature of one version's digests and feature schema."""
        mac = self._mac(key, version, artifact_sha256, data_sha256, schema_sha256(schema))
        return f"{SCHEME}:{self.key_id}:{mac}"

    def verify(
        self,
        signature: str | None,
        key: str,
        version: int,
        artifact_sha256: str,
        data_sha256: str | None,
        schema: Schema,
    ) -> None:
        """Return if ``signature`` vouches for these digests and this feature schema under
        this key, else raise ``BadSignature`` saying whether it is missing, in the old format,
        another key's, or wrong."""
        if signature is None:
            raise UnsignedVersion(
                f"version {version} of partition '{key}' is not signed and a signing key is "
                "set: refusing to load it (sign the versions you trust with `manymodels sign`)"
            )
        if signature.startswith(f"{OLD_SCHEME}:"):
            raise BadSignature(
                f"version {version} of partition '{key}' carries a signature in the old format, "
                "which does not cover its feature schema: refusing to load it (run "
                "`manymodels sign` again to re-sign it)"
            )
        expected = self._mac(key, version, artifact_sha256, data_sha256, schema_sha256(schema))
        self._check(
            signature, expected, f"version {version} of partition '{key}'",
            "digests: its registry row was altered",
        )  # fmt: skip

    def sign_global(self, artifact_sha256: str) -> str:
        """The signature of a global model a run fitted (its run's ``options["global"]``
        record): a retrain of named partitions loads that artifact by the sha256 the record
        names, which no version's signature covers."""
        return f"{SCHEME}:{self.key_id}:{self._global_mac(artifact_sha256)}"

    def verify_global(self, signature: object, artifact_sha256: str) -> None:
        """Return if ``signature`` vouches for the global model ``artifact_sha256`` under this
        key, else raise ``BadSignature`` (missing, another key's, or wrong)."""
        short = artifact_sha256[:12]
        if not isinstance(signature, str):
            raise UnsignedVersion(
                f"global model {short} is not signed and a signing key is set: refusing to "
                "load it (a full training run fits and signs the global models again)"
            )
        self._check(
            signature, self._global_mac(artifact_sha256), f"global model {short}",
            "sha256: its run's record was altered",
        )  # fmt: skip

    def _check(self, signature: str, expected: str, subject: str, altered: str) -> None:
        """A signature present, against the MAC ``expected`` of what it signs: another key's,
        or not this scheme's MAC, is a ``BadSignature`` naming ``subject`` (a version, a
        global model) and what ``altered`` says a mismatch means."""
        key_id = key_id_of(signature)
        if key_id is not None and key_id != self.key_id:
            raise BadSignature(
                f"{subject} is signed with another key (id {key_id[:8]}, this key's is "
                f"{self.key_id}): refusing to load it"
            )
        scheme, _, rest = signature.partition(":")
        mac = rest.partition(":")[2]
        if scheme != SCHEME or not hmac.compare_digest(mac.encode(), expected.encode()):
            raise BadSignature(
                f"the signature of {subject} does not match its {altered}; refusing to load it"
            )

    def _global_mac(self, artifact_sha256: str) -> str:
        # its own prefix: no version's message ("manymodels-v1/-v2\n…") reads the same, so a
        # version's signature is never a global model's, nor the other way round
        message = f"manymodels-global-v1\n{artifact_sha256}"
        return hmac.digest(self.key, message.encode("utf-8"), "sha256").hex()

    def upgrade(
        self,
        signature: str | None,
        key: str,
        version: int,
        artifact_sha256: str,
        data_sha256: str | None,
        schema: Schema,
    ) -> str | None:
        """The new-format signature of a version whose old-format signature verifies with
        this key, else ``None`` (not old-format, another key's, or altered: never re-signed).
        The old format never vouched for the schema; the new signature vouches for it as it
        is now, as ``manymodels sign`` does for an unsigned version."""
        if signature is None or not signature.startswith(f"{OLD_SCHEME}:"):
            return None
        key_id, _, mac = signature[len(OLD_SCHEME) + 1 :].partition(":")
        olds = (
            self._mac(key, version, artifact_sha256, data_sha256, None),
            self._first_mac(key, version, artifact_sha256, data_sha256),
        )
        if key_id != self.key_id or not any(
            hmac.compare_digest(mac.encode(), old.encode()) for old in olds
        ):
            return None
        return self.sign(key, version, artifact_sha256, data_sha256, schema)

    def _first_mac(
        self, key: str, version: int, artifact_sha256: str, data_sha256: str | None
    ) -> str:
        """The first format's mac as the first signing releases computed it, over a JSON
        list (until 141d04d; the same ``hmac-sha256:`` prefix): a registry they signed
        could never be re-signed, and every load refused its models for good."""
        message = json.dumps(["manymodels-v1", key, version, artifact_sha256, data_sha256])
        return hmac.new(self.key, message.encode("utf-8"), hashlib.sha256).hexdigest()

    def _mac(
        self,
        key: str,
        version: int,
        artifact_sha256: str,
        data_sha256: str | None,
        schema_digest: str | None,
    ) -> str:
        # Unambiguous whatever characters a key holds: the key is length-prefixed, and the
        # other fields (an integer, hex digests, "-" for none) hold no newline. One-shot
        # ``hmac.digest``: ~1/3 of the cost, on every cold load of the router. A schema
        # digest of ``None`` is the first format's message (only ``upgrade`` checks it).
        message = f"{len(key)}:{key}\n{version}\n{artifact_sha256}\n{data_sha256 or '-'}"
        if schema_digest is None:
            message = f"manymodels-v1\n{message}"
        else:
            message = f"manymodels-v2\n{message}\n{schema_digest}"
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
    schema: Schema,
) -> None:
    """``signer.verify(...)`` when a key is set; nothing without one (behaviour unchanged,
    and the schema is not even hashed)."""
    if signer is not None:
        signer.verify(signature, key, version, artifact_sha256, data_sha256, schema)


def unverified_warning(signed_by: str | None, signer: Signer | None, where: str) -> str | None:
    """What to tell whoever opens a registry holding signed versions (``signed_by``: the key
    id ``meta`` records) without a key: nothing is verified, silently otherwise. A warning,
    not a refusal: the marker lives in the database a key guards against, so a writer could
    delete it; it catches a forgotten key, which is the common way verification goes off."""
    if signed_by is None or signer is not None:
        return None
    return (
        f"registry {where} holds signed versions (key id {signed_by}) but no signing key is "
        f"set: signatures are NOT checked (set {ENV_SIGNING_KEY} or {ENV_SIGNING_KEY_FILE})"
    )


def global_refusal(signer: Signer | None, record: Mapping[str, Any]) -> str | None:
    """Why a retrain of named partitions must not load the global model a run's record
    (``options["global"]``) names, with a signing key: the record lives in the runs table,
    which the key does not guard, so a database writer could point its sha256 at a pickle of
    their own — unpickled by the retrain, and signed into each version that chose it.
    ``None``: no key, or the key vouches for the record."""
    if signer is None:
        return None
    try:
        signer.verify_global(record.get("signature"), str(record.get("sha256")))
    except BadSignature as e:
        return f"{type(e).__name__}: {e}"
    return None
