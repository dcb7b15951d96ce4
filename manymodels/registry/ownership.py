"""Which registry an artifact store belongs to, so that ``gc`` never deletes another's models.

Artifacts are named by their sha256, so two registries trained on the same data hold many
of the same files, and ``gc``'s guard against a mismatched database (it references *none* of
the store's artifacts) did not fire when ``--artifacts`` named another registry's store:
``gc`` deleted that registry's newer models, production included. Now each registry has an
id (``meta``, made once), a registry marks the store it writes to (``ArtifactStore.claim``,
when a run or an import starts, and when ``gc`` runs), and ``gc`` refuses a store another
registry has marked. A store written before the marks, by registries that have not run since,
is not recognised: it is marked by the first of them that runs.

``check_store`` is what a command that reads models (``serve``, ``score``, ``forecast``) asks
first: a misspelt ``--artifacts`` (another bucket or prefix, an empty directory) opened without
a word, and a router said it was ready and answered every model 409 "artifact … missing".
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from manymodels.artifacts import OWNERS_DIR, LocalArtifactStore
from manymodels.exceptions import ArtifactError, ArtifactStoreUnavailable, first_line
from manymodels.registry.location import ARTIFACTS_DIR
from manymodels.registry.store import describe_url
from manymodels.store_bucket import missing_bucket

if TYPE_CHECKING:
    from manymodels.registry.client import Registry

ID_META = "registry_id"


def registry_id(reg: Registry) -> str:
    """This registry's id, made (once, in a write transaction) on first use."""
    return reg.store.get_meta(ID_META) or reg.store.meta_once(ID_META, uuid.uuid4().hex)


def claim_store(reg: Registry) -> None:
    """Mark the registry's artifact store as holding this registry's artifacts."""
    reg.artifacts.claim(registry_id(reg), describe_url(reg.db_url))


def other_owners(reg: Registry) -> dict[str, str]:
    """The other registries that marked this registry's store: ``{id: where}``. Reads only.
    Only the id tells: two registries on two machines can have the same database path. A
    database restored from a backup taken before it had an id gets a new one, and its old
    mark reads as another's until removed (gc's refusal names the file): refusing is the
    side that loses nothing. ``import-registry`` gives every restored copy a new id, for the
    same reason: pointed back at the original's store (a database lost and restored), its gc
    refuses until the original's mark is removed, which it names."""
    mine = reg.store.get_meta(ID_META)
    return {k: v for k, v in reg.artifacts.owners().items() if k != mine}


SAMPLED = 3  # versions whose artifacts are looked for before the store is judged


def check_store(reg: Registry) -> None:
    """Refuse, in one line, an artifact store that holds none of this registry's models.

    It passes when the store holds one of a few versions' artifacts (production ones first:
    one query and, for the right store, one lookup, whatever the registry's size), or carries
    this registry's mark (``claim``: the store it wrote to, an artifact lost since — each
    model missing says so itself), or when the registry has no version yet (an empty registry
    reads nothing from its store). A store that does not answer is ``ArtifactStoreUnavailable``
    saying so, not a wrong store. A store written before the marks that has lost every sampled
    artifact is refused too: its models could not be served either.
    """
    sampled = reg.store.sample_artifacts(SAMPLED)
    if not sampled:
        return
    url = reg.artifacts.url
    try:
        if any(reg.artifacts.exists(digest) for _, _, digest in sampled):
            return
        mine = reg.store.get_meta(ID_META)
        if mine is not None and mine in reg.artifacts.owners():
            return
    except ArtifactStoreUnavailable as e:
        why = first_line(e.__cause__ or e)
        raise ArtifactStoreUnavailable(f"cannot reach the artifact store {url}: {why}") from e
    except OSError as e:  # a local directory this process may not read
        raise ArtifactError(f"cannot read the artifact store {url}: {e}") from e
    except ArtifactError as e:  # an object store's own refusal: a HEAD's 403 says "Forbidden"
        if not isinstance(e.__cause__, PermissionError):  # alone (it has no body to say why)
            raise
        said = first_line(e.__cause__)
        raise ArtifactError(
            f"the artifact store {url} refused to let this client read it ({said}):"
            " check its credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the "
            "profile) and their rights there"
        ) from e
    key, version, digest = sampled[0]
    bucket = missing_bucket(reg.artifacts)  # asked only here, as the store is refused
    none = f"its bucket '{bucket}' does not exist: " if bucket is not None else ""
    n = len(sampled) - 1
    others = f" nor of {n} more version{'s' * (n > 1)}" if n else ""
    mark = f", and no mark of this registry ({OWNERS_DIR}/{mine})" if mine is not None else ""
    ask = (  # its own artifacts/ is named by no URL: lost, not misspelt
        "its models were lost: restore the directory from a backup, or train again (a "
        "champion that cannot be loaded is replaced)"
        if own_directory(reg)
        else f"is it the store {describe_url(reg.db_url)} was trained into (--artifacts, "
        "MANYMODELS_ARTIFACTS)?"
    )
    raise ArtifactError(
        f"the artifact store {url} holds none of this registry's models: {none}no artifact of "
        f"partition '{key}' version {version} ({digest[:12]}){others}{mark}; {ask}"
    )


def own_directory(reg: Registry) -> bool:
    """Whether the store is the registry directory's own ``artifacts/`` (no ``--artifacts``
    elsewhere) beside its own database. No URL names it, so none can be misspelt: a store
    there holding none of the models lost them (a disk wiped or replaced), and ``train`` is
    the repair doctor advises (a champion that cannot be loaded is replaced), which
    ``check_store`` would refuse. Beside a database named apart (``--registry-db``, no
    ``--artifacts``) the directory's ``artifacts/`` is a store forgotten, not lost: taken for
    its own, a run wrote its new versions there, the older ones' in the store named before,
    and the registry was split across two stores."""
    store = reg.artifacts
    if reg.root is None or not reg.own_database or not isinstance(store, LocalArtifactStore):
        return False
    return store.root.resolve() == (Path(reg.root) / ARTIFACTS_DIR).resolve()


def check_training_store(reg: Registry) -> None:
    """``check_store`` as a run asks it (``run_plan.plan_run``, and its dry run,
    ``run_input.would_retrain``, which lists nothing the run refuses): except over the
    registry's own directory, whose lost models the run replaces (``own_directory``)."""
    if not own_directory(reg):
        check_store(reg)
