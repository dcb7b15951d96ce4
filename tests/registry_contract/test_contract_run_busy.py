"""Two runs of one spec started at the same instant, on every database: each looked for a run
of the spec training before it recorded its own, outside the transaction that recorded it, so
both found none and both trained the same partitions. The look is made under the write lock
that covers the insert now (``create_run(alone=True)``): one is recorded, the others are
refused naming it."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from factories import ago, make_run, mark_running, other_machine_tag

from manymodels.exceptions import RunBusy
from manymodels.registry import Registry

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
