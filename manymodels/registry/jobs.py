"""The routers' retrain jobs in the registry database, so that they outlive a router and every
router sharing the database answers for all of them (``serving.jobs`` runs them).

One retrain per partition holds across routers by a constraint, not by memory: a job holds
``active_partition`` (unique) while it is queued or running and lets go when it ends. Each
router says which of its jobs are still alive (``heartbeat``) every few seconds; a job whose
router stopped without ending it — killed, crashed, restarted — is failed by the first router
that looks at it ("router restarted"): at once when that router ran on the same host (its
process is gone), otherwise once its heartbeat is ``lease`` seconds old — unless the job's run
registered a version, which makes it succeeded with that version (``job_outcomes``: the end
that its router could not record). A router never fails the jobs it still runs itself
(``spare``), whose heartbeats a database outage may have held back. Writes take the
registry's write lock (``engine.WriteTransaction``), as every other write does. Heartbeats are
stamped, and leases judged, by the database server's clock (``db_clock``), never a router's
own: routers whose clocks disagree cannot end each other's live jobs. The record and
its row are ``job_record``; whether a router is gone, and the end its jobs get, ``job_leases``.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection

from manymodels.exceptions import RegistryError, VersionConflict
from manymodels.registry import schema as t
from manymodels.registry.db_clock import db_now
from manymodels.registry.engine import WriteTransaction, engine_read_only, now
from manymodels.registry.job_leases import (
    RESTARTED,
    corrects,
    expire_gone,
    router_gone,
    router_id,
    stale_ids,
)
from manymodels.registry.job_outcomes import made
from manymodels.registry.job_record import ENDED, JobRecord, ended_values, job_of, job_row

__all__ = ["ENDED", "RESTARTED", "JobBusy", "JobRecord", "JobTable", "router_id"]


class JobBusy(RegistryError):
    """The partition already has a job queued or running (on any router)."""

    def __init__(self, job: JobRecord) -> None:
        self.job = job
        super().__init__(f"partition '{job.partition}' has job {job.job_id} {job.status}")


class JobTable:
    """Jobs by id, newest first, one active per partition; see the module's docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------------------ reads
    def get(
        self, job_id: str, *, lease: float | None = None, spare: Collection[str] = ()
    ) -> JobRecord | None:
        """The job, ended first if its router is gone (with ``lease``, on a writable
        registry; never one of ``spare``, the caller's own live jobs)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.jobs).where(t.jobs.c.job_id == job_id)).first()
            job = job_of(row) if row is not None else None
            if job is None or lease is None or not _gone_ids(conn, [job], lease, spare):
                return job
        if self.expire(lease, job_ids=[job_id], spare=spare):
            return self.get(job_id)
        return job

    def active(
        self, partition: str, *, lease: float | None = None, spare: Collection[str] = ()
    ) -> JobRecord | None:
        with self.engine.connect() as conn:
            job_id = conn.execute(
                select(t.jobs.c.job_id).where(t.jobs.c.active_partition == partition)
            ).scalar()
        job = self.get(job_id, lease=lease, spare=spare) if job_id is not None else None
        return job if job is not None and job.active else None

    def recent(
        self, *, limit: int = 50, lease: float | None = None, spare: Collection[str] = ()
    ) -> list[JobRecord]:
        """The newest jobs first; with ``lease``, those of a router that is gone are ended
        first, as ``get`` ends them: the list showed them queued until each was read."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.jobs).order_by(t.jobs.c.seq.desc()).limit(limit))
            jobs = [job_of(r) for r in rows]
            stale = _gone_ids(conn, jobs, lease, spare)
        if lease is not None and stale and self.expire(lease, job_ids=stale, spare=spare):
            return self.recent(limit=limit)
        return jobs

    def active_uploads(self) -> set[str]:
        """The sha256 of the rows each queued or running job trains on: stored before its run
        exists to name them, so ``gc`` counts them as referenced (a few rows: one per active
        job)."""
        q = select(t.jobs.c.data_json).where(t.jobs.c.active_partition.is_not(None))
        with self.engine.connect() as conn:
            texts = list(conn.execute(q).scalars())
        out: set[str] = set()
        for text in texts:
            sha = json.loads(text).get("sha256") if text else None
            if isinstance(sha, str):
                out.add(sha)
        return out

    # ----------------------------------------------------------------------------- writes
    def submit(self, job: JobRecord, *, lease: float, spare: Collection[str] = ()) -> JobRecord:
        """Record a queued job; ``JobBusy`` when its partition has an active one (after
        ending it if its router is gone). Its first heartbeat is the database's time, not the
        one ``job`` carries from this process's clock; the job returned carries it."""
        busy: JobRecord | None = None
        try:
            with WriteTransaction(self.engine) as conn:
                expire_gone(conn, lease, partition=job.partition, spare=spare)
                row = conn.execute(
                    select(t.jobs).where(t.jobs.c.active_partition == job.partition)
                ).first()
                if row is not None:
                    busy = job_of(row)
                else:
                    job = replace(job, heartbeat_at=db_now(conn))
                    conn.execute(insert(t.jobs).values(**job_row(job)))
        except VersionConflict:  # the unique constraint: another writer got there first
            busy = self.active(job.partition)
            if busy is None:
                raise
        if busy is not None:
            raise JobBusy(busy)
        return job

    def start(self, job_id: str, *, owner: str | None = None) -> JobRecord | None:
        """Queued → running; ``None`` when it is no longer queued (ended meanwhile). A job
        ``owner`` finds running already is returned as started: ``owner``'s own start of it,
        retried because its answer was lost though its commit was not (a connection cut as
        the server committed) — only the router that queued a job starts it."""
        with WriteTransaction(self.engine) as conn:
            at = db_now(conn)
            changed = conn.execute(
                update(t.jobs)
                .where(t.jobs.c.job_id == job_id, t.jobs.c.status == "queued")
                .values(status="running", started_at=at, heartbeat_at=at)
            ).rowcount
            job = _read(conn, job_id)
        if changed or (job is not None and job.status == "running" and job.owner == owner):
            return job
        return None

    def finish(self, job_id: str, status: str, *, history: int, **fields: Any) -> JobRecord | None:
        """End an active job (``fields``: error, run_id, version, production, and its run's
        warnings, kept in its row: ``job_record.ended_values``), free its partition, and
        forget all but the newest ``history`` ended jobs; returns it as ended.

        A failure whose run registered a version all the same (the job's work failed after
        the commit: its database went away, say) is recorded as succeeded with that version:
        nothing reports failure for a retrain that happened. A job already ended is left as
        it is (``None``), except one failed because its router seemed gone ("router
        restarted"), which a success corrects: the router was alive, its end held back."""
        with WriteTransaction(self.engine) as conn:
            row = conn.execute(select(t.jobs).where(t.jobs.c.job_id == job_id)).first()
            job = job_of(row) if row is not None else None
            if job is None or not (job.active or corrects(job, status)):
                return None
            if status == "failed":
                found = made(conn, job_id, job.partition, job.created_at)
                if found is not None and found.version is not None:
                    status, fields = "succeeded", {**found.ended(), "error": None}
            values = {"status": status, "finished_at": now(), "active_partition": None,
                      "error": None, **fields}  # fmt: skip
            ended = ended_values(values)
            conn.execute(update(t.jobs).where(t.jobs.c.job_id == job_id).values(**ended))
            _prune(conn, history)
            return _read(conn, job_id)

    def fail_queued(self, owner: str, error: str) -> list[JobRecord]:
        """Fail the jobs ``owner`` queued and never started (it is shutting down)."""
        with WriteTransaction(self.engine) as conn:
            where = (t.jobs.c.owner == owner, t.jobs.c.status == "queued")
            ids = list(conn.execute(select(t.jobs.c.job_id).where(*where)).scalars())
            _end(conn, ids, error)
        return [j for j in (self.get(i) for i in ids) if j is not None]

    def heartbeat(self, job_ids: list[str]) -> None:
        """Say these jobs' router is alive, at the database's time (``db_clock``)."""
        if job_ids:
            with WriteTransaction(self.engine) as conn:
                conn.execute(
                    update(t.jobs)
                    .where(t.jobs.c.job_id.in_(job_ids), t.jobs.c.active_partition.is_not(None))
                    .values(heartbeat_at=db_now(conn))
                )

    def expire(
        self, lease: float, *, job_ids: list[str] | None = None, spare: Collection[str] = ()
    ) -> list[JobRecord]:
        """End the active jobs (of ``job_ids``, or all; never of ``spare``) whose router is
        gone; returns them. Looked for first without the write lock (a router's start takes it
        only when there is something to end), then again under it. Nothing on a registry this
        process cannot write."""
        if not self._writable():
            return []
        with self.engine.connect() as conn:
            if not stale_ids(conn, lease, job_ids=job_ids, spare=spare):
                return []
        with WriteTransaction(self.engine) as conn:
            ids = expire_gone(conn, lease, job_ids=job_ids, spare=spare)
        return [j for j in (self.get(i) for i in ids) if j is not None]

    def _writable(self) -> bool:
        return engine_read_only(self.engine) is None


# ---------------------------------------------------------------------------------- helpers
def _gone_ids(
    conn: Connection, jobs: list[JobRecord], lease: float | None, spare: Collection[str]
) -> list[str]:
    """The ids of ``jobs`` whose router is gone at the database's time, to end on a writable
    registry; no query at all when none is active (or there is no ``lease``)."""
    live = [j for j in jobs if j.active and j.job_id not in spare]
    if lease is None or not live:
        return []
    at = db_now(conn)
    return [j.job_id for j in live if router_gone(j.owner, j.heartbeat_at, at, lease)]


def _read(conn: Connection, job_id: str) -> JobRecord | None:
    row = conn.execute(select(t.jobs).where(t.jobs.c.job_id == job_id)).first()
    return job_of(row) if row is not None else None


def _end(conn: Connection, job_ids: list[str], error: str) -> None:
    if job_ids:
        conn.execute(
            update(t.jobs)
            .where(t.jobs.c.job_id.in_(job_ids), t.jobs.c.active_partition.is_not(None))
            .values(status="failed", finished_at=now(), active_partition=None, error=error)
        )


def _prune(conn: Connection, history: int) -> None:
    ended = t.jobs.c.active_partition.is_(None)
    oldest_kept = (
        select(t.jobs.c.seq).where(ended).order_by(t.jobs.c.seq.desc()).offset(history - 1)
    ).limit(1)
    seq = conn.execute(oldest_kept).scalar()
    if seq is not None:
        conn.execute(delete(t.jobs).where(ended, t.jobs.c.seq < seq))
