"""A PostgreSQL server that stops answering — its processes frozen with SIGSTOP, as a hung host
or a network partition leaves it: the kernel still accepts connections and acknowledges what
is sent, so libpq's ``connect_timeout``, TCP keepalives and ``tcp_user_timeout`` never fire.

A query on a connection already open to it waited for ever (a router's cold loads and
``/readyz`` waited out a whole 150 s freeze; found by the outage attack). Now a wait with no
byte from the server for ``PG_SILENCE_SECONDS`` ends (``manymodels.registry.pg_silence``);
a wait that hears from the server, or one that waits for the write lock, is not cut.

Each test freezes a server of this module's own (so no other test meets it frozen) and thaws
it in a ``finally``; the timeouts are shortened to keep the tests to seconds, and each has a
``timeout`` mark: without the bound a test would otherwise hang until the suite's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import linear_frame, spec_dict
from pgcluster import CONNECT, SILENCE, PostgresServer
from sqlalchemy import create_engine, text, update
from sqlalchemy.exc import OperationalError

from manymodels.exceptions import RegistryError
from manymodels.pipeline import train
from manymodels.registry import Registry, pg_connect, pg_silence, schema
from manymodels.registry.engine import WriteTransaction
from serving import jobs as jobs_module
from serving import monitor, readiness
from serving.app import create_app
from serving.jobs import JobFailed, JobManager
from serving.local import running_server
from serving.settings import Settings

ROW = {"t": 5, "x0": 1.0, "x1": 2.0}
pytestmark = pytest.mark.usefixtures("short_bounds")  # conftest's: a second of silence
# how long a lock of the two lock tests is held from the moment the waiter starts: past two
# silences, as their ``> 2 * SILENCE`` asks (it was 3 s from the lock taken: ~0.7 s more)
LOCK_HELD = 2.3 * SILENCE


@pytest.fixture(scope="module")
def trained(server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A registry of 4 partitions in the server: its directory and database URL."""
    root = tmp_path_factory.mktemp("frozen") / "reg"
    db_url = server.database()
    with Registry(root, db_url=db_url) as reg:
        train(spec_dict(features=["x0", "x1"]), linear_frame(4), reg, backend="local")
    return root, db_url


@pytest.fixture(scope="module")
def router(trained: tuple[Path, str]) -> Iterator[str]:
    """One real router (uvicorn) on ``trained``, for the tests that freeze the server under
    it and only read (a cold load, ``/readyz``): one start for both, each ~1 s. Each test
    leaves it answering again (the server thawed) and loads no model the other needs cold."""
    root, db_url = trained
    settings = Settings(registry=root, registry_db=db_url, refresh_seconds=60)
    with pytest.MonkeyPatch.context() as mp:  # ``short_bounds``, for the module: the connect
        mp.setattr(pg_silence, "PG_SILENCE_SECONDS", SILENCE)  # timeout is the engine's,
        mp.setattr(pg_connect, "PG_CONNECT_TIMEOUT_SECONDS", CONNECT)  # made as it starts
        with running_server(settings) as base:
            yield base


@pytest.mark.timeout(60)
def test_a_query_on_a_connection_open_to_a_frozen_server_ends_after_its_silence(
    server: PostgresServer, trained: tuple[Path, str]
) -> None:
    root, db_url = trained
    with Registry(root, db_url=db_url) as reg:
        with reg.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            server.freeze()
            try:
                started = time.monotonic()
                with pytest.raises(OperationalError, match="server sent nothing for 1 s") as e:
                    conn.execute(text("SELECT 1"))
                took = time.monotonic() - started
            finally:
                server.thaw()
            assert e.value.connection_invalidated  # dropped, never pooled again
        assert SILENCE <= took < SILENCE + 3
        assert reg.store.model_ref("pid=0", 1) is not None  # a new connection, no restart


@pytest.mark.timeout(60)
def test_a_pooled_connections_pre_ping_to_a_frozen_server_fails_in_bounded_time(
    server: PostgresServer, trained: tuple[Path, str]
) -> None:
    """``model_ref`` (a router's cold load: a raw pooled connection, pre-pinged) waited for
    ever; now its pre-ping gives up after the silence, and its reconnect after the connect
    timeout: one ``RegistryError``."""
    root, db_url = trained
    with Registry(root, db_url=db_url) as reg:
        assert reg.store.model_ref("pid=0", 1) is not None  # leaves its connection pooled
        server.freeze()
        try:
            started = time.monotonic()
            with pytest.raises(RegistryError, match="registry database unavailable"):
                reg.store.model_ref("pid=1", 1)
            took = time.monotonic() - started
        finally:
            server.thaw()
        assert took < SILENCE + CONNECT + 3
        assert reg.store.model_ref("pid=1", 1) is not None


@pytest.mark.timeout(60)
def test_rows_that_keep_coming_are_not_cut_however_long_they_take(
    trained: tuple[Path, str],
) -> None:
    """The bound is on silence, not on duration: a result that arrives row by row for 2.4 s,
    a row each 0.4 s (each larger than the server's send buffer, so sent as it is made), is
    read whole with a 1 s bound."""
    root, db_url = trained
    with Registry(root, db_url=db_url) as reg, reg.store.engine.connect() as conn:
        started = time.monotonic()
        rows = conn.execute(
            text("SELECT repeat('x', 100000), pg_sleep(0.4) FROM generate_series(1, 6)")
        ).all()
        assert len(rows) == 6
        assert time.monotonic() - started > 2 * SILENCE


@pytest.mark.timeout(60)
def test_a_writer_waiting_for_the_write_lock_is_not_cut_by_the_silence(
    trained: tuple[Path, str],
) -> None:
    """A write transaction's first statement waits for the advisory lock while another writer
    holds it (up to its ``lock_timeout``): the server says nothing meanwhile, and that wait
    is allowed the lock timeout on top of the silence."""
    root, db_url = trained
    held, begun = threading.Event(), threading.Event()
    started: list[float] = []
    with Registry(root, db_url=db_url) as reg:

        def hold() -> None:
            with reg.store._begin():
                held.set()
                if begun.wait(30) and started:
                    time.sleep(max(0.0, started[0] + LOCK_HELD - time.monotonic()))

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert held.wait(10)
            started.append(time.monotonic())
            begun.set()
            with reg.store._begin() as conn:  # waits for ``hold`` to commit
                conn.execute(text("SELECT 1"))
            assert time.monotonic() - started[0] > 2 * SILENCE
        finally:
            begun.set()
            holder.join()


@pytest.mark.timeout(60)
def test_a_write_waiting_for_a_table_lock_is_not_cut_by_the_silence(
    trained: tuple[Path, str],
) -> None:
    """Past the advisory lock, a write's statement may wait for a lock another session holds
    (``LOCK TABLE``, a migration, ``VACUUM FULL``) up to the transaction's ``lock_timeout``:
    it was cut at the silence bound and failed as 'the server … down, or frozen'. A write
    transaction's every wait is allowed the lock timeout on top of the silence."""
    root, db_url = trained
    held, begun, release = threading.Event(), threading.Event(), threading.Event()
    started: list[float] = []
    with Registry(root, db_url=db_url) as reg:
        other = create_engine(db_url)

        def hold() -> None:
            with other.begin() as conn:
                conn.execute(text("LOCK TABLE meta IN EXCLUSIVE MODE"))
                held.set()
                if begun.wait(30) and started:
                    release.wait(max(0.0, started[0] + LOCK_HELD - time.monotonic()))

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert held.wait(10)
            started.append(time.monotonic())
            begun.set()
            with WriteTransaction(reg.store.engine) as conn:  # waits for ``hold`` to commit
                conn.execute(update(schema.meta).where(schema.meta.c.name == "x").values(value=""))
            assert time.monotonic() - started[0] > 2 * SILENCE
        finally:
            release.set()
            begun.set()
            holder.join()
            other.dispose()


@pytest.mark.timeout(90)
def test_a_routers_cold_load_answers_503_while_postgresql_is_frozen(
    server: PostgresServer, router: str
) -> None:
    with httpx.Client(base_url=router, timeout=30) as http:
        assert http.post("/v1/partitions/pid=0/predict", json={"rows": [ROW]}).is_success
        server.freeze()
        try:
            started = time.monotonic()
            cold = http.post("/v1/partitions/pid=2/predict", json={"rows": [ROW]})
            took = time.monotonic() - started
            hot = http.post("/v1/partitions/pid=0/predict", json={"rows": [ROW]})
        finally:
            server.thaw()
        assert cold.status_code == 503, cold.text
        assert "registry database" in cold.json()["detail"]
        assert took < SILENCE + CONNECT + 3
        assert hot.is_success  # a cached model needs no database
        assert http.post("/v1/partitions/pid=2/predict", json={"rows": [ROW]}).is_success


@pytest.mark.timeout(60)
def test_a_command_whose_server_freezes_under_it_exits_1_with_one_line(
    server: PostgresServer, trained: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server freezes once the command has opened the registry (its connection pooled):
    the read that follows fails in bounded time, and SQLAlchemy's error — a read is not
    translated to a ``RegistryError`` — was a traceback; it is one ``error:`` line, exit 1."""
    from typer.testing import CliRunner

    from manymodels.cli import app
    from manymodels.cli import registry as commands

    root, db_url = trained
    opened = commands.open_registry

    def open_then_freeze(*args: Any, **kwargs: Any) -> Any:
        reg = opened(*args, **kwargs)
        server.freeze()
        return reg

    monkeypatch.setattr(commands, "open_registry", open_then_freeze)
    try:
        result = CliRunner().invoke(
            app, ["models", "list", "--registry", str(root), "--registry-db", db_url]
        )
    finally:
        server.thaw()
    assert result.exit_code == 1, result.output
    assert len(result.output.splitlines()) == 1, result.output
    assert result.output.startswith("error: registry database unavailable: "), result.output


@pytest.mark.timeout(60)
def test_readyz_answers_503_in_its_own_bound_while_postgresql_is_frozen(
    server: PostgresServer, router: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/readyz`` awaited its ping with no bound of its own: as long as the database's (at
    least 4 s here, 25 s as shipped). It answers 503 after ``READY_TIMEOUT_SECONDS`` (V2's ready
    check: 400), and the ping ends then too."""
    monkeypatch.setattr(readiness, "READY_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(pg_silence, "PG_SILENCE_SECONDS", 2.0)  # the old wait: 4 s
    with httpx.Client(base_url=router, timeout=30) as http:
        assert http.get("/readyz").status_code == 200  # its ping's connection pooled
        server.freeze()
        answers = []
        try:
            for path in ["/readyz", "/readyz", "/v2/health/ready"]:
                started = time.monotonic()
                answers.append((http.get(path), time.monotonic() - started))
                if len(answers) == 1:  # the ping gives its pooled connection up with its check
                    for thread in threading.enumerate():
                        if thread.name == "registry-ping":
                            thread.join(10)
                    ping_took = time.monotonic() - started
        finally:
            server.thaw()
        for r, took in answers:
            assert took < 2.5, (r.request.url.path, took)  # the database's bound: >= 4 s
        assert ping_took < 2.5  # not the database's 4 s (its silence, then a reconnect)
        (first, _), (second, _), (v2, _) = answers
        assert first.status_code == second.status_code == 503
        # "… did not answer in 0.5 s", or the ping's own error if it ended with the check
        assert first.json()["detail"].startswith("registry unreachable: ")
        assert second.json()["detail"].startswith("registry unreachable: ")
        assert (v2.status_code, v2.json()) == (400, {"ready": False})
        deadline = time.monotonic() + 15
        while http.get("/readyz").status_code != 200:  # the ping left out ends, the next answers
            assert time.monotonic() < deadline
            time.sleep(0.2)


@pytest.mark.timeout(60)
def test_a_router_stops_in_bounded_time_while_postgresql_is_frozen(
    server: PostgresServer,
    trained: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Stopping (SIGTERM: uvicorn's graceful exit) flushes the drift sample the router holds;
    with the database frozen that flush waited as long as the database's connections did
    (25 s as shipped, 6 s here), on top of the rest of the shutdown. It is given
    ``STOP_SECONDS``, then fails like any flush, logged."""
    monkeypatch.setattr(pg_silence, "PG_SILENCE_SECONDS", 4.0)
    monkeypatch.setattr(monitor, "STOP_SECONDS", 1.0)
    root, db_url = trained
    settings = Settings(registry=root, registry_db=db_url, refresh_seconds=60)
    app = create_app(settings)
    try:
        with running_server(settings, app=app) as base:
            with httpx.Client(base_url=base, timeout=30) as http:
                r = http.post("/v1/partitions/pid=3/predict", json={"rows": [ROW]})
                assert r.is_success, r.text
            assert app.state.monitor.sampler.held() > 0  # a sample to flush on the way out
            server.freeze()
            started = time.monotonic()
        took = time.monotonic() - started
    finally:
        server.thaw()
    assert took < 3.5  # without the bound: 6 s (the pre-ping's 4 s, the reconnect's 2 s)
    assert "monitoring flush of 1 partition(s) failed: registry database unavailable" in caplog.text


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_routers_retrain_jobs_close_in_bounded_time_while_postgresql_is_frozen(
    server: PostgresServer, trained: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The router's shutdown closes its job manager before the monitor: failing its queued
    jobs, recording the end of the one running and the last try of unrecorded ends each
    waited as long as the database's connections did (25 s each as shipped, 8 s here). Each
    is given ``CLOSE_SECONDS``; what is not written is read from the jobs' runs later."""
    monkeypatch.setattr(pg_silence, "PG_SILENCE_SECONDS", 6.0)
    monkeypatch.setattr(jobs_module, "CLOSE_SECONDS", 0.5)
    root, db_url = trained
    started = threading.Event()

    def work() -> None:
        started.set()
        time.sleep(1.0)
        raise JobFailed("training failed")

    with Registry(root, db_url=db_url) as reg:
        jobs = JobManager(lease_seconds=60)
        jobs.attach(reg)
        jobs.submit("pid=0", work, backend="local")
        jobs.submit("pid=1", work, backend="local")  # queued behind it
        assert started.wait(10)
        server.freeze()
        try:
            began = time.monotonic()
            jobs.close()
            took = time.monotonic() - began
        finally:
            server.thaw()
    # each write: 0.5 s, then a reconnect's 2 s at most (libpq's least connect_timeout);
    # without the bound ~13 s (two writes, each 6 s of silence and a 2 s reconnect)
    assert took < 8.0, took
