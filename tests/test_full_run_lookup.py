"""Finding a spec's newest full run (the source of its interval pool and global models) reads
the same few rows however many one-partition retrains came after it: each of those records the
option too, and walking them, page by page, made one retrain O(R) reads and R of them O(R²)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from factories import make_run
from sqlalchemy import delete, event, select

from manymodels.registry import Registry, full_runs
from manymodels.registry import schema as t
from manymodels.registry.engine import now
from manymodels.registry.entities import Run
from manymodels.registry.full_runs import full_run_with
from manymodels.registry.rows import run_entity

POOL = {"run_id": "full", "levels": [80.0], "quantiles": [1.0]}


def _full_then_retrains(reg: Registry, n_retrains: int) -> None:
    full = dataclasses.replace(make_run("full"), options={"interval_pool": POOL, "global": ["g"]})
    reg.store.create_run(full)
    reg.store.finish_run("full", "completed")
    for i in range(n_retrains):
        one = dataclasses.replace(
            make_run(f"one{i:04d}"),
            kind="retrain",
            started_at=now(),
            options={"only": 1, "interval_pool": POOL, "global": ["g"]},
        )
        reg.store.create_run(one)
        reg.store.finish_run(one.run_id, "completed")


@contextmanager
def _statements(reg: Registry) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(reg.store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(reg.store.engine, "before_cursor_execute", record)


def _runs_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if "FROM runs" in s]


def test_the_newest_full_run_is_two_reads_after_many_one_partition_retrains(
    tmp_path: Path,
) -> None:
    with Registry(tmp_path / "reg") as reg:
        _full_then_retrains(reg, 260)
        for option in ("interval_pool", "global"):
            with _statements(reg) as seen:
                found = reg.store.newest_full_run("test", option)
            assert found is not None and found.run_id == "full"
            reads = _runs_reads(seen)
            assert len(reads) == 1 and "runs.run_id =" in reads[0], reads


def test_a_registry_from_before_the_pointer_walks_once_then_reads_two_rows(
    tmp_path: Path,
) -> None:
    with Registry(tmp_path / "reg") as reg:
        _full_then_retrains(reg, 260)
        with reg.store.engine.begin() as conn:
            conn.execute(delete(t.meta).where(t.meta.c.name.like("full_run:%")))
        assert reg.store.newest_full_run("test", "interval_pool").run_id == "full"  # type: ignore[union-attr]
        with _statements(reg) as seen:
            assert reg.store.newest_full_run("test", "interval_pool").run_id == "full"  # type: ignore[union-attr]
        assert len(_runs_reads(seen)) == 1


def test_a_newer_full_run_moves_the_pointer_and_an_older_one_does_not(tmp_path: Path) -> None:
    with Registry(tmp_path / "reg") as reg:
        _full_then_retrains(reg, 2)
        older = dataclasses.replace(
            make_run("older"),
            started_at="2000-01-01T00:00:00.000000+00:00",
            options={"interval_pool": POOL},
        )
        reg.store.create_run(older)
        reg.store.finish_run("older", "completed")  # finishes last, started first
        assert reg.store.newest_full_run("test", "interval_pool").run_id == "full"  # type: ignore[union-attr]
        newer = dataclasses.replace(make_run("newer"), started_at=now(), options={})
        reg.store.create_run(newer)
        reg.store.finish_run("newer", "completed", options={"interval_pool": POOL})
        assert reg.store.newest_full_run("test", "interval_pool").run_id == "newer"  # type: ignore[union-attr]
        assert reg.store.newest_full_run("test", "global").run_id == "full"  # type: ignore[union-attr]


def test_a_newest_run_the_caller_cannot_use_gives_the_newest_it_can(tmp_path: Path) -> None:
    with Registry(tmp_path / "reg") as reg:
        _full_then_retrains(reg, 3)
        newer = dataclasses.replace(
            make_run("newer"), started_at=now(), options={"interval_pool": POOL}
        )
        reg.store.create_run(newer)
        reg.store.finish_run("newer", "completed")
        found = reg.store.newest_full_run("test", "interval_pool", lambda r: r.run_id != "newer")
        assert found is not None and found.run_id == "full"
        assert reg.store.newest_full_run("other", "interval_pool") is None


def _runs_of(reg: Registry, spec_name: str) -> list[Run]:
    """Every run of the spec, oldest first (ties by run id): read once for the walks below."""
    c = t.runs.c
    with reg.store.engine.connect() as conn:
        rows = conn.execute(select(t.runs).where(c.spec_name == spec_name)).all()
    return sorted((run_entity(r) for r in rows), key=lambda r: (r.started_at, r.run_id))


def _walked(runs: list[Run], option: str, usable: Callable[[Run], bool] | None) -> Run | None:
    """The answer as the lookup gave it before the pointer: every completed run of the spec
    (``_runs_of``), newest first, the first full one with ``option`` that ``usable`` takes."""
    for run in reversed(runs):
        if full_run_with(option, run.status, run.options) and (usable is None or usable(run)):
            return run
    return None


def test_the_lookup_answers_as_the_walk_did_over_mixed_runs(tmp_path: Path) -> None:
    """Full runs, one-partition retrains, failed and empty ones, two specs, equal start times,
    a completed run resumed and completed again, and a registry whose pointers are dropped
    (one from before them): after every run, each spec, option and caller's test gets the
    run the walk over every run gives."""
    rng = random.Random(7)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    tests: list[Callable[[Run], bool] | None] = [
        None,
        lambda r: r.run_id[-1] in "02468",
        lambda r: False,
    ]
    with Registry(tmp_path / "reg") as reg:
        for i in range(120):
            started = (base + timedelta(minutes=rng.randrange(60))).isoformat()
            options: dict[str, Any] = {}
            if rng.random() < 0.7:
                options["interval_pool"] = rng.choice([POOL, {}])
            if rng.random() < 0.6:
                options["global"] = rng.choice([["g"], []])
            if rng.random() < 0.6:
                options["only"] = 1
            run = dataclasses.replace(
                make_run(f"r{i:03d}"),
                spec_name=rng.choice(["a", "b"]),
                started_at=started,
                options=options if rng.random() < 0.8 else {},
            )
            reg.store.create_run(run)
            later = {} if run.options else options  # some record their options as they end
            status = rng.choice(["completed", "completed", "completed", "failed", "running"])
            if status != "running":
                reg.store.finish_run(run.run_id, status, options=later)
            if i % 17 == 5:  # a completed run resumed: running again, then completed again
                done = rng.choice(
                    [r for r in reg.store.list_runs(limit=500) if r.status == "completed"]
                )
                reg.store.reopen_run(done.run_id, 0)
                for spec in ("a", "b"):
                    runs = _runs_of(reg, spec)
                    for option in full_runs.OPTIONS:
                        for usable in tests:
                            assert reg.store.newest_full_run(spec, option, usable) == _walked(
                                runs, option, usable
                            )
                reg.store.finish_run(done.run_id, "completed")
            if i % 40 == 39:  # a registry from before the pointers
                with reg.store.engine.begin() as conn:
                    conn.execute(delete(t.meta).where(t.meta.c.name.like("full_run:%")))
            for spec in ("a", "b", "c"):
                runs = _runs_of(reg, spec)
                for option in full_runs.OPTIONS:
                    for usable in tests:
                        assert reg.store.newest_full_run(spec, option, usable) == _walked(
                            runs, option, usable
                        ), (i, spec, option)


def test_a_pointed_run_resumed_then_failed_is_replaced_by_the_walks(tmp_path: Path) -> None:
    """The pointer named the newest full run; resumed, that run ended failed (a store outage
    stops a run so): the pointer kept it, as it started later than any other full run, and
    every lookup walked every retrain until a newer full run completed."""
    with Registry(tmp_path / "reg") as reg:
        older = dataclasses.replace(make_run("older"), options={"interval_pool": POOL})
        reg.store.create_run(older)
        reg.store.finish_run("older", "completed")
        _full_then_retrains(reg, 260)  # "full", started later, then the retrains
        assert reg.store.newest_full_run("test", "interval_pool").run_id == "full"  # type: ignore[union-attr]
        reg.store.reopen_run("full", 1)
        reg.store.finish_run("full", "failed")
        reads = []
        for _ in range(3):
            with _statements(reg) as seen:
                found = reg.store.newest_full_run("test", "interval_pool")
            assert found is not None and found.run_id == "older"
            reads.append(len(_runs_reads(seen)))
        assert reads[0] > 2 and reads[1:] == [1, 1], reads  # walked once, then pointed again


def test_a_stale_pointer_whose_run_completed_again_is_kept(tmp_path: Path) -> None:
    """A lookup found the pointed run resumed (running again) and walked to an older full
    run; the resumed run then completed before the lookup wrote: the pointer, still naming
    it, was replaced by the older run, and every later lookup answered the older one."""
    with Registry(tmp_path / "reg") as reg:
        older = dataclasses.replace(make_run("older"), options={"interval_pool": POOL})
        reg.store.create_run(older)
        reg.store.finish_run("older", "completed")
        _full_then_retrains(reg, 3)
        assert reg.store.newest_full_run("test", "interval_pool").run_id == "full"  # type: ignore[union-attr]
        reg.store.reopen_run("full", 1)
        with reg.store.engine.connect() as conn:  # the lookup's read, as newest_full reads
            assert full_runs.pointed(conn, "test", "interval_pool") is None
            named = full_runs._pointer(conn, "test", "interval_pool")
            newest, _ = full_runs.walk_full(conn, "test", "interval_pool", None)
        assert named == "full" and newest is not None and newest.run_id == "older"
        reg.store.finish_run("full", "completed")  # completes before the lookup writes
        full_runs.replace_stale(reg.store, "test", "interval_pool", named, newest.run_id)
        assert reg.store.newest_full_run("test", "interval_pool").run_id == "full"  # type: ignore[union-attr]
