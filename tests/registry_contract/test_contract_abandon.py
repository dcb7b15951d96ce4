"""``runs abandon`` on SQLite and PostgreSQL: its close is conditional on the status and
heartbeat it judged the run by (``finish_run(seen=...)``, the heartbeat compared as text)."""

from __future__ import annotations

import dataclasses

import pytest
from factories import make_run, mark_running, other_machine_tag

from manymodels.exceptions import RunTakenOver
from manymodels.registry import Registry
from manymodels.run_abandon import abandon_run


def test_abandon_closes_a_silent_run_but_not_one_that_beat_since_it_was_read(
    reg: Registry,
) -> None:
    owner = other_machine_tag()
    old = "2020-01-01T00:00:00+00:00"  # silent for years: abandoned, not refused as beating
    for run_id in ("r1", "r2"):
        reg.store.create_run(
            dataclasses.replace(make_run(run_id), started_at=old, options={"owner": owner})
        )
        mark_running(reg, run_id, owner, old)  # its last beat: the first beat is the database's
    closed = abandon_run(reg, "r1", "machine gone")
    assert closed.status == "failed" and closed.options["abandoned"]["reason"] == "machine gone"
    assert [r.run_id for r, _ in reg.unfinished_runs()] == ["r2"]

    seen = reg.get_run("r2")
    assert reg.store.beat("r2", owner)  # its process woke between the look and the close
    with pytest.raises(RunTakenOver, match="changed while this process looked"):
        reg.store.finish_run("r2", "failed", seen=(seen.status, seen.heartbeat_at))
    assert reg.get_run("r2").status == "running"
