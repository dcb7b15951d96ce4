"""What every part of ``SqlStore`` stands on: the engine, the write transaction, and the
one lookup that reads and writes both make.

``SqlStore`` is assembled from mixins, one module per job (``runs``, ``writes``, ``reads``).
Each inherits from ``StoreBase``, so mypy checks the attributes it uses against one
declaration, and none of them imports ``store``, the module that combines them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from manymodels.exceptions import PartitionNotFound
from manymodels.registry import schema as t
from manymodels.registry.engine import WriteTransaction
from manymodels.signing import Signer


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
