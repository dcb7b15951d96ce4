"""What ``serving.job_retries.transient`` calls a database that may answer soon, on real
errors: a job's start is written again for as long as that lasts, and a retrain's POST is a
503 'post again'. A bug (a missing table, a bad statement) was retried for ever too, holding
the only retrain worker, and answered 503 'post again'."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from manymodels.exceptions import RegistryError
from manymodels.registry import Registry
from manymodels.registry.engine import WriteTransaction
from serving.job_retries import transient


def _raised(call: object) -> BaseException:
    try:
        call()  # type: ignore[operator]
    except Exception as e:
        return e
    raise AssertionError("no error")


def test_a_locked_database_is_transient_as_raised_and_under_the_registrys_error(
    tmp_path: Path,
) -> None:
    with Registry(tmp_path / "reg") as reg:
        holder = sqlite3.connect(tmp_path / "reg" / "registry.db", timeout=0)
        holder.execute("BEGIN IMMEDIATE")
        try:
            raw = _raised(lambda: sqlite3.connect(reg.store.engine.url.database, timeout=0)
                          .execute("BEGIN IMMEDIATE"))  # fmt: skip
            engine = create_engine(reg.store.engine.url, connect_args={"timeout": 0})
            wrapped = _raised(lambda: _write(engine))
        finally:
            holder.rollback()
            holder.close()
    assert "locked" in str(raw) and transient(raw)
    assert isinstance(wrapped, OperationalError) and transient(wrapped)
    assert not transient(RegistryError("registry write failed"))  # says nothing of why
    chained = RegistryError("registry write failed")
    chained.__cause__ = wrapped
    assert transient(chained)


def _write(engine: object) -> None:
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def test_a_file_that_is_not_a_database_is_not_transient(tmp_path: Path) -> None:
    (tmp_path / "not.db").write_bytes(b"this is not a SQLite database, but long enough " * 4)
    raw = _raised(lambda: sqlite3.connect(tmp_path / "not.db").execute("SELECT 1 FROM x"))
    assert getattr(raw, "sqlite_errorname", "") == "SQLITE_NOTADB" and not transient(raw)


def test_a_missing_table_or_a_bad_statement_is_not_transient(tmp_path: Path) -> None:
    with Registry(tmp_path / "reg") as reg:
        missing = _raised(lambda: _in_write(reg, "UPDATE nosuch SET a = 1"))
        bad = _raised(lambda: _in_write(reg, "UPDAT meta"))
    assert "no such table" in str(missing) and not transient(missing)
    assert "syntax error" in str(bad) and not transient(bad)


def _in_write(reg: Registry, statement: str) -> None:
    with WriteTransaction(reg.store.engine) as conn:
        conn.execute(text(statement))


@pytest.mark.parametrize("error", [ValueError("x"), KeyError("k"), RuntimeError("r")])
def test_other_errors_are_not_transient(error: Exception) -> None:
    assert not transient(error)


def test_the_heartbeat_outlives_an_error_that_is_not_transient(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A heartbeat that met an error not of a database away (here the jobs table gone) ended
    the heartbeat thread, silently: every job running here was then failed as a stopped
    router's after the lease. It logs the error and beats again."""
    import threading
    import time

    from serving.jobs import JobManager

    gate = threading.Event()
    jobs = JobManager(lease_seconds=0.4)
    with Registry(tmp_path / "reg") as reg:
        jobs.attach(reg)
        try:
            job = jobs.submit("pid=0", lambda: gate.wait(30), backend="local")
            deadline = time.monotonic() + 10
            while jobs.get(job.job_id).status != "running":  # started before its table goes
                assert time.monotonic() < deadline
                time.sleep(0.05)
            with sqlite3.connect(tmp_path / "reg" / "registry.db") as conn:
                conn.execute("ALTER TABLE jobs RENAME TO jobs_away")
            deadline = time.monotonic() + 10
            while "retrain job heartbeat failed" not in caplog.text:
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
            assert jobs._heartbeat.beating is not None
            beating = jobs._heartbeat.beating[0]
            with sqlite3.connect(tmp_path / "reg" / "registry.db") as conn:
                conn.execute("ALTER TABLE jobs_away RENAME TO jobs")
            time.sleep(0.5)  # more beats than one
            assert beating.is_alive()
        finally:
            gate.set()
            jobs.close()
