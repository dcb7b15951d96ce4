"""What each process of the retire race does (``test_contract_retire_race``): a module that
imports only the registry, so that spawned processes start fast and truly overlap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contract_workers import KEY, record_one
from sqlalchemy import select

from manymodels.exceptions import AliasNotFound, NothingToRollBack
from manymodels.gc import collect
from manymodels.registry import Registry
from manymodels.registry import schema as t

EXPECTED = (AliasNotFound, NothingToRollBack)
"""What a move may meet when another process moved first: retired already, nothing left."""


def aliases_of_key(reg: Registry) -> dict[str, int]:
    """``KEY``'s alias rows as one statement reads them (a consistent snapshot)."""
    c = t.aliases.c
    with reg.store.engine.connect() as conn:
        return {a: v for a, v in conn.execute(select(c.alias, c.version).where(c.key == KEY))}


def race(db_url: str, root: str, rounds: int, worker: int, start: Any, results: Any) -> None:
    """Worker 0 and 1 retire and roll back ``KEY``; 2 records and promotes new versions; 3
    runs gc (keep 1, no alias grace) and promotes ``KEY``'s newest version. After each step
    the key's alias rows are read: production beside retired is a violation."""
    seen: list[str] = []  # the moves another process made pointless
    try:
        with Registry.open(Path(root), db_url=db_url) as reg:
            reg.get_partition(KEY)
            start.wait(timeout=60)
            for i in range(rounds):
                try:
                    if worker in (0, 1):
                        reg.retire([KEY], reason=f"worker {worker}")
                        reg.rollback(KEY)
                    elif worker == 2:
                        reg.promote(KEY, record_one(reg, f"w{worker}r{i}"), reason="train")
                    else:
                        collect(reg, keep=1, grace_seconds=0, alias_grace_seconds=0)
                        reg.promote(KEY, reg.get_partition(KEY).latest_version)
                except EXPECTED as e:
                    seen.append(type(e).__name__)
                rows = aliases_of_key(reg)
                if "production" in rows and "retired" in rows:
                    raise AssertionError(f"production beside retired: {rows}")
    except Exception as e:  # reported, not lost with the process: the test shows it
        results.put((worker, f"{type(e).__name__}: {e}"))
        return
    results.put((worker, seen))
