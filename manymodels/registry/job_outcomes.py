"""What a retrain job made, read from the runs and versions it wrote rather than from its own row.

A job's row is the last thing its router writes, so it is the one most easily lost: the
database away for a moment, the ``jobs`` table locked past the lock timeout, or the router
killed just after the run committed. The row then says the job is running until another
router fails it ("router restarted … post the rows again"), while production may already serve
the version it made — and following that advice retrains twice. Whoever ends a job (its own
router, or one failing the job of a router that stopped) asks here first: a job's run carries
the job's id in its options (``JOB_NOTE``, which ``serving.retrain`` sets), so the run it
started, and the version of its partition that run registered, can be found again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from manymodels.registry import schema as t
from manymodels.registry.engine import now
from manymodels.registry.entities import killed
from manymodels.registry.job_record import warnings_in

JOB_NOTE = "job_id"  # the run option naming the retrain job that started the run
PRODUCTION = "production"


@dataclass(frozen=True)
class Made:
    """A job's run, and what it left: the version it registered (``None``: none), where
    production points now, and what the run warned of (its options' ``warnings``)."""

    run_id: str
    run_status: str
    version: int | None
    production: int | None
    warnings: tuple[str, ...] = ()

    def ended(self) -> dict[str, Any]:
        """The job's row as its end says: succeeded with the version, or failed with the run
        (its warnings kept with the job: ``job_record.ended_values``)."""
        status = "succeeded" if self.version is not None else "failed"
        return {"status": status, "run_id": self.run_id, "version": self.version,
                "production": self.production, "warnings": self.warnings}  # fmt: skip


def made(conn: Connection, job_id: str, partition: str, since: str) -> Made | None:
    """The run job ``job_id`` started (at or after ``since``, its creation) and what it made of
    ``partition``; ``None`` when no run names the job (it never got that far, or a router older
    than ``JOB_NOTE`` ran it)."""
    pattern = f'%"{JOB_NOTE}":"{job_id}"%'  # options are stored compact (registry.engine.dumps)
    runs = conn.execute(
        select(t.runs.c.run_id, t.runs.c.status, t.runs.c.options_json)
        .where(t.runs.c.started_at >= since, t.runs.c.options_json.like(pattern))
        .order_by(t.runs.c.started_at)
    )
    for run_id, status, options in runs:
        found = json.loads(options or "{}")
        if found.get(JOB_NOTE) != job_id:  # LIKE's "_" matched a char
            continue
        v = t.model_versions.c
        version = conn.execute(
            select(func.max(v.version)).where(v.key == partition, v.run_id == run_id)
        ).scalar()
        a = t.aliases.c
        production = conn.execute(
            select(a.version).where(a.key == partition, a.alias == PRODUCTION)
        ).scalar()
        return Made(run_id, status, version, production, warnings_in(found))
    return None


def close_killed_run(conn: Connection, found: Made, partition: str, why: str | None) -> None:
    """Close the run of a job ended for its router (``found``): completed when it registered
    its version, else failed, its partition's outcome ``why``. Left marked running, it read
    "running (process gone)" in ``runs`` and the dashboard for ever, and ``doctor`` exited 1
    on it, advising a ``train --resume`` of data only the router held. Only a run whose
    process is gone from this machine (``killed``): another machine's router may merely be
    cut off, and its run commit yet (its job then reads succeeded, ``finish``)."""
    row = conn.execute(
        select(t.runs.c.status, t.runs.c.options_json).where(t.runs.c.run_id == found.run_id)
    ).first()
    if row is None or not killed(row.status, json.loads(row.options_json or "{}")):
        return
    running = (t.runs.c.run_id == found.run_id, t.runs.c.status == "running")
    if found.version is not None:  # its one partition committed; only its end was lost
        conn.execute(update(t.runs).where(*running).values(status="completed", ended_at=now()))
        return
    rp = t.run_partitions.c
    told = conn.execute(
        select(rp.status).where(rp.run_id == found.run_id, rp.key == partition)
    ).first()
    failed = t.runs.c.n_failed + (0 if told is not None else 1)
    conn.execute(
        update(t.runs)
        .where(*running)
        .values(status="failed", ended_at=now(), error=why, n_failed=failed)
    )
    if told is None:
        conn.execute(
            insert(t.run_partitions).values(
                run_id=found.run_id, key=partition, status="failed",
                error_type="RouterRestarted", message=why, n_rows=0,
            )
        )  # fmt: skip
