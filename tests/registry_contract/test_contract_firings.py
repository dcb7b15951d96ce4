"""Scheduled firings claimed on every database (``manymodels.registry.firings``): of several
schedulers claiming one firing at once, through their own connections, exactly one gets it."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from factories import make_run, other_machine_tag
from pgcluster import CLOCK_AHEAD

from manymodels.registry import Registry
from manymodels.registry.base import meta_value, put_meta
from manymodels.registry.db_clock import db_now
from manymodels.registry.firing_runs import firing_run_id
from manymodels.registry.firings import (
    KILLED,
    MARK_SILENT_AFTER,
    FailedFiring,
    beat_mark,
    claim,
    claim_retry,
    clear_failure,
    failed_firing,
    last_claimed,
    record_failure,
    schedule_id,
    under_way,
)
from manymodels.tempnames import host_boot


def claimed(store: Any, name: str) -> FailedFiring | None:
    """The schedule's mark as a claim leaves it, its beat checked and left out: a claim
    records when it beat (``MarkBeat``), a time the test does not know."""
    mark = failed_firing(store, name)
    if mark is None:
        return None
    assert mark.beat is not None, "a claim records its first beat"
    return dataclasses.replace(mark, beat=None)


SCHEDULERS = 4


def at_once(root: Path, db_url: str, attempt: Callable[[Registry], bool]) -> list[bool]:
    """What each of ``SCHEDULERS`` registries opened on ``root`` got from ``attempt``, each in
    a thread of its own (its own connection), all let go together: schedulers starting at
    once."""
    opened = [Registry.open(root, db_url=db_url) for _ in range(SCHEDULERS)]
    try:
        start = threading.Barrier(SCHEDULERS)
        got: list[bool] = []

        def one(other: Registry) -> None:
            start.wait()
            got.append(attempt(other))

        threads = [threading.Thread(target=one, args=(r,)) for r in opened]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
    finally:
        for r in opened:
            r.close()
    return got


def test_one_of_several_schedulers_claims_a_firing(db_url: str, tmp_path: Path) -> None:
    name = schedule_id("s", "0 3 * * 1", "UTC", ["changed"], "sales.csv")
    due = datetime(2026, 12, 7, 3, tzinfo=UTC)
    with Registry(tmp_path / "registry", db_url=db_url) as reg:
        assert last_claimed(reg.store, name) is None
        got = at_once(tmp_path / "registry", db_url, lambda other: claim(other.store, name, due))
        assert sorted(got) == [False] * (SCHEDULERS - 1) + [True]
        assert last_claimed(reg.store, name) == due
        assert claim(reg.store, name, due + timedelta(days=7))
        assert last_claimed(reg.store, name) == due + timedelta(days=7)


def test_one_of_several_schedulers_runs_a_failed_firing_again(db_url: str, tmp_path: Path) -> None:
    """The newest firing failed: of several schedulers starting at once, exactly one runs it
    again (``claim_retry``), and its second failure leaves none to retry."""
    name = schedule_id("s", "0 3 * * 1", "UTC", ["changed"], "sales.csv")
    due = datetime(2026, 12, 7, 3, tzinfo=UTC)
    here = host_boot()  # the mark's host and boot (``firings.under_way``)
    with Registry(tmp_path / "registry", db_url=db_url) as reg:
        assert claim(reg.store, name, due, owner="1-2-0123456789ab")
        assert claimed(reg.store, name) == FailedFiring(due, 1, KILLED, "1-2-0123456789ab", *here)
        record_failure(reg.store, name, due, 1, "data.csv: no such file")
        failed = failed_firing(reg.store, name)
        assert failed == FailedFiring(due, 1, "data.csv: no such file")
        got = at_once(
            tmp_path / "registry",
            db_url,
            lambda other: claim_retry(other.store, name, failed, owner="3-4-0123456789ab"),
        )
        assert sorted(got) == [False] * (SCHEDULERS - 1) + [True]
        assert claimed(reg.store, name) == FailedFiring(due, 2, KILLED, "3-4-0123456789ab", *here)
        clear_failure(reg.store, name, due)
        assert failed_firing(reg.store, name) is None


def test_a_failure_recorded_late_keeps_the_mark_of_a_later_firing(
    db_url: str, tmp_path: Path
) -> None:
    """A firing's run outlasted the next firing, which another scheduler claimed (marked
    under way by it); the first run then failed. Its failure overwrote the later firing's
    mark: that scheduler killed before its run began left nothing to run again. Now a
    failure is recorded only over its own firing's mark or an older one."""
    name = schedule_id("s", "0 3 * * *", "UTC", ["changed"], "sales.csv")
    due = datetime(2026, 12, 7, 3, tzinfo=UTC)
    here = host_boot()
    with Registry(tmp_path / "registry", db_url=db_url) as reg:
        assert claim(reg.store, name, due, owner="1-2-0123456789ab")
        assert claim(reg.store, name, due + timedelta(days=1), owner="3-4-0123456789ab")
        record_failure(reg.store, name, due, 1, "a partition failed")
        later = FailedFiring(due + timedelta(days=1), 1, KILLED, "3-4-0123456789ab", *here)
        assert claimed(reg.store, name) == later
        record_failure(reg.store, name, due + timedelta(days=1), 1, "data.csv: no such file")
        failed = failed_firing(reg.store, name)
        assert failed == FailedFiring(due + timedelta(days=1), 1, "data.csv: no such file")


def test_a_firings_run_is_found_behind_any_number_of_newer_runs(
    db_url: str, tmp_path: Path
) -> None:
    """A scheduler restarted after its firing's run was killed finds that run to resume it.
    It was looked for among the 50 newest runs: 60 router retrain jobs later it was not found,
    and the firing ran afresh beside its killed run. Now the run records itself under its
    schedule when it is created (``registry.firing_runs``): one read, whatever came after."""
    name = schedule_id("s", "0 3 * * 1", "UTC", ["changed"], "sales.csv")
    other = schedule_id("s", "0 4 * * 1", "UTC", ["changed"], "sales.csv")
    due = "2026-12-07T03:00:00+00:00"
    notes = {"trigger": "schedule", "cron": "0 3 * * 1", "when": ["changed"], "due": due}
    with Registry(tmp_path / "registry", db_url=db_url) as reg:
        assert firing_run_id(reg.store, name, due) is None
        reg.store.create_run(
            dataclasses.replace(make_run("firing"), options={**notes, "schedule": name})
        )
        for i in range(60):
            reg.store.create_run(
                dataclasses.replace(make_run(f"job{i}"), options={"retrain": True})
            )
        reg.store.create_run(
            dataclasses.replace(make_run("elsewhere"), options={**notes, "schedule": other})
        )
        assert firing_run_id(reg.store, name, due) == "firing"
        assert firing_run_id(reg.store, name, "2026-12-14T03:00:00+00:00") is None
        assert firing_run_id(reg.store, other, due) == "elsewhere"
        reg.store.create_run(
            dataclasses.replace(make_run("again"), options={**notes, "schedule": name})
        )
        assert firing_run_id(reg.store, name, due) == "again"  # the newest run of the firing


def test_a_marks_beats_are_stamped_and_judged_by_the_database_servers_clock(
    clock_ahead: Registry,
) -> None:
    """This host's clock runs 20 min behind the database server's, which another scheduler's
    host keeps. Marks were stamped and judged by each host's clock: here, the live firing of
    a scheduler that beat a minute ago read as beating 19 min ahead — a beat that proves
    nothing — and was run again beside it; one silent 11 min read as 9 min ahead, under way,
    and was never run again until this clock caught up. Stamped and judged by the server's
    clock, the first is under way and the second silent, wherever they are read."""
    store = clock_ahead.store
    name = schedule_id("s", "0 3 * * 1", "UTC", ["changed"], "sales.csv")
    due = datetime(2026, 12, 7, 3, tzinfo=UTC)
    owner = other_machine_tag()
    assert claim(store, name, due, owner=owner)
    assert beat_mark(store, name, due, owner)
    mark = failed_firing(store, name)
    with store.engine.connect() as conn:
        server = datetime.fromisoformat(db_now(conn))
    assert server - datetime.now(UTC) > timedelta(seconds=CLOCK_AHEAD - 60)  # the skew holds
    assert mark is not None and mark.beat is not None
    assert abs(server - mark.beat) < timedelta(seconds=60)  # the server's time
    assert under_way(mark)

    def beaten(seconds_ago: float) -> FailedFiring:
        beat = (server - timedelta(seconds=seconds_ago)).isoformat(timespec="microseconds")
        with store._begin() as conn:
            value = json.loads(meta_value(conn, f"{name}:failed") or "{}")
            put_meta(conn, f"{name}:failed", json.dumps({**value, "beat": beat}))
        found = failed_firing(store, name)
        assert found is not None
        return found

    assert under_way(beaten(60))  # a live scheduler: left to it
    assert not under_way(beaten(MARK_SILENT_AFTER + 60))  # silent past the bound: run again
