"""Concurrent writers from several processes, on every database: versions stay unique and
monotonic, and no alias move is lost (SQLite serialises writers with ``BEGIN IMMEDIATE``,
PostgreSQL with a transaction-scoped advisory lock: ``manymodels.registry.engine``).

Real processes (each with its own engine and connection pool), all released at once.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from contract_workers import KEY, record_one, write_and_promote

from manymodels.registry import Registry

WRITERS = 4
ROUNDS = 12


@pytest.mark.slow
def test_concurrent_writers_in_processes_lose_nothing(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:  # the first version: production starts at v1
        record_one(reg, "seed")

    # forkserver: one fresh interpreter imports the registry once, and each writer is forked
    # from it (no threads of this process inherited, no per-writer import of several seconds)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["contract_workers", "manymodels.registry.store", "psycopg"])
    start, results = ctx.Barrier(WRITERS), ctx.Queue()
    writers = [
        ctx.Process(target=write_and_promote, args=(db_url, str(root), w, ROUNDS, start, results))
        for w in range(WRITERS)
    ]
    for p in writers:
        p.start()
    try:
        per_worker = dict(results.get(timeout=120) for _ in writers)
    finally:
        for p in writers:
            p.join(timeout=30)
    assert [p.exitcode for p in writers] == [0] * WRITERS

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
