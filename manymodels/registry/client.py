"""The registry as users see it: one object for metadata (SQL) and artifacts (sha256 store).

    reg = Registry.open("./mmregistry")
    reg.list_partitions(limit=20)
    model = reg.load_model("store=2,brand=tropicana")          # production
    model = reg.load_model({"store": 2, "brand": "tropicana"}, version=1)

A registry directory holds ``registry.db`` (SQLite) and ``artifacts/``; both can instead be
given as a database URL and an artifact store location.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Container
from functools import cache
from pathlib import Path
from typing import Any, SupportsIndex

from manymodels.artifacts import ArtifactStore, LocalArtifactStore, open_store
from manymodels.exceptions import DataError, NoRegistry
from manymodels.flags import require_flags
from manymodels.key_lookup import lookup_key
from manymodels.key_selection import KeyLike
from manymodels.keys import FALLBACK_KEY, decode_key
from manymodels.registry.alias_control import AliasControl
from manymodels.registry.checks import VersionDigests
from manymodels.registry.engine import engine_read_only, read_only_error, read_only_reason
from manymodels.registry.entities import (
    AliasMove,
    ModelVersion,
    PartitionSummary,
)
from manymodels.registry.jobs import JobTable
from manymodels.registry.loaded import LoadedModel  # noqa: F401 (re-exported)
from manymodels.registry.location import (  # noqa: F401 (ARTIFACTS_DIR, DB_FILE: re-exported)
    ARTIFACTS_DIR,
    DB_FILE,
    Location,
    database_not_given,
    holds_artifacts,
    locate,
    lost,
)
from manymodels.registry.model_access import (  # noqa: F401 (FORMATS_TTL: re-exported)
    FORMATS_TTL,
    ModelAccess,
    alias_name,
    version_number,
)
from manymodels.registry.run_views import RunViews
from manymodels.registry.store import SqlStore, describe_url
from manymodels.signing import Signer
from manymodels.store_bucket import require_new_store


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


class Registry(AliasControl, RunViews):
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
        require_flags(create=create)  # create="no" made a registry where none was wanted
        if signer is not None and not isinstance(signer, Signer):  # a key's text: failed at
            raise DataError(  # the first version read, "'str' object has no attribute …"
                "signer must be a manymodels.signing.Signer (Signer(key_bytes), or "
                f"Signer.from_env(os.environ)), not {type(signer).__name__}"
            )
        where = locate(root, db_url, artifacts, create=create)
        self._open(where, create, signer)  # a new directory: made by its database's opening

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
            self.store = SqlStore(
                self.db_url,
                create=create and not held,
                before_create=lambda: require_new_store(self.artifacts),  # nothing made over none
            )
        except NoRegistry as e:
            if held or holds_artifacts(self.artifacts):
                if where.own_db and where.root is not None and not (where.root / DB_FILE).exists():
                    # no URL given and no file: a database elsewhere (PostgreSQL) not named
                    raise database_not_given(where.root, self.artifacts) from e
                raise lost(e, self.artifacts) from e
            raise
        self.signer = signer
        self.store.signer = signer  # every version recorded through this registry is signed
        # workers get the store, not the registry: its formats carry the policy to them
        self._formats: tuple[float, frozenset[str]] | None = None
        self.artifacts.formats = self.trusted_formats
        if create:
            self.require_writer()

    def require_writer(self) -> None:
        """``ReadOnlyRegistry`` (this registry closed) where this process cannot write it: a
        writer's opening fails now, not at its first write. Also asked of a registry opened as
        a reader (nothing made) that a run then writes (``RegistryLocation.open_if_there``)."""
        if self.read_only is not None:
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
        ``ReadOnlyRegistry``. When only the store is, the reason names it: the refusal reads
        'registry at ROOT is read-only', and ROOT (or the database apart) may be writable."""
        found = engine_read_only(self.store.engine)
        if found is None and isinstance(self.artifacts, LocalArtifactStore):
            root = str(self.artifacts.root)
            why = read_only_reason(root)
            found = (root, f"its artifact store {root}: {why}") if why is not None else None
        return None if found is None else found[1]

    @property
    def own_database(self) -> bool:
        """Whether the database is the registry directory's own ``registry.db`` (no
        ``--registry-db`` elsewhere): only then is the directory's ``artifacts/`` known to be
        this registry's store, since a database named apart does not record its store."""
        return self.root is not None and self._own_db

    @property
    def location(self) -> str:
        """Where this registry is, for messages: its directory, or its database's URL
        (without a password) when the database is not the directory's own."""
        if self.own_database:
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

    def get_partition(self, key: KeyLike) -> PartitionSummary:
        return self.store.get_partition(self.key(key))

    def list_versions(self, key: KeyLike) -> list[ModelVersion]:
        return self.store.list_versions(self.key(key))

    def get_version(
        self,
        key: KeyLike,
        version: SupportsIndex | None = None,
        *,
        alias: str | None = "production",
    ) -> ModelVersion:
        """A version by number (any integral: ``numpy.int64`` too), or whichever ``alias``
        points at (``None``: production)."""
        k = self.key(key)
        if version is not None:
            return self.store.get_version(k, version_number(version))
        return self.store.resolve_alias(k, alias_name(alias))

    def alias_history(self, key: KeyLike, alias: str | None = None) -> list[AliasMove]:
        return self.store.alias_history(self.key(key), alias)

    # ---------------------------------------------------------------------------- checks
    def version_digests(self) -> list[VersionDigests]:
        """Every version's model and training-rows digests (what ``doctor`` verifies)."""
        return self.store.version_digests()

    def dangling_aliases(self) -> list[tuple[str, str, int]]:
        """``(key, alias, version)`` of aliases pointing at a version that does not exist."""
        return self.store.dangling_aliases()

    def count_aliases(self) -> tuple[int, int]:
        """``(aliases, retired partitions)``: see ``SqlStore.count_aliases``."""
        return self.store.count_aliases()

    def has_fallback(self) -> bool:
        """Whether a fallback model is in production: its one alias row (not the table)."""
        return bool(self.store.alias_versions([FALLBACK_KEY]))

    def key(
        self,
        key: KeyLike,
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
