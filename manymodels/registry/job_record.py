"""One retrain job as the registry's ``jobs`` table holds it, and its translation to and from
a row: kept apart from the table's reads and writes (``registry.jobs``) and the leases that end
a gone router's jobs (``registry.job_leases``), which both hand these records around.

A job's run's warnings are written into its row as it ends (``ended_values``), in a column of
their own (``warnings_json``, schema 15; NULL when none), so that showing a job reads its row
alone — not its run, one more read per job of ``GET /v1/jobs`` — and ``data_json`` holds only
the upload's fields, which every router, older ones too, reads as such. A job ended before
warnings were kept shows none: its run is not read for them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Row

from manymodels.registry import schema as t

ENDED = ("succeeded", "failed")
WARNINGS = "warnings"  # where a JSON document (a run's options) holds its warnings


@dataclass(frozen=True)
class JobRecord:
    """One job as the database holds it; ``data`` is what the router stored it with."""

    job_id: str
    partition: str
    status: str
    backend: str
    owner: str
    created_at: str
    heartbeat_at: str
    kind: str = "retrain"
    started_at: str | None = None
    finished_at: str | None = None
    data: dict[str, Any] | None = field(default=None, hash=False)
    run_id: str | None = None
    version: int | None = None
    production: int | None = None
    error: str | None = None
    warnings: tuple[str, ...] = field(default=(), hash=False)
    """What the job's run warned of, written as the job ended (``ended_values``)."""

    @property
    def active(self) -> bool:
        return self.status not in ENDED


def job_row(job: JobRecord) -> dict[str, Any]:
    """The ``jobs`` row that stores ``job``: ``data`` as JSON, the partition held while active."""
    values = {c.name: getattr(job, c.name) for c in t.jobs.columns if hasattr(job, c.name)}
    values["data_json"] = json.dumps(job.data) if job.data else None
    values["warnings_json"] = _warnings_json(job.warnings)
    values["active_partition"] = job.partition if job.active else None
    return values


def job_of(r: Row[Any]) -> JobRecord:
    """The job a ``jobs`` row holds: stores hand out records, never rows."""
    m = r._mapping
    data = json.loads(m["data_json"]) if m["data_json"] else None
    said = json.loads(m["warnings_json"]) if m["warnings_json"] else None
    warnings = tuple(str(w) for w in said) if isinstance(said, list) else ()
    if isinstance(data, dict) and WARNINGS in data:
        # ended by a schema-14 router still running beside this one (it opened the registry
        # before the upgrade moved such warnings out): the upload's fields are the rest
        warnings = warnings or warnings_in(data)
        data.pop(WARNINGS)
    return JobRecord(
        job_id=m["job_id"],
        partition=m["partition"],
        status=m["status"],
        backend=m["backend"],
        owner=m["owner"],
        created_at=m["created_at"],
        heartbeat_at=m["heartbeat_at"],
        kind=m["kind"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        data=data or None,
        run_id=m["run_id"],
        version=m["version"],
        production=m["production"],
        error=m["error"],
        warnings=warnings,
    )


def warnings_in(found: Any) -> tuple[str, ...]:
    """The warnings a JSON document holds under ``"warnings"`` (a run's options, a job's
    data as a schema-14 router ended it), as text; none when it holds none, or not a list
    (written by hand, or older)."""
    said = found.get(WARNINGS) if isinstance(found, dict) else None
    return tuple(str(w) for w in said) if isinstance(said, list) else ()


def ended_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The columns that end a job's row from ``values``, whose ``warnings`` (its run's, when
    given) go into ``warnings_json``: read with the row, never from the run again."""
    out = {k: v for k, v in values.items() if k != WARNINGS}
    out["warnings_json"] = _warnings_json(tuple(values.get(WARNINGS) or ()))
    return out


def _warnings_json(warnings: tuple[str, ...]) -> str | None:
    return json.dumps(list(warnings)) if warnings else None
