"""The registry as users see it: one object for metadata (SQL) and artifacts (sha256 store).

    reg = Registry.open("./mmregistry")
    reg.list_partitions(limit=20)
    model = reg.load_model("store=2,brand=tropicana")          # production
    model = reg.load_model({"store": 2, "brand": "tropicana"}, version=1)

A registry directory holds ``registry.db`` (SQLite) and ``artifacts/``; both can instead be
given as a database URL and an artifact store location.
"""

from __future__ import annotations

import contextlib
import json
import platform
from collections.abc import Callable, Container, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, SupportsIndex

from manymodels.artifacts import ArtifactStore, LocalArtifactStore, open_store
from manymodels.exceptions import DataError, NoRegistry
from manymodels.keys import FALLBACK_KEY, decode_key, lookup_key
from manymodels.registry.checks import VersionDigests
from manymodels.registry.engine import engine_read_only, read_only_error, read_only_reason
from manymodels.registry.entities import (
    AliasMove,
    ModelVersion,
    PartitionOutcome,
    PartitionSummary,
    Run,
)
from manymodels.registry.jobs import JobTable
from manymodels.registry.loaded import LoadedModel  # noqa: F401 (re-exported)
from manymodels.registry.location import (  # noqa: F401 (ARTIFACTS_DIR, DB_FILE: re-exported)
    ARTIFACTS_DIR,
    DB_FILE,
    Location,
    holds_artifacts,
    locate,
    lost,
)
from manymodels.registry.model_access import (  # noqa: F401 (FORMATS_TTL: re-exported)
    FORMATS_TTL,
    ModelAccess,
    version_number,
)
from manymodels.registry.progress import RunProgress, counted, progress_of
from manymodels.registry.store import SqlStore, describe_url
from manymodels.signing import Signer


@cache
def library_versions() -> dict[str, str]:
    """Recorded with every version: a model is only as reproducible as its stack."""
    import joblib
    import numpy
    import pandas
    import sklearn

    from manymodels import __version__

    return {
        "python": platform.python_version(),
        "manymodels": __version__,
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "joblib": joblib.__version__,
    }


class Registry(ModelAccess):
    """Versioned models of many partitions: runs, versions, aliases, and their artifacts.

    ``root`` is the registry's directory: its ``registry.db`` and ``artifacts/`` unless
    ``db_url`` or ``artifacts`` name others; with both named, ``root`` is not used at all (it
    need not exist, and ``root`` is then ``None``).

    ``create=True`` (the default, for writers such as training) starts a new registry in a
    new or empty directory; it refuses (``NoRegistry``) when the database is missing or empty
    while the artifact store holds models. Readers use ``Registry.open``.

    ``signer`` (a ``manymodels.signing.Signer``, built at the edge from
    ``MANYMODELS_SIGNING_KEY``) signs every version recorded through this registry, and makes
    every load refuse (``BadSignature``) a version its key does not vouch for; without one,
    the database is trusted as it is.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        db_url: str | None = None,
        artifacts: str | Path | ArtifactStore | None = None,
        create: bool = True,
        signer: Signer | None = None,
    ) -> None:
        where = locate(root, db_url, artifacts, create=create)
        try:
            self._open(where, create, signer)
        except BaseException:
            if where.made is not None and where.root is not None:  # a failed start leaves
                with contextlib.suppress(OSError):  # no directory it made; rmdir takes only
                    for made in [where.root, *where.root.parents]:  # empty ones (a database
                        made.rmdir()  # made stays)
                        if made == where.made:
                            break
            raise

    def _open(self, where: Location, create: bool, signer: Signer | None) -> None:
        """The registry at ``where``: its artifact store and database opened (or made, by a
        writer), the trust policy read."""
        self.root, self.db_url, self._own_db = where.root, where.db_url, where.own_db
        artifacts = where.artifacts
        self._partition_by: list[str] | None = None
        self.artifacts: ArtifactStore = (
            open_store(artifacts) if isinstance(artifacts, str | Path) else artifacts
        )
        # A new registry starts only where no models are stored: an artifact store holding
        # some beside an empty or missing database means the database was lost, and a new
        # one would let gc delete every model.
        held = create and holds_artifacts(self.artifacts)
        try:
            self.store = SqlStore(self.db_url, create=create and not held)
        except NoRegistry as e:
            if held or holds_artifacts(self.artifacts):
                raise lost(e, self.artifacts) from e
            raise
        self.signer = signer
        self.store.signer = signer  # every version recorded through this registry is signed
        # workers get the store, not the registry: its formats carry the policy to them
        self._formats: tuple[float, frozenset[str]] | None = None
        self.artifacts.formats = self.trusted_formats
        if create and self.read_only is not None:  # a writer: fail now, not at its first write
            self.close()
            self.require_writable("cannot open it for writing (reading works)")

    @classmethod
    def open(cls, root: str | Path, **kwargs: Any) -> Registry:
        """Open an existing registry (``create=False``): a typo in a path, or a database that
        is missing or empty, is ``NoRegistry`` — nothing is created or written."""
        kwargs.setdefault("create", False)
        return cls(root, **kwargs)

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Refused, in one line: pickle failed inside SQLAlchemy ("Can't pickle local object
        'create_engine.<locals>.connect'"). Reopening by location in the other process was
        the other choice, and is not safe: the pickle would carry the signing key (or drop it,
        and the copy load unverified models) and the database URL's password to wherever
        pickles go (Ray spills them to disk), and a path means another registry, or none, on
        another machine. Workers are given the location and open the registry themselves."""
        if self.root is not None and self._own_db:
            how = f"pass its location ({self.root}) and open it where it is used with Registry.open"
        else:  # a database and an artifact store named apart: both are needed
            how = (
                f"pass its database URL ({describe_url(self.db_url)}) and artifact store "
                f"({self.artifacts.url}) and open it where it is used with "
                "Registry(db_url=…, artifacts=…, create=False)"
            )
        raise TypeError(
            "a Registry is not pickled (its database connection and signing key stay in "
            f"this process): {how}"
        )

    def __copy__(self) -> Registry:
        """A shallow copy (sharing this one's connection), as ``copy.copy`` made before
        ``__reduce_ex__`` refused pickling, which ``copy`` goes through otherwise."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __repr__(self) -> str:
        # describe_url drops a password: a repr lands in logs and tracebacks.
        return f"Registry(db={describe_url(self.db_url)!r}, artifacts={self.artifacts.url!r})"

    @property
    def read_only(self) -> str | None:
        """Why this process cannot write this registry (its database, or a local artifact
        store), or ``None``. A read-only registry serves every read; writes raise
        ``ReadOnlyRegistry``."""
        found = engine_read_only(self.store.engine)
        if found is None and isinstance(self.artifacts, LocalArtifactStore):
            root = str(self.artifacts.root)
            why = read_only_reason(root)
            found = (root, why) if why is not None else None
        return None if found is None else found[1]

    @property
    def location(self) -> str:
        """Where this registry is, for messages: its directory, or its database's URL
        (without a password) when the database is not the directory's own."""
        if self.root is not None and self._own_db:
            return str(self.root)
        return describe_url(self.db_url)

    def require_writable(self, doing: str) -> None:
        """Raise ``ReadOnlyRegistry`` (saying what needed to write) unless writable."""
        why = self.read_only
        if why is not None:
            where = self.root.absolute() if self.root is not None else describe_url(self.db_url)
            raise read_only_error(str(where), why, doing)

    @property
    def jobs(self) -> JobTable:
        """The routers' retrain jobs, in this registry's database (``serving.jobs`` runs
        them; ``manymodels.registry.jobs`` keeps them)."""
        return self.store.jobs

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- reads
    def list_partitions(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        after: str | None = None,
        prefix: str | None = None,
    ) -> list[PartitionSummary]:
        """A page of partitions by key; ``prefix`` keeps the keys that start with it."""
        return self.store.list_partitions(limit=limit, offset=offset, after=after, prefix=prefix)

    def count_partitions(self) -> int:
        return self.store.count_partitions()

    def ranked_partitions(
        self, by: str, *, limit: int = 100, after: str | None = None, prefix: str | None = None
    ) -> list[PartitionSummary]:
        """Partitions in production, worst first by ``skill`` vs naive, ``score`` or ``age``,
        over the whole registry, a page after the key ``after`` (along an index: O(page))."""
        return self.store.ranked_partitions(by, limit=limit, after=after, prefix=prefix)

    def run_failures(
        self,
        run_id: str,
        *,
        statuses: Sequence[str] = ("failed", "skipped"),
        limit: int = 100,
        after: str | None = None,
        prefix: str | None = None,
    ) -> list[PartitionOutcome]:
        """A run's partitions that produced no version (``failed``, ``skipped``, ``lost``),
        with the reason, by key, a page after ``after``."""
        return self.store.run_failures(
            run_id, statuses=statuses, limit=limit, after=after, prefix=prefix
        )

    def get_partition(self, key: str | Mapping[str, Any]) -> PartitionSummary:
        return self.store.get_partition(self.key(key))

    def list_versions(self, key: str | Mapping[str, Any]) -> list[ModelVersion]:
        return self.store.list_versions(self.key(key))

    def get_version(
        self,
        key: str | Mapping[str, Any],
        version: SupportsIndex | None = None,
        *,
        alias: str = "production",
    ) -> ModelVersion:
        """A version by number (any integral: ``numpy.int64`` too), or whichever ``alias``
        points at."""
        k = self.key(key)
        if version is not None:
            return self.store.get_version(k, version_number(version))
        return self.store.resolve_alias(k, alias)

    def alias_history(
        self, key: str | Mapping[str, Any], alias: str | None = None
    ) -> list[AliasMove]:
        return self.store.alias_history(self.key(key), alias)

    def list_runs(self, *, limit: int = 50, offset: int = 0) -> list[Run]:
        return self.store.list_runs(limit=limit, offset=offset)

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def run_progress(self, run_id: str) -> dict[str, int]:
        """A run's recorded outcomes by status (see ``RunsMixin.run_progress``)."""
        return self.store.run_progress(run_id)

    def runs_page(self, *, limit: int = 50, after: str | None = None) -> list[RunProgress]:
        """Runs newest first, a page after the run ``after``, each with its progress from the
        counts its row keeps (one more read for their ``lost`` outcomes: O(page))."""
        runs = self.store.runs_page(limit=limit, after=after)
        lost = self.store.lost_counts([r.run_id for r in runs])
        return [progress_of(r, counted(r, lost.get(r.run_id, 0))) for r in runs]

    def get_run_progress(self, run_id: str) -> RunProgress:
        """One run's progress from its recorded outcomes (``registry.progress``); the
        fallback model's outcome is reported apart from the planned partitions'."""
        run = self.store.get_run(run_id)
        by_status = self.store.run_progress(run_id)
        fallback = self.store.outcome_status(run_id, FALLBACK_KEY)
        if fallback is not None and by_status.get(fallback):
            by_status[fallback] -= 1
        return progress_of(run, by_status, fallback=fallback)

    # ---------------------------------------------------------------------------- checks
    def version_digests(self) -> list[VersionDigests]:
        """Every version's model and training-rows digests (what ``doctor`` verifies)."""
        return self.store.version_digests()

    def dangling_aliases(self) -> list[tuple[str, str, int]]:
        """``(key, alias, version)`` of aliases pointing at a version that does not exist."""
        return self.store.dangling_aliases()

    def unfinished_runs(self) -> list[tuple[Run, int]]:
        """Runs ``--resume`` would finish, each with its count of ``lost`` partitions."""
        return self.store.unfinished_runs()

    def count_aliases(self) -> int:
        return self.store.count_aliases()

    def count_runs(self) -> int:
        return self.store.count_runs()

    def has_fallback(self) -> bool:
        """Whether a fallback model is in production: its one alias row (not the table)."""
        return bool(self.store.alias_versions([FALLBACK_KEY]))

    # ---------------------------------------------------------------------------- writes
    def promote(
        self,
        key: str | Mapping[str, Any],
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
        self._require_servable(self.store.get_version(canonical, number))
        return self.store.set_alias(
            canonical, "production", number, reason=reason, action="promote", idempotent=True
        )

    def rollback(self, key: str | Mapping[str, Any], *, reason: str | None = None) -> AliasMove:
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
        return self.store.rollback_alias(canonical, reason=reason, skip=skip)

    def set_alias(
        self, key: str | Mapping[str, Any], alias: str, version: SupportsIndex, *, reason: str
    ) -> AliasMove:
        """Point ``alias`` (a non-empty name) at ``version``, kept in the alias history."""
        if not isinstance(alias, str) or not alias:  # None was a "write conflict" (NOT NULL)
            raise DataError(f"an alias is a name such as 'candidate', not {alias!r}")
        return self.store.set_alias(self.key(key), alias, version_number(version), reason=reason)

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

    def key(
        self,
        key: str | Mapping[str, Any],
        *,
        known: Container[str] | None = None,
        as_trained: bool = True,
    ) -> str:
        """The canonical form of a key given as a mapping (any order) or as text.

        ``store=2.0`` names the partition trained as ``store=2`` (a client's float), as the
        router reads it: only when the key as given is none and that one is — in ``known``
        (keys already read: no query per key) or else in the registry. ``as_trained=False``
        keeps the key as given (an import names a partition to make, perhaps a new one)."""
        present: Callable[[str], bool] | None = None
        if as_trained:
            present = known.__contains__ if known is not None else self.store.has_partition
        return lookup_key(key, self.partition_by, present)

    @property
    def partition_by(self) -> list[str] | None:
        """The key columns of the first spec trained into this registry (or, failing that
        record, of its first partition)."""
        if self._partition_by is None:
            raw = self.store.get_meta("partition_by")
            if raw:
                self._partition_by = json.loads(raw)
            else:
                first = [p.key for p in self.store.list_partitions(limit=2)]
                first = [k for k in first if k != FALLBACK_KEY]
                self._partition_by = list(decode_key(first[0])) if first else None
        return self._partition_by
