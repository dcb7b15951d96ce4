"""Concurrent writers from several processes, on every database: versions stay unique and
monotonic, and no alias move is lost (SQLite serialises writers with ``BEGIN IMMEDIATE``,
PostgreSQL with a transaction-scoped advisory lock: ``manymodels.registry.engine``).

Real processes (each with its own engine and connection pool), all released at once.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from contract_workers import KEY, create_and_record, record_one, write_and_promote

from manymodels.registry import Registry

WRITERS = 4
ROUNDS = 12


def writers_context() -> Any:
    """forkserver: one fresh interpreter imports the registry once, and each writer is forked
    from it (no threads of this process inherited, no per-writer import of several seconds)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["contract_workers", "manymodels.registry.store", "psycopg"])
    return ctx


def run_writers(target: Any, args: tuple[Any, ...]) -> dict[int, Any]:
    """``WRITERS`` processes running ``target(*args, worker, start, results)``, released
    together; each one's result by worker number."""
    ctx = writers_context()
    start, results = ctx.Barrier(WRITERS), ctx.Queue()
    writers = [ctx.Process(target=target, args=(*args, w, start, results)) for w in range(WRITERS)]
    for p in writers:
        p.start()
    try:
        got = dict(results.get(timeout=120) for _ in writers)
    finally:
        for p in writers:
            p.join(timeout=30)
    failed = {w: r for w, r in got.items() if isinstance(r, str)}
    assert not failed, f"writers failed: {failed}"
    assert [p.exitcode for p in writers] == [0] * WRITERS
    return got


@pytest.mark.slow
def test_processes_starting_one_registry_together_make_one(db_url: str, tmp_path: Path) -> None:
    """The tables are made once (under the write lock) and every writer's version counts."""
    # SQLite: the switch of a new file to WAL answered "database is locked" without waiting
    # (manymodels.registry.engine._wal retries it within the busy timeout)
    root = tmp_path / "registry"
    numbers = run_writers(create_and_record, (db_url, str(root)))
    assert sorted(numbers.values()) == list(range(1, WRITERS + 1))
    with Registry.open(root, db_url=db_url) as reg:
        assert reg.get_partition(KEY).latest_version == WRITERS


@pytest.mark.slow
def test_concurrent_writers_in_processes_lose_nothing(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:  # the first version: production starts at v1
        record_one(reg, "seed")

    per_worker = run_writers(write_and_promote, (db_url, str(root), ROUNDS))

    total = 1 + WRITERS * ROUNDS
    got = sorted(v for numbers in per_worker.values() for v in numbers)
    assert got == list(range(2, total + 1))  # unique, no gaps: each number handed out once
    for numbers in per_worker.values():  # each writer sees its own numbers increase
        assert numbers == sorted(numbers)

    with Registry.open(root, db_url=db_url) as reg:
        versions = reg.list_versions(KEY)
        assert [v.version for v in versions] == list(range(total, 0, -1))
        by_number = sorted(versions, key=lambda v: v.version)
        stamps = [v.created_at for v in by_number]
        assert stamps == sorted(stamps)  # numbered in commit order: monotonic in time too
        assert reg.get_partition(KEY).latest_version == total

        history = reg.alias_history(KEY, "production")
        history.sort(key=lambda m: m.at)
        # every promotion is a move (none collapsed), and each starts where the last ended
        assert len(history) == 1 + WRITERS * ROUNDS
        assert [m.from_version for m in history[1:]] == [m.to_version for m in history[:-1]]
        assert {m.to_version for m in history} == set(range(1, total + 1))
        assert reg.get_version(KEY).version == history[-1].to_version
