"""``retire`` racing a rollback, another retire, a new version's promotion and gc (keep 1, no
alias grace) in four real processes, on SQLite and PostgreSQL: no alias lost, production never
beside ``retired``, no version an alias names deleted, and a retirement left at the end is
rolled back."""

from __future__ import annotations

from pathlib import Path

import pytest
from contract_workers import KEY, record_one
from retire_workers import race
from sqlalchemy import select
from test_contract_concurrency import run_writers

from manymodels.registry import Registry
from manymodels.registry import schema as t

ROUNDS = 20


@pytest.mark.slow
def test_retire_racing_rollback_promotion_and_gc_loses_nothing(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        record_one(reg, "seed")
    got = run_writers(race, (db_url, str(root), ROUNDS))
    assert sum(len(refused) for refused in got.values()) > 0, "the processes never met"
    with Registry.open(root, db_url=db_url) as reg:
        c, v = t.aliases.c, t.model_versions.c
        with reg.store.engine.connect() as conn:
            rows = conn.execute(select(c.key, c.alias, c.version)).all()
            versions = set(conn.execute(select(v.key, v.version)).all())
        assert {(k, n) for k, _, n in rows} <= versions, rows
        mine = {a for k, a, _ in rows if k == KEY} & {"production", "retired"}
        assert mine in ({"production"}, {"retired"}), rows
        if KEY not in reg.store.alias_table():
            reg.rollback(KEY)
        assert KEY in reg.store.alias_table()
