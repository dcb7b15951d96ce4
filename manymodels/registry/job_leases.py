"""Whether a job's router is gone, and the end a gone router's jobs get: the lease half of
``registry.jobs`` (see its docstring). A router names itself (``router_id``) so that another
on the same host can tell at once that its process is gone, and heartbeats older than the
lease tell it across hosts; a gone router's job ends succeeded when its run registered a
version (``job_outcomes``), failed "router restarted" otherwise. Heartbeats are stamped and
judged by one clock, the database server's (``db_clock``): a router whose clock runs behind
or ahead of another's can neither end the other's live jobs nor keep a dead one's."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from manymodels.heartbeat import SILENT_AFTER, beat_proves_nothing
from manymodels.registry import schema as t
from manymodels.registry.db_clock import db_now
from manymodels.registry.engine import now
from manymodels.registry.job_outcomes import close_killed_run, made
from manymodels.registry.job_record import JobRecord, ended_values, job_of
from manymodels.tempnames import process

RESTARTED = "router restarted"


def router_id() -> str:
    """Who runs a job: this host, this process, a nonce (two routers in one process), and
    when the process started (``tempnames.process``): a router restarted under the same pid
    on the same host — a container's PID 1 after ``docker restart`` or an OOM kill in its
    pod — is another router, whose predecessor's jobs end at once."""
    found = process(os.getpid())
    start = found[1] if found is not None else "x"
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:{start}"


def expire_gone(
    conn: Connection,
    lease: float,
    *,
    partition: str | None = None,
    job_ids: list[str] | None = None,
    spare: Collection[str] = (),
) -> list[str]:
    """In ``conn``'s write transaction: end the active jobs whose router is gone — succeeded
    when the job's run registered a version, failed otherwise."""
    query = select(t.jobs).where(t.jobs.c.active_partition.is_not(None))
    if partition is not None:
        query = query.where(t.jobs.c.active_partition == partition)
    if job_ids is not None:
        query = query.where(t.jobs.c.job_id.in_(job_ids))
    at = db_now(conn)
    gone = [job_of(r) for r in conn.execute(query)]
    gone = [
        j for j in gone if j.job_id not in spare and router_gone(j.owner, j.heartbeat_at, at, lease)
    ]
    for job in gone:
        found = made(conn, job.job_id, job.partition, job.created_at)
        if found is None:
            values: dict[str, Any] = {"status": "failed", "error": lost(job, None)}
        else:  # succeeded with its version, or failed naming its run
            why = None if found.version is not None else lost(job, found.run_id)
            values = {**found.ended(), "error": why}
            close_killed_run(conn, found, job.partition, why)
        conn.execute(
            update(t.jobs)
            .where(t.jobs.c.job_id == job.job_id, t.jobs.c.active_partition.is_not(None))
            .values(finished_at=now(), active_partition=None, **ended_values(values))
        )
    return [j.job_id for j in gone]


def lost(job: JobRecord, run_id: str | None) -> str:
    """Why a job of a router that is gone failed, and what to do."""
    beat = f"its last heartbeat {job.heartbeat_at}"
    if job.status == "queued":
        return (
            f"{RESTARTED}: the router that queued this job ({job.owner}) stopped before it "
            f"started it ({beat}); nothing was trained: post the rows again to retrain"
        )
    made_none = f"; its run {run_id} registered no version" if run_id else ""
    return (
        f"{RESTARTED}: the router running this job ({job.owner}) stopped before it finished "
        f"({beat}){made_none}; post the rows again to retrain"
    )


def corrects(job: JobRecord, status: str) -> bool:
    """Whether ``status`` corrects the end another router gave ``job``: a success of a job
    failed as its router's, whose router was alive after all."""
    return (
        status == "succeeded" and job.status == "failed" and (job.error or "").startswith(RESTARTED)
    )


def stale_ids(
    conn: Connection,
    lease: float,
    *,
    job_ids: list[str] | None = None,
    spare: Collection[str] = (),
) -> list[str]:
    """The ids of the active jobs whose router is gone."""
    query = select(t.jobs.c.job_id, t.jobs.c.owner, t.jobs.c.heartbeat_at).where(
        t.jobs.c.active_partition.is_not(None)
    )
    if job_ids is not None:
        query = query.where(t.jobs.c.job_id.in_(job_ids))
    at = db_now(conn)
    rows = conn.execute(query)
    return [i for i, owner, beat in rows if i not in spare and router_gone(owner, beat, at, lease)]


def lease_cutoff(at: str, lease: float) -> str:
    """Heartbeats older than this (ISO-8601 UTC, compared as text) are a router's last, judged
    at ``at`` — the database's time (``db_now``), which stamped them too."""
    moment = datetime.fromisoformat(at).astimezone(UTC) - timedelta(seconds=lease)
    return moment.isoformat(timespec="microseconds")


def router_gone(owner: str, heartbeat_at: str, at: str, lease: float) -> bool:
    """Whether the router ``owner`` is gone at ``at`` (the database's time, ``db_now``): its
    heartbeat older than ``lease`` (``lease_cutoff``), or stamped ahead of ``at`` past both
    ``lease`` and the silence limit (``heartbeat.beat_proves_nothing``, the rule of runs and
    scheduler marks) — a beat written before beats took the database's clock, by a machine
    whose clock ran ahead, proves nothing; before, a router killed on such a machine held its
    jobs' partitions ("a retrain is already under way") until this clock caught up — or its
    process gone from this host. Judged by the database's clock, not this process's: a router
    whose clock ran 3 min behind saw every live router's lease as expired and ended its jobs,
    so a second retrain of their partitions started beside the first."""
    if heartbeat_at < lease_cutoff(at, lease):
        return True
    limit = max(lease, SILENT_AFTER)
    moment = datetime.fromisoformat(at)
    return beat_proves_nothing(heartbeat_at, limit, moment) or _process_gone(owner)


def _process_gone(owner: str) -> bool:
    """Whether ``owner`` ran on this host in a process that no longer exists: none has its
    pid, or a later one does (its start time differs; an owner written before routers
    recorded theirs is judged by its pid alone)."""
    host, _, rest = owner.partition(":")
    pid, _, rest = rest.partition(":")
    start = rest.partition(":")[2]
    if host != socket.gethostname() or not (pid.isascii() and pid.isdigit()):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process: alive
        return False
    found = process(int(pid)) if start.isascii() and start.isdigit() else None
    return found is not None and found[1] != start
