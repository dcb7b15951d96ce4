"""Which registry an artifact store belongs to, so that ``gc`` never deletes another's models.

Artifacts are named by their sha256, so two registries trained on the same data hold many
of the same files, and ``gc``'s guard against a mismatched database (it references *none* of
the store's artifacts) did not fire when ``--artifacts`` named another registry's store:
``gc`` deleted that registry's newer models, production included. Now each registry has an
id (``meta``, made once), a registry marks the store it writes to (``ArtifactStore.claim``,
when a run or an import starts, and when ``gc`` runs), and ``gc`` refuses a store another
registry has marked. A store written before the marks, by registries that have not run since,
is not recognised: it is marked by the first of them that runs.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from manymodels.registry.store import describe_url

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
