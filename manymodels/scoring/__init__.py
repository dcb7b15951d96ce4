"""Batch scoring: one table spanning many partitions, each row scored by its partition's model.

    frame = score("next_week.parquet", "./mmregistry")                 # production models
    result = score_table(df, reg, alias="candidate", backend="local")
    result.summary.fallback_rows

A row is scored by the version its partition's ``alias`` points at; a key without one (unknown,
too small to train, or lacking that alias) by the ``__fallback__`` model at ``alias``, else at
``production``. The output is the input's columns, in its row order, plus ``prediction``,
``model_version``, ``partition`` (the row's canonical key), ``served_by`` (the registry key whose
model answered: ``__fallback__`` when falling back) and ``fallback`` — the names the router's
JSON answers use.

Cheap at 100,000 partitions, like training: one sort by key, one ``encode_key`` per distinct
key, one alias-table read and batched version reads, and every problem with the table found
before any model loads. Chunks of partitions (their rows as numpy columns, each one's version,
sha256 and feature schema) go to the backend; a worker loads each model once, verified by its
sha256, predicts on slices, and the predictions are scattered back into the input's order.

The work is split by job: ``plan`` (which rows each model scores, everything checked, and the
chunks), ``worker`` (the task that loads models and predicts), ``output`` (the scored frame in
input order) and ``job`` (the entry points that drive them).
"""

from manymodels.key_lists import MAX_LISTED_KEYS
from manymodels.scoring.job import ScoreResult, ScoreSummary, score, score_file, score_table
from manymodels.scoring.plan import (
    MIN_FALLBACK_PIECE,
    OUTPUT_COLUMNS,
    ModelRef,
    ScoreChunk,
)
from manymodels.scoring.worker import score_chunk
from manymodels.tables import output_format, write_table

__all__ = [
    "MAX_LISTED_KEYS",
    "MIN_FALLBACK_PIECE",
    "OUTPUT_COLUMNS",
    "ModelRef",
    "ScoreChunk",
    "ScoreResult",
    "ScoreSummary",
    "output_format",  # lives in manymodels.data; importable from here as it always was
    "score",
    "score_chunk",
    "score_file",
    "score_table",
    "write_table",  # lives in manymodels.data; importable from here as it always was
]
