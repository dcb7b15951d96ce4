"""The versioned registry: runs, model versions and aliases in SQL; artifacts by sha256.

``Registry`` and ``LoadedModel`` load on first use: training workers import the entities
(``manymodels.registry.entities``) and must not pay for SQLAlchemy, which only the driver and
the router talk to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from manymodels.registry.entities import (
    AliasMove,
    CandidateResult,
    ModelVersion,
    NewVersion,
    PartitionOutcome,
    PartitionSummary,
    Run,
)
from manymodels.registry.registry_location import RegistryLocation

if TYPE_CHECKING:
    from manymodels.registry.client import LoadedModel, Registry

__all__ = [
    "AliasMove",
    "CandidateResult",
    "LoadedModel",
    "ModelVersion",
    "NewVersion",
    "PartitionOutcome",
    "PartitionSummary",
    "Registry",
    "RegistryLocation",
    "Run",
]


def __getattr__(name: str) -> Any:
    if name in ("Registry", "LoadedModel"):
        from manymodels.registry import client

        return getattr(client, name)
    raise AttributeError(f"module 'manymodels.registry' has no attribute {name!r}")
