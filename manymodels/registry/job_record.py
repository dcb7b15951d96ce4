"""One retrain job as the registry's ``jobs`` table holds it, and its translation to and from
a row: kept apart from the table's reads and writes (``registry.jobs``) and the leases that end
a gone router's jobs (``registry.job_leases``), which both hand these records around."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Row

from manymodels.registry import schema as t

ENDED = ("succeeded", "failed")


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

    @property
    def active(self) -> bool:
        return self.status not in ENDED


def job_row(job: JobRecord) -> dict[str, Any]:
    """The ``jobs`` row that stores ``job``: ``data`` as JSON, the partition held while active."""
    values = {c.name: getattr(job, c.name) for c in t.jobs.columns if hasattr(job, c.name)}
    values["data_json"] = json.dumps(job.data) if job.data is not None else None
    values["active_partition"] = job.partition if job.active else None
    return values


def job_of(r: Row[Any]) -> JobRecord:
    """The job a ``jobs`` row holds: stores hand out records, never rows."""
    m = r._mapping
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
        data=json.loads(m["data_json"]) if m["data_json"] else None,
        run_id=m["run_id"],
        version=m["version"],
        production=m["production"],
        error=m["error"],
    )
