"""How a user moves a partition's aliases through ``Registry``: promote, roll back, retire,
set, repair.

Each move is checked here against what readers need (a promotion's version must be
servable; a rollback skips versions no reader could load) and then made by the SQL store in
one write transaction (``registry.alias_moves``). ``Registry`` takes these methods from
``AliasControl``: they are its one job that writes, apart from its reads and loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, SupportsIndex, cast

from manymodels.exceptions import (
    ArtifactError,
    ArtifactStoreUnavailable,
    DataError,
    NothingToRollBack,
)
from manymodels.key_selection import KeyLike
from manymodels.reasons import given
from manymodels.registry.entities import RETIRED, AliasMove
from manymodels.registry.model_access import ModelAccess, version_number

if TYPE_CHECKING:
    from manymodels.registry.client import Registry

SET_BY_HAND = "set by hand"
"""The reason ``Registry.set_alias`` records when none (or a blank one) is given."""


class AliasControl(ModelAccess):
    """``Registry``'s alias moves (``Registry.__init__`` sets the state they use)."""

    if TYPE_CHECKING:  # ``Registry``'s own

        def key(self, key: KeyLike) -> str: ...

        def alias_history(self, key: KeyLike, alias: str | None = None) -> list[AliasMove]: ...

    def promote(
        self,
        key: KeyLike,
        version: SupportsIndex,
        *,
        reason: str = "manual promotion",
    ) -> AliasMove:
        """Point ``production`` at ``version`` (one transaction, kept in the alias history).

        Idempotent: promoting the version production already points at writes nothing and
        returns the move that put it there (decided inside the write transaction, so two
        concurrent promotions of the same version write one move).

        The version is checked first as every reader checks it before loading (signature,
        sha256, a format this registry trusts, its global members present): production once
        pointed at a model that was gone or refused, and every reader failed on it
        (``ArtifactError`` now, nothing moved). Nothing is unpickled to promote.
        """
        canonical = self.key(key)
        number = version_number(version)
        try:
            self._require_servable(self.store.get_version(canonical, number))
        except ArtifactStoreUnavailable:
            raise
        except ArtifactError:
            self._check_store()  # "holds none of this registry's models", if that is why
            raise
        return self.store.set_alias(
            canonical,
            "production",
            number,
            reason=given(reason) or "manual promotion",  # blank: as none given
            action="promote",
            idempotent=True,
        )

    def rollback(self, key: KeyLike, *, reason: str | None = None) -> AliasMove:
        """Move ``production`` back to the version before its latest forward move; rolling
        back twice goes two versions back; versions deleted by ``gc``, and versions no reader
        could load (``_require_servable``: an artifact gone, a format no longer trusted), are
        skipped. Raises ``NothingToRollBack`` when no earlier version is left.

        The versions production has pointed at are checked before the move's transaction
        (reading artifacts under the write lock would hold every writer): one production
        reached in the meantime is checked by no one, as before."""
        canonical = self.key(key)
        been = {m.to_version for m in self.alias_history(canonical, "production")}
        skip = {v for v in been if v is not None and not self._servable(canonical, v)}
        try:
            return self.store.rollback_alias(canonical, reason=given(reason), skip=skip)
        except NothingToRollBack:
            # a misspelt --artifacts loads none: "nothing to roll back to" misled. Asked only
            # now: a store that lost the production artifacts (restored from an older backup)
            # still rolls back to the earlier versions it holds
            if skip:
                self._check_store()
            raise

    def retire(self, keys: Sequence[KeyLike], *, reason: str | None = None) -> list[AliasMove]:
        """Take partitions out of production, all or none (one transaction, each one a
        "retire" entry in its alias history). Readers then treat each as a partition with no
        model (the fallback, where there is one); its versions stay, the one it served kept
        under the ``retired`` alias (gc keeps it), and ``rollback`` puts production back on it.

        The way out for a partition a ``train --new-target`` run skipped, left serving the
        old target's model. A partition retired already is answered by the entry that
        retired it (``moved`` false; nothing written for it), as a promotion of the version
        production serves is. Raises ``PartitionNotFound`` for an unknown key,
        ``AliasNotFound`` for one never in production, naming it, and ``DataError`` for no
        key at all or the fallback's (``__fallback__``: it answers the keys without a model,
        retired ones among them, so it cannot be retired).
        """
        canonical = [self.key(k) for k in keys]
        if not canonical:
            raise DataError("name at least one partition to retire")
        why = given(reason) or "retired by hand"
        return self.store.retire_aliases(canonical, reason=why)

    def _check_store(self) -> None:
        """``ownership.check_store``: an artifact store holding none of this registry's models
        (a misspelt ``--artifacts``) is refused naming it, as train, gc and doctor refuse it,
        rather than a move refused for one artifact "missing" or, for a rollback, "no earlier
        version … that can be loaded". Asked only once the move was refused for a version found
        unloadable: a move from the right store pays nothing for it, and one off lost
        production artifacts to earlier ones still there is no wrong store."""
        from manymodels.registry.ownership import check_store

        check_store(cast("Registry", self))

    def set_alias(
        self, key: KeyLike, alias: str, version: SupportsIndex, *, reason: str | None = None
    ) -> AliasMove:
        """Point ``alias`` (a non-empty name) at ``version``, kept in the alias history. A
        blank ``reason`` is none given, as ``promote``'s and the CLI's and router's are
        (``reasons.given``): it recorded "" (a history entry saying nothing); now it records
        ``SET_BY_HAND``."""
        if not isinstance(alias, str) or not alias:  # None was a "write conflict" (NOT NULL)
            raise DataError(f"an alias is a name such as 'candidate', not {alias!r}")
        if alias == RETIRED:  # ``retire`` keeps it, and the router reads it as "no production"
            raise DataError(f"'{RETIRED}' is kept by 'retire' and cannot be set; use 'retire'")
        number = version_number(version)
        why = given(reason) or SET_BY_HAND
        return self.store.set_alias(self.key(key), alias, number, reason=why)

    def restore_alias(
        self, key: str, alias: str, missing: int, version: int, *, reason: str
    ) -> AliasMove | None:
        """Move ``alias`` off ``missing`` (a version that no longer exists) back to
        ``version``, recorded as a rollback; ``None`` if the alias no longer points at
        ``missing`` (someone moved it meanwhile, and that move stands)."""
        return self.store.move_alias_from(
            key, alias, version_number(missing), version_number(version), reason=reason,
            action="rollback",
        )  # fmt: skip
