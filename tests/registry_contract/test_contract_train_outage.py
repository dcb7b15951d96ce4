"""``train`` while its PostgreSQL server goes away mid-run: the command ended with
"error: registry database unavailable: …" and nothing else, though its run stays resumable
with the partitions it committed: the run's id, and the way to finish it, were left for
``manymodels doctor`` to tell once the database was back. The S3 outage's line
(``manymodels.store_outage``) names both; so does this one now."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import linear_frame, spec_dict
from pgcluster import PORT, PostgresServer, running_own_server

from manymodels.exceptions import RegistryError
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.run_chunks import Progress


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    """A server of this test's own: it is stopped mid-run (as ``test_contract_outage``'s)."""
    yield from running_own_server()


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    server._run("pg_ctl", "-D", str(server.data), "-w", *args)  # the fixture's own runner


@pytest.mark.slow  # a server of its own, stopped and started again: ~5 s
def test_a_run_whose_database_stops_says_how_to_finish_it(
    server: PostgresServer, tmp_path: Path
) -> None:
    db_url, root = server.database(), tmp_path / "reg"
    spec, frame = spec_dict(features=["x0", "x1"]), linear_frame(40)
    seen: list[Progress] = []

    def stop_after_first_chunk(progress: Progress) -> None:
        seen.append(progress)
        if progress.trained and len(seen) == 2:  # a chunk committed, more to come
            _pg_ctl(server, "-m", "fast", "stop")

    with Registry(root, db_url=db_url) as reg, pytest.raises(RegistryError) as raised:
        train(spec, frame, reg, backend="local", progress=stop_after_first_chunk)
    message = str(raised.value)
    assert message.startswith("registry database unavailable: "), message
    assert 0 < seen[-1].trained < 40, seen
    options = f"-c listen_addresses='' -k {server.root} -p {PORT} -c fsync=off"
    _pg_ctl(server, "-l", str(server.log), "-o", options, "start")
    with Registry.open(root, db_url=db_url) as reg:
        (run,) = reg.store.list_runs(limit=10, offset=0)
        assert f"run {run.run_id} stopped" in message, message
        assert message.endswith(f"finish the run with --resume {run.run_id})"), message
        done = train(spec, frame, reg, backend="local", resume=run.run_id)
        assert (done.run.status, done.run.n_trained) == ("completed", 40)
