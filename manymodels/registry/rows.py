"""Row ↔ entity mapping for the registry tables: the store hands out entities, never rows."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Row

from manymodels.registry.engine import dumps
from manymodels.registry.entities import (
    AliasMove,
    ModelVersion,
    NewVersion,
    Run,
)


def move_entity(r: Row[Any]) -> AliasMove:
    return AliasMove(
        r.key, r.alias, r.from_version, r.to_version, r.reason, r.run_id, r.at, r.action
    )


def version_row(
    v: NewVersion, number: int, run_id: str, stamp: str, libraries: dict[str, str]
) -> dict[str, Any]:
    return {
        "key": v.key,
        "version": number,
        "run_id": run_id,
        "created_at": stamp,
        "estimator": v.estimator,
        "params_json": dumps(v.params),
        "metric": v.metric,
        "score": v.score,
        "naive_score": v.naive_score,
        "n_rows": v.n_rows,
        "data_fingerprint": v.data_fingerprint,
        "feature_schema_json": dumps(v.feature_schema),
        "artifact_sha256": v.artifact_sha256,
        "artifact_size": v.artifact_size,
        "libraries_json": dumps(libraries),
        "candidates_json": dumps([c.__dict__ for c in v.candidates]),
        "warnings_json": dumps(v.warnings),
        "validation_json": dumps(v.validation),
        "evaluation_json": dumps(v.evaluation),
    }


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
        feature_schema=json.loads(r.feature_schema_json),
        artifact_sha256=r.artifact_sha256,
        artifact_size=r.artifact_size,
        libraries=json.loads(r.libraries_json),
        candidates=json.loads(r.candidates_json),
        warnings=json.loads(r.warnings_json),
        validation=json.loads(r.validation_json),
        evaluation=json.loads(r.evaluation_json),
        aliases=tuple(sorted(a for a, v in names.items() if v == r.version)),
    )


def run_entity(r: Row[Any]) -> Run:
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
    )
