"""Two runs of one spec started at the same instant, on every database: each looked for a run
of the spec training before it recorded its own, outside the transaction that recorded it, so
both found none and both trained the same partitions. The look is made under the write lock
that covers the insert now (``create_run(alone=True)``): one is recorded, the others are
refused naming it."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from factories import ago, make_run, mark_running, other_machine_tag
from pgcluster import CLOCK_AHEAD

from manymodels.exceptions import RunBusy
from manymodels.registry import Registry
from manymodels.registry.db_clock import db_now
from manymodels.run_busy import training_now

RACERS = 4


def test_runs_of_a_spec_started_at_once_one_is_recorded_the_others_refused(
    db_url: str, tmp_path: Path
) -> None:
    registries = [Registry(tmp_path / "registry", db_url=db_url) for _ in range(RACERS)]
    start = threading.Barrier(RACERS)
    refused: dict[str, str] = {}

    def race(i: int) -> None:
        start.wait(30)
        try:
            registries[i].store.create_run(make_run(f"racer{i}"), alone=True)
        except RunBusy as e:
            refused[f"racer{i}"] = e.run_id

    try:
        threads = [threading.Thread(target=race, args=(i,)) for i in range(RACERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        runs = registries[0].list_runs(limit=10)
    finally:
        for reg in registries:
            reg.close()
    (recorded,) = [r.run_id for r in runs]
    assert sorted(refused) == sorted({f"racer{i}" for i in range(RACERS)} - {recorded})
    assert set(refused.values()) == {recorded}


def test_a_run_silent_past_the_heartbeat_limit_refuses_no_run(reg: Registry) -> None:
    """Its process gone on another machine: it is left to be resumed or abandoned, and a
    new run of the spec is recorded beside it; a run of another spec never refuses one."""
    reg.store.create_run(make_run("gone"))
    mark_running(reg, "gone", other_machine_tag(), ago(3600))
    reg.store.create_run(make_run("new"), alone=True)
    reg.store.create_run(dataclasses.replace(make_run("other"), spec_name="other"), alone=True)
    assert {r.run_id for r in reg.list_runs(limit=10)} == {"gone", "new", "other"}


def test_a_run_started_on_a_host_whose_clock_runs_behind_is_training(reg: Registry) -> None:
    """Two hosts share the registry; one's clock runs 3 min behind. A run it started stamped
    its first heartbeat with its start, its own clock's: read 3 min old here, silent past
    120 s, it refused no run, and a second run of the spec trained beside it. Heartbeats are
    the database's time now: the run trains, and the second is refused."""
    behind = (datetime.now(UTC) - timedelta(seconds=180)).isoformat(timespec="microseconds")
    run = dataclasses.replace(make_run("behind"), started_at=behind)
    reg.store.create_run(dataclasses.replace(run, options={"owner": other_machine_tag()}))
    with pytest.raises(RunBusy) as refused:
        reg.store.create_run(make_run("second"), alone=True)
    assert refused.value.run_id == "behind"


def test_heartbeats_are_stamped_and_judged_by_the_database_servers_clock(
    clock_ahead: Registry,
) -> None:
    """This host's clock runs 20 min behind the database server's. A run's beats are the
    server's time, and are judged by it: a run that beat a minute ago by the server's clock
    trains (this host read that beat as 19 min ahead of its own clock — a beat that proves
    nothing — and took the run for stopped), one silent 5 min by it is silent (this host read
    its beat as 15 min ahead, and took it for stopped only by that rule)."""
    reg = clock_ahead
    store = reg.store
    store.create_run(dataclasses.replace(make_run("live"), options={"owner": other_machine_tag()}))
    assert store.beat("live")
    with store.engine.connect() as conn:
        server = datetime.fromisoformat(db_now(conn))
    beat = store.get_run("live").heartbeat_at
    assert beat is not None and abs(server - datetime.fromisoformat(beat)) < timedelta(seconds=60)
    assert server - datetime.now(UTC) > timedelta(seconds=CLOCK_AHEAD - 60)  # the skew holds
    a_minute_ago = (server - timedelta(seconds=60)).isoformat(timespec="microseconds")
    mark_running(reg, "live", other_machine_tag(), a_minute_ago)
    live = store.get_run("live")
    assert live.beating and live.state == "running" and training_now(live)
    with pytest.raises(RunBusy):
        store.create_run(make_run("second"), alone=True)
    silent = (server - timedelta(seconds=300)).isoformat(timespec="microseconds")
    mark_running(reg, "live", other_machine_tag(), silent)
    gone = store.get_run("live")
    assert gone.silence is not None and gone.silence >= 300 and gone.ahead is None
    store.create_run(make_run("second"), alone=True)
