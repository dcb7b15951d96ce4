"""Retrain jobs through a router whose PostgreSQL fails under them (found by the outage attack):
the ``jobs`` table locked by another session past the lock timeout as a job ends, the server
stopped while a job waits its turn, the job's own record refused as it is posted. Before:
a job whose run committed and was promoted read "failed … post the rows again" once the lease
ran out; a queued job was dropped (never ran, then "router restarted" though the router never
stopped); a post whose job could not be recorded answered a bare 503.

The faults are real: a lock another session holds (the registry's lock timeout is shortened to
0.2 s for the test, from 30 s), and the server stopped with ``pg_ctl`` and started again."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from factories import linear_frame, spec_dict
from pgcluster import PORT, PostgresServer
from sqlalchemy import create_engine, text

from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import engine as registry_engine
from serving.app import create_app
from serving.jobs import Job, JobManager
from serving.settings import Settings

# slow (CI; the default run's 10 minutes): fault trials of jobs on a failing registry
pytestmark = pytest.mark.slow

TOKEN = "job-faults-admin-token"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
SPEC = spec_dict(features=["x0", "x1"], promotion={"policy": "always"})
LOCK_TIMEOUT = "200ms"


# ------------------------------------------------------------------------------------ helpers
@pytest.fixture
def short_lock_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A write waits 0.2 s for a lock (30 s in use), so a held lock fails it in a test."""
    begin = tuple(
        f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'" if s.startswith("SET LOCAL lock_timeout")
        else s
        for s in registry_engine.POSTGRESQL_WRITE_BEGIN
    )  # fmt: skip
    monkeypatch.setattr(registry_engine, "POSTGRESQL_WRITE_BEGIN", begin)


def _registry(db_url: str, root: Path) -> Settings:
    with Registry(root, db_url=db_url) as reg:
        train(SPEC, linear_frame(3, 30), reg, backend="local")
    return Settings(registry=root, registry_db=db_url, admin_token=TOKEN, refresh_seconds=0.2,
                    retrain_backend="local")  # fmt: skip


def _client(settings: Settings, jobs: JobManager) -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    return TestClient(create_app(settings, jobs=jobs))


def _rows(pid: int) -> list[dict[str, Any]]:
    """Thirty later periods of partition ``pid``."""
    new = linear_frame(pid + 1, 30, seed=9)
    new = new[new["pid"] == pid].assign(t=lambda d: d["t"] + 30).drop(columns=["pid"])
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in new.to_dict("records")]


def _post(client: Any, pid: int) -> Any:
    return client.post(
        f"/v1/partitions/pid={pid}/retrain", json={"rows": _rows(pid)}, headers=ADMIN
    )


def _ended(client: Any, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/jobs/{job_id}", headers=ADMIN)
        if r.status_code == 200 and r.json()["status"] in ("succeeded", "failed"):
            return dict(r.json())
        assert time.monotonic() < deadline, f"job {job_id}: {r.status_code} {r.text}"
        time.sleep(0.1)


class JobsLock:
    """Another session holding ``LOCK TABLE jobs IN EXCLUSIVE MODE`` (reads go on, writes
    wait) from ``take()`` to ``release()``, or through a ``with`` block."""

    def __init__(self, db_url: str) -> None:
        self.engine = create_engine(db_url)
        self.taken, self.released = threading.Event(), threading.Event()
        self.holder = threading.Thread(target=self._hold, name="jobs-lock")

    def _hold(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("LOCK TABLE jobs IN EXCLUSIVE MODE"))
            self.taken.set()
            self.released.wait(60)

    def take(self) -> None:
        self.holder.start()
        assert self.taken.wait(30)

    def release(self) -> None:
        self.released.set()
        if self.holder.ident is not None:  # taken
            self.holder.join(30)
        self.engine.dispose()

    def __enter__(self) -> JobsLock:
        self.take()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _versions(db_url: str, version: int) -> int:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            query = text("SELECT count(*) FROM model_versions WHERE version = :v")
            return int(conn.execute(query, {"v": version}).scalar() or 0)
    finally:
        engine.dispose()


# -------------------------------------------------------------------------------------- tests
@pytest.mark.slow
@pytest.mark.usefixtures("short_lock_timeout")
@pytest.mark.parametrize("patience", [10.0, 0.0], ids=["in-its-worker", "with-heartbeats"])
def test_a_job_ended_under_a_locked_jobs_table_is_recorded_once_it_is_free(
    postgres: PostgresServer, tmp_path: Path, patience: float
) -> None:
    """The job's run commits (v2, promoted) while another session locks the jobs table: its
    end is written again once the lock goes — in its worker within ``patience``, later with
    the heartbeats — never left for the lease to fail it ("router restarted")."""
    db_url = postgres.database()
    settings = _registry(db_url, tmp_path / "reg")
    lock = JobsLock(db_url)
    jobs = JobManager(lease_seconds=2, patience=patience, before_run=lambda job: lock.take())
    try:
        with _client(settings, jobs) as client:
            posted = _post(client, 0)
            assert posted.status_code == 202, posted.text
            job_id = posted.json()["job_id"]
            deadline = time.monotonic() + 30
            while not _versions(db_url, 2):  # the run commits under the lock
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(3)  # its end fails at the lock timeout and waits, past the lease
            assert client.get(f"/v1/jobs/{job_id}", headers=ADMIN).json()["status"] == "running"
            lock.release()
            job = _ended(client, job_id, timeout=30)
            assert job["status"] == "succeeded", job
            assert (job["version"], job["production_version"], job["error"]) == (2, 2, None)
            listed = client.get("/v1/jobs", headers=ADMIN).json()["jobs"]
            assert [(j["job_id"], j["status"]) for j in listed] == [(job_id, "succeeded")]
    finally:
        lock.release()


@pytest.mark.usefixtures("short_lock_timeout")
def test_a_retrain_whose_job_cannot_be_recorded_is_a_503_and_queues_nothing(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    db_url = postgres.database()
    settings = _registry(db_url, tmp_path / "reg")
    with _client(settings, JobManager()) as client, JobsLock(db_url) as lock:
        refused = _post(client, 0)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "5"
        detail = refused.json()["detail"]
        assert "could not be recorded" in detail and "nothing was queued" in detail
        assert "\n" not in detail
        lock.release()
        assert client.get("/v1/jobs", headers=ADMIN).json()["jobs"] == []
        again = _post(client, 0)  # the client's retry
        assert again.status_code == 202, again.text
        assert _ended(client, again.json()["job_id"])["status"] == "succeeded"


@pytest.mark.slow
def test_jobs_queued_while_postgresql_is_stopped_run_once_it_is_back(
    server: PostgresServer, tmp_path: Path
) -> None:
    """One job running, one queued behind it; PostgreSQL (the module's own ``server``) stops
    for 3 s (longer than the lease: nothing may fail them as a stopped router's). The running
    one's end — a failure, its database gone — is recorded once the server is back, and the
    queued one runs."""
    settings = _registry(server.database(), tmp_path / "reg")
    gate_open = threading.Event()
    started = threading.Event()

    def gate(job: Job) -> None:
        if job.partition == "pid=0":
            started.set()
            assert gate_open.wait(30)

    jobs = JobManager(lease_seconds=2, patience=0.5, before_run=gate)
    with _client(settings, jobs) as client:
        first = _post(client, 0)
        assert first.status_code == 202, first.text
        assert started.wait(30)
        queued = _post(client, 1)
        assert queued.status_code == 202, queued.text
        server._run("pg_ctl", "-D", str(server.data), "-m", "fast", "-w", "stop")
        gate_open.set()
        time.sleep(3)
        options = f"-c listen_addresses='' -k {server.root} -p {PORT} -c fsync=off"
        server._run("pg_ctl", "-D", str(server.data), "-l", str(server.log), "-w", "-o",
                    options, "start")  # fmt: skip
        second = _ended(client, queued.json()["job_id"])
        assert second["status"] == "succeeded", second
        assert second["version"] == 2 and second["production_version"] == 2
        one = _ended(client, first.json()["job_id"])
        assert one["status"] == "failed" and one["version"] is None, one
        assert not one["error"].startswith("router restarted"), one["error"]
        listed = {j["job_id"]: j["status"] for j in
                  client.get("/v1/jobs", headers=ADMIN).json()["jobs"]}  # fmt: skip
        assert listed == {
            first.json()["job_id"]: "failed",
            queued.json()["job_id"]: "succeeded",
        }
