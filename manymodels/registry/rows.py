"""Row ↔ entity mapping for the registry tables: the store hands out entities, never rows."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from manymodels import holiday_sets
from manymodels.registry.entities import (
    AliasMove,
    ModelVersion,
    NewVersion,
    PartitionSummary,
    Run,
)

if TYPE_CHECKING:  # the CLI's SQLite browser (browse.py) maps rows here without SQLAlchemy
    from sqlalchemy.engine import Row

    from manymodels.signing import Signer


def move_entity(r: Row[Any]) -> AliasMove:
    return AliasMove(
        r.key, r.alias, r.from_version, r.to_version, r.reason, r.run_id, r.at, r.action
    )


class JsonMemo:
    """``dumps`` for the rows of one batch, each distinct *object* encoded once.

    The versions of a chunk share objects — one ``libraries`` dict per commit and, without a
    time column, one feature schema for the whole chunk (pickle keeps that sharing when Ray
    ships the results) — and ``dumps`` was a third of the driver's ``record()`` time. The memo
    is by identity, never by equality: equal values can encode differently (``1``, ``1.0`` and
    ``True``; key order), and the stored text must not change. It holds every object it has
    seen, so no ``id`` is reused while it lives: make one per batch, not one per process.
    """

    def __init__(self) -> None:
        self._texts: dict[int, tuple[Any, str]] = {}

    def __call__(self, value: Any) -> str:
        hit = self._texts.get(id(value))
        if hit is not None:
            return hit[1]
        text = encode_json(value)
        self._texts[id(value)] = (value, text)
        return text


# ``engine.dumps`` without building a JSONEncoder per call (~0.7 µs of ~1.3 µs for a small
# value): the same settings, so the same text (a test holds the two to that).
encode_json = json.JSONEncoder(separators=(",", ":"), default=str).encode

# The ``model_versions`` columns ``version_row`` fills, in the table's order (``id`` is the
# database's), so a row is a tuple for a pre-compiled positional INSERT.
VERSION_COLUMNS = (
    "key", "version", "run_id", "created_at", "estimator", "params_json", "metric", "score",
    "naive_score", "n_rows", "data_fingerprint", "feature_schema_json", "artifact_sha256",
    "artifact_size", "libraries_json", "candidates_json", "warnings_json", "validation_json",
    "evaluation_json", "data_sha256", "signature", "members_json",
)  # fmt: skip


def version_row(
    v: NewVersion,
    number: int,
    run_id: str,
    stamp: str,
    libraries_json: str,
    memo: JsonMemo,
    signer: Signer | None = None,
) -> tuple[Any, ...]:
    """The ``VERSION_COLUMNS`` values of a new version: the caller encodes ``libraries`` once
    per batch, and ``memo`` encodes the objects versions may share once; with a ``signer``,
    the row carries the signature of its digests and of its feature schema as stored (the
    text, so what is signed is exactly what verifiers read back)."""
    schema_json = memo(v.feature_schema)
    return (
        v.key,
        number,
        run_id,
        stamp,
        v.estimator,
        memo(v.params),
        v.metric,
        v.score,
        v.naive_score,
        v.n_rows,
        v.data_fingerprint,
        schema_json,
        v.artifact_sha256,
        v.artifact_size,
        libraries_json,
        encode_json([c.__dict__ for c in v.candidates]),  # a new list each time: nothing to share
        memo(v.warnings),
        memo(v.validation),
        encode_json(v.evaluation),  # made per partition (training.records.evaluation_record)
        v.data_sha256,
        signer.sign(v.key, number, v.artifact_sha256, v.data_sha256, schema_json)
        if signer
        else None,
        encode_json(list(v.members)) if v.members else None,
    )


def version_entity(r: Row[Any], names: dict[str, int]) -> ModelVersion:
    return ModelVersion(
        key=r.key,
        version=r.version,
        run_id=r.run_id,
        created_at=r.created_at,
        estimator=r.estimator,
        params=json.loads(r.params_json),
        metric=r.metric,
        score=r.score,
        naive_score=r.naive_score,
        n_rows=r.n_rows,
        data_fingerprint=r.data_fingerprint,
        # the dates, as before the sets were stored once: what users and exports read
        feature_schema=dict(holiday_sets.inline(json.loads(r.feature_schema_json))),
        artifact_sha256=r.artifact_sha256,
        artifact_size=r.artifact_size,
        libraries=json.loads(r.libraries_json),
        candidates=json.loads(r.candidates_json),
        warnings=json.loads(r.warnings_json),
        validation=json.loads(r.validation_json),
        evaluation=json.loads(r.evaluation_json),
        aliases=tuple(sorted(a for a, v in names.items() if v == r.version)),
        data_sha256=r.data_sha256,
        signature=r.signature,
        members=members_of(getattr(r, "members_json", None)),  # none before schema 6
    )


def summary_entity(
    r: Row[Any], names: dict[str, int], production: ModelVersion | None
) -> PartitionSummary:
    """A ``partitions`` row with its aliases and its production version (both read apart)."""
    return PartitionSummary(
        key=r.key,
        key_values=json.loads(r.key_json),
        latest_version=r.latest_version,
        aliases=names,
        production=production,
    )


def members_of(text: str | None) -> tuple[str, ...]:
    """``model_versions.members_json`` read: a JSON list of sha256s, or NULL for none."""
    return tuple(json.loads(text)) if text else ()


def run_entity(r: Row[Any], at: str | None = None) -> Run:
    """The run a ``runs`` row holds; ``at``, the database's time it was read at
    (``db_clock.db_now``), is the clock its heartbeat is judged by (``Run.read_at``)."""
    return Run(
        run_id=r.run_id,
        kind=r.kind,
        status=r.status,
        spec_name=r.spec_name,
        spec_hash=r.spec_hash,
        spec=json.loads(r.spec_json),
        data_source=r.data_source,
        data_fingerprint=r.data_fingerprint,
        started_at=r.started_at,
        ended_at=r.ended_at,
        n_partitions=r.n_partitions,
        n_trained=r.n_trained,
        n_skipped=r.n_skipped,
        n_failed=r.n_failed,
        options=json.loads(r.options_json),
        error=r.error,
        heartbeat_at=getattr(r, "heartbeat_at", None),  # none before schema 7
        read_at=at,
    )
