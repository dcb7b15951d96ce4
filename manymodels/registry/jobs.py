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
registry's write lock (``engine.WriteTransaction``), as every other write does.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection, Row

from manymodels.exceptions import RegistryError, VersionConflict
from manymodels.registry import schema as t
from manymodels.registry.engine import WriteTransaction, engine_read_only, now
from manymodels.registry.job_outcomes import close_killed_run, made
from manymodels.tempnames import process

ENDED = ("succeeded", "failed")
RESTARTED = "router restarted"


def router_id() -> str:
    """Who runs a job: this host, this process, a nonce (two routers in one process), and
    when the process started (``tempnames.process``): a router restarted under the same pid
    on the same host — a container's PID 1 after ``docker restart`` or an OOM kill in its
    pod — is another router, whose predecessor's jobs end at once."""
    found = process(os.getpid())
    start = found[1] if found is not None else "x"
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:{start}"


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
        job = _entity(row) if row is not None else None
        if job is None or lease is None or not self._gone_ids([job], lease, spare):
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
            jobs = [_entity(r) for r in rows]
        stale = self._gone_ids(jobs, lease, spare)
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
        ending it if its router is gone)."""
        busy: JobRecord | None = None
        try:
            with WriteTransaction(self.engine) as conn:
                _expire(conn, lease, partition=job.partition, spare=spare)
                row = conn.execute(
                    select(t.jobs).where(t.jobs.c.active_partition == job.partition)
                ).first()
                if row is not None:
                    busy = _entity(row)
                else:
                    conn.execute(insert(t.jobs).values(**_row(job)))
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
        at = now()
        with WriteTransaction(self.engine) as conn:
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
        """End an active job (``fields``: error, run_id, version, production), free its
        partition, and forget all but the newest ``history`` ended jobs; returns it as ended.

        A failure whose run registered a version all the same (the job's work failed after
        the commit: its database went away, say) is recorded as succeeded with that version:
        nothing reports failure for a retrain that happened. A job already ended is left as
        it is (``None``), except one failed because its router seemed gone ("router
        restarted"), which a success corrects: the router was alive, its end held back."""
        with WriteTransaction(self.engine) as conn:
            row = conn.execute(select(t.jobs).where(t.jobs.c.job_id == job_id)).first()
            job = _entity(row) if row is not None else None
            if job is None or not (job.active or _corrects(job, status)):
                return None
            if status == "failed":
                found = made(conn, job_id, job.partition, job.created_at)
                if found is not None and found.version is not None:
                    status, fields = "succeeded", {**found.ended(), "error": None}
            values = {"status": status, "finished_at": now(), "active_partition": None,
                      "error": None, **fields}  # fmt: skip
            conn.execute(update(t.jobs).where(t.jobs.c.job_id == job_id).values(**values))
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
        """Say these jobs' router is alive."""
        if job_ids:
            with WriteTransaction(self.engine) as conn:
                conn.execute(
                    update(t.jobs)
                    .where(t.jobs.c.job_id.in_(job_ids), t.jobs.c.active_partition.is_not(None))
                    .values(heartbeat_at=now())
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
            if not _stale(conn, lease, job_ids=job_ids, spare=spare):
                return []
        with WriteTransaction(self.engine) as conn:
            ids = _expire(conn, lease, job_ids=job_ids, spare=spare)
        return [j for j in (self.get(i) for i in ids) if j is not None]

    def _gone_ids(
        self, jobs: list[JobRecord], lease: float | None, spare: Collection[str]
    ) -> list[str]:
        """The ids of ``jobs`` whose router is gone, to end on a writable registry."""
        if lease is None:
            return []
        cutoff = _cutoff(lease)
        return [
            j.job_id for j in jobs
            if j.active and j.job_id not in spare and _gone(j.owner, j.heartbeat_at, cutoff)
        ]  # fmt: skip

    def _writable(self) -> bool:
        return engine_read_only(self.engine) is None


# ---------------------------------------------------------------------------------- helpers
def _expire(
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
    cutoff = _cutoff(lease)
    gone = [_entity(r) for r in conn.execute(query)]
    gone = [j for j in gone if j.job_id not in spare and _gone(j.owner, j.heartbeat_at, cutoff)]
    for job in gone:
        found = made(conn, job.job_id, job.partition, job.created_at)
        if found is None:
            values: dict[str, Any] = {"status": "failed", "error": _lost(job, None)}
        else:  # succeeded with its version, or failed naming its run
            why = None if found.version is not None else _lost(job, found.run_id)
            values = {**found.ended(), "error": why}
            close_killed_run(conn, found, job.partition, why)
        conn.execute(
            update(t.jobs)
            .where(t.jobs.c.job_id == job.job_id, t.jobs.c.active_partition.is_not(None))
            .values(finished_at=now(), active_partition=None, **values)
        )
    return [j.job_id for j in gone]


def _lost(job: JobRecord, run_id: str | None) -> str:
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


def _corrects(job: JobRecord, status: str) -> bool:
    """Whether ``status`` corrects the end another router gave ``job``: a success of a job
    failed as its router's, whose router was alive after all."""
    return (
        status == "succeeded" and job.status == "failed" and (job.error or "").startswith(RESTARTED)
    )


def _read(conn: Connection, job_id: str) -> JobRecord | None:
    row = conn.execute(select(t.jobs).where(t.jobs.c.job_id == job_id)).first()
    return _entity(row) if row is not None else None


def _stale(
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
    cutoff = _cutoff(lease)
    rows = conn.execute(query)
    return [i for i, owner, beat in rows if i not in spare and _gone(owner, beat, cutoff)]


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


def _cutoff(lease: float) -> str:
    """Heartbeats older than this (ISO-8601 UTC, compared as text) are a router's last."""
    return (datetime.now(UTC) - timedelta(seconds=lease)).isoformat(timespec="microseconds")


def _gone(owner: str, heartbeat_at: str, cutoff: str) -> bool:
    return heartbeat_at < cutoff or _process_gone(owner)


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


def _row(job: JobRecord) -> dict[str, Any]:
    values = {c.name: getattr(job, c.name) for c in t.jobs.columns if hasattr(job, c.name)}
    values["data_json"] = json.dumps(job.data) if job.data is not None else None
    values["active_partition"] = job.partition if job.active else None
    return values


def _entity(r: Row[Any]) -> JobRecord:
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
