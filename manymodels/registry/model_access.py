"""How the registry hands out a version's model: every load checks the version first.

A model is loaded only after its signature (with a signing key), its bytes' sha256 and their
format against the formats this registry trusts (``manymodels trust``) have been checked, and
a promotion checks the same things without loading anything: production once pointed at a
model that was gone or refused, and every reader failed on it. ``Registry`` takes these
methods from ``ModelAccess``; they stand apart from its reads and alias moves because they
are the registry's one gate between stored bytes and code that runs.
"""

from __future__ import annotations

import operator
import reprlib
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, SupportsIndex

from manymodels import holiday_sets
from manymodels.artifacts import ArtifactStore, deserialize
from manymodels.exceptions import (
    ArtifactError,
    ArtifactStoreUnavailable,
    BadSignature,
    DataError,
    RegistryError,
    VersionNotFound,
)
from manymodels.global_members import GlobalModels, linked
from manymodels.key_selection import KeyLike
from manymodels.registry.entities import ModelVersion
from manymodels.registry.loaded import LoadedModel
from manymodels.registry.store import SqlStore
from manymodels.serialization import (
    ALL_FORMATS,
    TRUSTED_META,
    format_of,
    parse_formats,
    require_loadable,
)
from manymodels.signing import SIGNED_META, Signer

FORMATS_TTL = 1.0
"""Seconds a registry's trusted formats are remembered before they are read again."""


def version_number(version: object) -> int:
    """``version`` as a plain ``int``: any integral is one (``numpy.int64``, what a scored
    frame's ``model_version`` column holds: SQLite would bind it as a BLOB and find no such
    version). Text, a float or a bool is a caller's mistake (``DataError``), not a version
    that does not exist."""
    if not isinstance(version, bool):
        try:
            return operator.index(version)  # type: ignore[arg-type]
        except TypeError:
            pass
    shown = reprlib.repr(version)
    raise DataError(f"a version is a whole number (1, 2, …), not {type(version).__name__} {shown}")


def alias_name(alias: object) -> str:
    """``alias`` as a name: ``None`` is production, the alias a caller who names none means
    (the router's route without ``?alias=``, ``mm.score``, ``mm.forecast``,
    ``Registry.load_model``), where it read "no 'None' model for partition(s) …"; anything
    but text is a caller's mistake (``DataError``), not an alias no partition has."""
    if alias is None:
        return "production"
    if not isinstance(alias, str):
        shown = reprlib.repr(alias)
        raise DataError(
            f"an alias is a name ('production', 'candidate', …), not {type(alias).__name__} {shown}"
        )
    return alias


def one_version_choice(
    version: object, alias: str | None, *, names: tuple[str, str] = ("--version", "--alias")
) -> None:
    """A version by number and an alias both given: one of them would be ignored without a
    word, so ``export``, ``forecast`` and the router's routes refuse it alike (``names``: how
    the caller spells the two, ``?version=`` and ``?alias=`` for a route)."""
    if version is not None and alias is not None:
        raise DataError(f"give {names[0]} or {names[1]}, not both")


class ModelAccess:
    """``Registry``'s loads and the checks before them (``Registry.__init__`` sets the
    state below)."""

    store: SqlStore
    artifacts: ArtifactStore
    signer: Signer | None
    _formats: tuple[float, frozenset[str]] | None

    if TYPE_CHECKING:  # ``Registry``'s own

        def require_writable(self, doing: str) -> None: ...

        def get_version(
            self,
            key: KeyLike,
            version: SupportsIndex | None = None,
            *,
            alias: str | None = "production",
        ) -> ModelVersion: ...

    def load_model(
        self,
        key: KeyLike,
        version: SupportsIndex | None = None,
        *,
        alias: str | None = "production",
    ) -> LoadedModel:
        """The fitted estimator of a partition, verified against its sha256 before unpickling."""
        record = self.get_version(key, version, alias=alias)
        return LoadedModel(self.load_artifact(record), record)

    def training_rows(
        self,
        key: KeyLike,
        version: SupportsIndex | None = None,
        *,
        alias: str | None = "production",
    ) -> Any:
        """The input rows a version was trained on, as a pandas DataFrame (sha256-verified).

        Raises ``ArtifactNotFound`` for a version that kept none (the fallback, or a version
        trained before rows were kept)."""
        from manymodels.exceptions import ArtifactNotFound
        from manymodels.training.history import decode_rows

        record = self.get_version(key, version, alias=alias)
        if record.data_sha256 is None:
            raise ArtifactNotFound(
                f"version {record.version} of '{record.key}' kept no training rows"
            )
        self.verify(record)
        return decode_rows(self.artifacts.get(record.data_sha256), record.key)

    def load_artifact(
        self, record: ModelVersion, shared: MutableMapping[str, Any] | None = None
    ) -> Any:
        """The model of ``record``: its signature checked (with a signing key), then its bytes
        against their sha256, then their format against the formats this registry trusts
        (read now: a policy set since the registry opened applies), and only then loaded.
        ``shared`` holds global models by sha256 (an ensemble's members): pass one mapping to
        many calls to read each once."""
        self.verify(record)
        what = f"partition '{record.key}' v{record.version}"
        data = self.artifacts.get(record.artifact_sha256)
        model = deserialize(data, self.trusted_formats, what=what)
        from manymodels.classes import dates_as_text_classes

        dates_as_text_classes(model)  # a version from before dates were text classes
        members = GlobalModels(self.artifacts.get, self.trusted_formats, shared, owner=what)
        model = linked(model, members)
        if record.schema.bound is not None:  # a global model: bound to this partition's key
            from manymodels.training.global_fit import bind_key

            model = bind_key(model, record.schema.bound)
        return model

    @property
    def trusted_formats(self) -> frozenset[str]:
        """The artifact formats this registry loads (``manymodels.serialization``): every
        format unless ``manymodels trust`` narrowed them (``"skops"`` forbids
        pickles). Read again from the database once ``FORMATS_TTL`` seconds have passed, so
        a long-lived reader such as the router follows a policy set after it started, without
        a query on every cold load (a SQLite connection costs ~0.1-3 ms)."""
        cached = self._formats
        if cached is not None and time.monotonic() - cached[0] < FORMATS_TTL:
            return cached[1]
        try:
            found = parse_formats(self.store.get_meta(TRUSTED_META))
        except ValueError as e:  # written by a newer manymodels: trust nothing it does not know
            raise RegistryError(f"registry {self!r}: {TRUSTED_META} {e}") from None
        self._formats = (time.monotonic(), found)
        return found

    def set_trusted_formats(self, formats: frozenset[str]) -> None:
        """Make this registry load only ``formats`` from now on (all of them: no limit).
        Artifacts already stored in another format stay, and are refused when loaded."""
        self.require_writable("cannot change the formats it trusts")
        chosen = parse_formats(formats)
        value = None if chosen == ALL_FORMATS else ",".join(sorted(chosen))
        self.store.set_meta(TRUSTED_META, value)
        self._formats = (time.monotonic(), chosen)
        self.artifacts.formats = chosen

    def verify(self, record: ModelVersion) -> None:
        """Raise ``BadSignature`` unless the signing key vouches for ``record``'s digests; a
        no-op without a key. A version written since schema 13 was signed with its holidays
        named by hash, as its row holds them (``holiday_sets``), while ``feature_schema``
        shows them inline: checked as shown, every such version of a signed registry was
        "altered" (forecast, promote, ``load_artifact`` refused). The stored form is checked
        first, the inline one (a version written before) where it fails: the hash vouches
        for the very dates shown, as ``holiday_sets.remember`` checks them."""
        if self.signer is None:
            return
        stored, named = holiday_sets.stored_form(record.feature_schema)
        digests = (record.key, record.version, record.artifact_sha256, record.data_sha256)
        try:
            self.signer.verify(record.signature, *digests, stored)
        except BadSignature:
            if named is None:  # no holidays: one form only
                raise
            self.signer.verify(record.signature, *digests, record.feature_schema)

    @property
    def signed_by(self) -> str | None:
        """The key id of the first signature written to this registry (``meta``), or
        ``None`` if none ever was: a registry that has it, opened without a key, verifies
        nothing (``signing.unverified_warning``)."""
        return self.store.get_meta(SIGNED_META)

    def sign_unsigned(self) -> list[tuple[str, int]]:
        """Sign every version registered without a signature (before a key was set); returns
        their ``(key, version)``. Signing vouches for the rows as they are now: check the
        registry (``manymodels doctor``) first."""
        if self.signer is None:
            raise RegistryError("no signing key is set: nothing to sign with")
        return self.store.sign_unsigned(self.signer)

    def sign_global_models(self) -> int:
        """Sign the unsigned records of the global models runs fitted (those a retrain of
        some partitions loads); returns how many. Like ``sign_unsigned``, it vouches for them
        as they are now."""
        if self.signer is None:
            raise RegistryError("no signing key is set: nothing to sign with")
        self.require_writable("cannot sign it")
        return self.store.sign_global_records(self.signer)

    def _require_servable(self, record: ModelVersion) -> None:
        """Raise ``ArtifactError`` unless every reader could load ``record``: checked as they
        check before loading (signature, sha256, a trusted format, its global members), with
        nothing unpickled. Production once moved to a model that was gone or refused, and
        every reader failed on it."""
        self.verify(record)
        what = f"partition '{record.key}' v{record.version}"
        for digest in (record.artifact_sha256, *record.members):  # members: an ensemble's
            data = self.artifacts.get(digest)  # present, and its sha256 checked
            require_loadable(format_of(data), self.trusted_formats, what=what)

    def _servable(self, key: str, version: int) -> bool:
        """Whether every reader could load the version (a rollback skips those that are not).
        An artifact store that does not answer says nothing about the version, so it is
        raised, not taken for a verdict: a rollback during an object-store outage answered
        "no earlier version … that can be loaded" (a 409 clients do not retry), and one whose
        store failed a single read skipped that version for an older one."""
        try:
            self._require_servable(self.store.get_version(key, version))
        except ArtifactStoreUnavailable:
            raise
        except (ArtifactError, VersionNotFound):
            return False
        return True
