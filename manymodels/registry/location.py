"""Where a registry lives: its directory, database and artifact store, found (or created) before
anything is opened, and the refusals that keep a lost database from becoming a new one.

A registry directory holds ``registry.db`` (SQLite) and ``artifacts/``; either can instead be
named (a database URL, an artifact store location). A writer may create a new directory; a
reader (``Registry.open``) never does. An artifact store that holds models beside a missing or
empty database is a lost database, never a new registry: a new one would let ``gc`` delete
every model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from manymodels.artifacts import ArtifactStore, open_store
from manymodels.exceptions import LostDatabase, NoRegistry, RegistryError, StoreNotFound

DB_FILE = "registry.db"
ARTIFACTS_DIR = "artifacts"


@dataclass(frozen=True)
class Location:
    """A registry's parts: ``root`` is ``None`` when the database and the artifact store are
    both named elsewhere (the directory then holds nothing of it); ``own_db`` when the
    database is the directory's SQLite file."""

    root: Path | None
    db_url: str
    artifacts: str | Path | ArtifactStore
    own_db: bool


def locate(
    root: str | Path | None,
    db_url: str | None,
    artifacts: str | Path | ArtifactStore | None,
    *,
    create: bool,
) -> Location:
    """The registry's parts; nothing is made. A writer's new directory is checked
    (``require_creatable``) and made with its database once the store's checks pass
    (``SqlStore``), or, beside a database named apart, by its store's first write: a run
    refused before then leaves nothing. Raises ``NoRegistry`` for a reader's missing
    registry (``LostDatabase`` when its artifact store holds models, ``StoreNotFound`` when
    its database named records artifacts but its store is not found), ``RegistryError`` for
    a path that cannot be one."""
    if root is None and (db_url is None or artifacts is None):
        raise RegistryError("give a registry directory, or both a db_url and an artifact store")
    if root is not None and not isinstance(root, str | os.PathLike):  # 5: a TypeError in pathlib
        raise RegistryError(f"a registry is a directory's path, not {type(root).__name__}")
    # with both a database and an artifact store named, the directory holds nothing of this
    # registry: it need not exist, and messages name the database instead
    elsewhere = db_url is not None and artifacts is not None
    # absolute now: a relative one would name another registry once the process changed
    # directory, or in a Ray worker started in another directory (runtime_env working_dir),
    # which then wrote the artifacts of versions this database records somewhere else
    # '~/mmregistry' from Python (no shell to expand it) made a directory named '~' here
    where = Path(root).expanduser().absolute() if root is not None and not elsewhere else None
    if where is not None:
        if not where.exists():
            if db_url is not None:  # only its artifacts/ is here: made by its first write
                if create:
                    require_creatable(where)
                else:  # a database with no artifact written yet: an empty store, read so
                    refused = store_not_found(where / ARTIFACTS_DIR, db_url)
                    if refused is not None:
                        raise refused
            elif not create:
                missing = NoRegistry(f"no registry at {where} (train something first)")
                if artifacts is None:
                    raise missing
                opened = open_store(artifacts) if isinstance(artifacts, str | Path) else artifacts
                # docs/deployment.md §3 + §4: nothing of the registry is on this box, so a
                # shell without MANYMODELS_REGISTRY_DB reads a directory that never existed;
                # "restore the database from a backup" sent that user after a loss that had
                # not happened, as it did beside a local store (below)
                raise database_not_given(where, opened) if holds_artifacts(opened) else missing
            else:  # made with its database, once the store's checks pass (``SqlStore``):
                # made here, a refused first train removed it again, and a train of the same
                # new directory about to make its database there found none
                if where.is_symlink():  # dangling: never made through (mkdir says why)
                    try:
                        where.mkdir()
                    except OSError as e:
                        raise RegistryError(f"cannot create a registry at {where}: {e}") from e
                require_creatable(where)
        elif not where.is_dir():
            raise RegistryError(f"registry path {where} is not a directory")
        elif not create and not (where / DB_FILE).exists() and db_url is None:
            missing = NoRegistry(f"no registry at {where} (train something first)")
            store = artifacts if artifacts is not None else where / ARTIFACTS_DIR
            opened = open_store(store) if isinstance(store, str | Path) else store
            if holds_artifacts(opened):
                # models beside no database file: most often a registry whose database is
                # in PostgreSQL, opened from a shell without its URL — "restore it from a
                # backup" alone sent that user after a loss that had not happened
                raise database_not_given(where, opened)
            raise missing
    if where is None:  # both named (the first check refused anything else)
        assert db_url is not None and artifacts is not None
        return Location(None, db_url, artifacts, own_db=False)
    # both by the resolved path: a registry named by a symlink (``cur -> reg-a``) swapped
    # under a running process (``ln -sfn reg-b cur``) must not give it reg-a's database and
    # reg-b's artifacts (models "missing", a retrain's artifacts written to the wrong store)
    return Location(
        where,
        db_url or sqlite_url((where / DB_FILE).resolve()),
        artifacts if artifacts is not None else where.resolve() / ARTIFACTS_DIR,
        own_db=db_url is None,
    )


def require_creatable(where: Path) -> None:
    """``RegistryError`` now where ``where`` could not be made, nothing made. A writer given
    a database apart (``--registry-db``) and a new ``--registry b`` for its ``artifacts/``
    made ``b/`` at once, and a run refused once it was opened (its store forgotten:
    ``check_training_store``) left it behind, empty: the store makes its directories at its
    first write, and this keeps the early refusal of a path that cannot be one."""
    from manymodels.registry.engine import read_only_reason

    try:  # a dangling symlink's target: where the store makes its directories (``locate``)
        target = where.resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop (RuntimeError before 3.13)
        raise RegistryError(f"cannot create a registry at {where}: {e}") from e
    parent = next(p for p in target.parents if p.exists())  # the root at least
    if not parent.is_dir():
        raise RegistryError(f"cannot create a registry at {where}: {parent} is not a directory")
    why = read_only_reason(str(parent))
    if why is not None:
        raise RegistryError(f"cannot create a registry at {where}: {parent} is read-only ({why})")


def sqlite_url(path: Path) -> str:
    """The ``sqlite://`` URL of the file at ``path``, taken literally.

    An f-string URL let SQLAlchemy decode ``%20`` and cut at ``?`` in a directory's name, so
    a registry under ``a%20b/`` opened ``a b/`` (and failed); ``URL.create`` escapes them."""
    from sqlalchemy.engine import URL

    return URL.create("sqlite", database=str(path)).render_as_string(hide_password=False)


def store_not_found(store: Path, db_url: str) -> NoRegistry | None:
    """Why a reader's database named (``db_url``) with no registry directory holding its
    local ``store`` cannot be opened, or ``None`` where it can: ``StoreNotFound`` where the
    database records an artifact written (its models are elsewhere: a store forgotten), the
    database's own ``NoRegistry`` where it holds no registry ("no registry database at …":
    what is missing is the database, not the store), and ``None`` where it holds one that
    records no artifact — a schedule's, an upgraded one, one whose runs wrote none — whose
    store a writer makes at its first write, so the missing directory is its empty store.
    Told apart here, where the case is known, so no caller opens the database again to ask;
    opened only here, never on a reader's opening of a registry whose directory is there. A
    database that cannot be reached says so itself (``RegistryError``): neither is known."""
    from manymodels.registry.store import SqlStore

    try:
        db = SqlStore(db_url, create=False)
    except NoRegistry as e:
        return e
    from manymodels.registry import pg_silence

    # two LIMIT 1 reads, whatever the registry's size; they wait, as maintenance reads do, for
    # a lock another session holds on the table (a REINDEX), while the server says it works
    try:
        with pg_silence.long_statements():
            written = db.records_artifacts()
    finally:
        db.close()
    if not written:
        return None
    return StoreNotFound(
        f"no artifact store at {store}: with a database named, give its artifact store too "
        "(--artifacts or MANYMODELS_ARTIFACTS), or the --registry directory that holds it"
    )


def database_not_given(where: Path, store: ArtifactStore) -> LostDatabase:
    """A reader given no database URL, whose directory ``where`` has no ``registry.db``
    while ``store`` holds models: told first as the likely cause, the URL not given."""
    return LostDatabase(
        f"no registry database at {where / DB_FILE}, yet {store.url} holds models: refusing "
        "to start a new registry over them (is its database elsewhere, in PostgreSQL? give it "
        "with --registry-db or MANYMODELS_REGISTRY_DB; else restore registry.db from a "
        "backup, or move the artifacts aside to start afresh)"
    )


def lost(missing: NoRegistry, store: ArtifactStore) -> LostDatabase:
    return LostDatabase(
        f"{missing}, yet its artifact store {store.url} holds models: refusing to start a new "
        "registry over them (restore the database from a backup, or move the artifacts aside "
        "to start afresh)"
    )


def holds_artifacts(store: ArtifactStore) -> bool:
    """Whether the store holds at least one artifact (stops at the first)."""
    return next(iter(store.digests()), None) is not None
