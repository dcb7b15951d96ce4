"""The versioned registry: runs, model versions and aliases in SQL; artifacts by sha256."""

from manymodels.registry.client import LoadedModel, Registry
from manymodels.registry.entities import (
    AliasMove,
    CandidateResult,
    ModelVersion,
    NewVersion,
    PartitionOutcome,
    PartitionSummary,
    Run,
)

__all__ = [
    "AliasMove",
    "CandidateResult",
    "LoadedModel",
    "ModelVersion",
    "NewVersion",
    "PartitionOutcome",
    "PartitionSummary",
    "Registry",
    "Run",
]
