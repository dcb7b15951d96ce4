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

from manymodels.training.chunk import Result, train_chunk, train_one
from manymodels.training.compare import Champion, Comparison
from manymodels.training.fallback import pooled_fingerprint, train_fallback
from manymodels.training.metrics import Metric, metric
from manymodels.training.schema import feature_schema, partition_history
from manymodels.training.select import Fitted, fit_partition
from manymodels.training.splits import PartitionSkipped, validation_splits

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
