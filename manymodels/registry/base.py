"""What every part of ``SqlStore`` stands on: the engine, the write transaction, and the
one lookup that reads and writes both make.

``SqlStore`` is assembled from mixins, one module per job (``runs``, ``writes``, ``reads``).
Each inherits from ``StoreBase``, so mypy checks the attributes it uses against one
declaration, and none of them imports ``store``, the module that combines them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.engine import Connection

from manymodels.exceptions import PartitionNotFound
from manymodels.registry import schema as t
from manymodels.registry.engine import WriteTransaction
from manymodels.signing import Signer


def meta_value(conn: Connection, name: str) -> str | None:
    """The ``meta`` row ``name``'s value, read in the caller's transaction."""
    found = conn.execute(select(t.meta.c.value).where(t.meta.c.name == name)).scalar()
    return None if found is None else str(found)


def put_meta(conn: Connection, name: str, value: str | None) -> None:
    """Write (or, with ``None``, remove) the ``meta`` row ``name`` in the caller's
    transaction: a delete and an insert, which every database takes alike."""
    conn.execute(delete(t.meta).where(t.meta.c.name == name))
    if value is not None:
        conn.execute(insert(t.meta).values(name=name, value=value))


class StoreBase:
    """The state the mixins of ``SqlStore`` share (``SqlStore.__init__`` sets it)."""

    url: str
    engine: Engine
    signer: Signer | None = None  # set by ``Registry``: versions are signed as they are recorded

    def _begin(self) -> Any:
        return WriteTransaction(self.engine)

    def _require_partition(self, conn: Connection, key: str) -> None:
        if (
            conn.execute(select(t.partitions.c.key).where(t.partitions.c.key == key)).first()
            is None
        ):
            raise PartitionNotFound(f"no partition '{key}' in the registry")
