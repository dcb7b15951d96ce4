"""Training one partition, and one chunk of partitions: pure functions — no Ray, no SQL.

Per partition: leave out rows that cannot train → split for validation → fit and score every
candidate × grid point and the naive baseline → pick the best → refit it on all rows → store
the model and the partition's input rows. One module per concern:

* ``splits``   which rows validate (last rows, holdout, k folds)
* ``metrics``  fast scorers
* ``select``   candidates, grids and the naive baseline → the partition's model
* ``compare``  the champion scored beside the challenger (as served, or refitted)
* ``rows``     rows left out of training, and why
* ``history``  a partition's input rows, kept for retraining by ``append``
* ``schema``   what a version records of its inputs (feature schema, forecast history)
* ``records``  what a version records of its fit: validation, evaluation, schema additions
* ``chunk``    one worker task: a chunk of partitions → versions and outcomes
* ``fallback`` the pooled model for unknown and too-small partitions
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from manymodels.training.chunk import Result, train_chunk, train_one
    from manymodels.training.compare import Champion, Comparison
    from manymodels.training.fallback import pooled_fingerprint, train_fallback
    from manymodels.training.metrics import Metric, metric
    from manymodels.training.schema import feature_schema, partition_history
    from manymodels.training.select import Fitted, fit_partition
    from manymodels.training.splits import PartitionSkipped, validation_splits

# Each name's module, imported when the name is first read: a light submodule (``history``,
# ``rows``) imported by the router must not bring scikit-learn and SciPy (~2 s) through this
# package's own import.
_HOMES = {
    "Result": "chunk",
    "train_chunk": "chunk",
    "train_one": "chunk",
    "Champion": "compare",
    "Comparison": "compare",
    "pooled_fingerprint": "fallback",
    "train_fallback": "fallback",
    "Metric": "metrics",
    "metric": "metrics",
    "feature_schema": "schema",
    "partition_history": "schema",
    "Fitted": "select",
    "fit_partition": "select",
    "PartitionSkipped": "splits",
    "validation_splits": "splits",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # read once: later reads are a plain global
    return value


__all__ = [
    "Champion",
    "Comparison",
    "Fitted",
    "Metric",
    "PartitionSkipped",
    "Result",
    "feature_schema",
    "fit_partition",
    "metric",
    "partition_history",
    "pooled_fingerprint",
    "train_chunk",
    "train_fallback",
    "train_one",
    "validation_splits",
]
