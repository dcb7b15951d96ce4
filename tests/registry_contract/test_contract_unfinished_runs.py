"""The runs ``manymodels doctor``, ``runs abandon`` and the run views call unfinished
(``unfinished_runs``), on every database. ``runs`` and ``run_partitions`` only grow (each router
retrain job records a run), while the unfinished runs stay few: the read used to scan every run
(``SCAN runs USING INDEX ix_runs_started``) and every outcome of every run (the whole
``ix_run_partitions_status``). It reads index ranges now: ``ix_runs_status`` for the runs marked
running / interrupted / failed, the partial ``ix_run_partitions_lost`` (schema 12) for those with
lost partitions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from factories import executed, make_run
from sqlalchemy import insert, inspect, update
from sqlalchemy.engine import Engine

from manymodels.registry import Registry
from manymodels.registry import schema as t

# run id: (status, n_partitions, trained, skipped, failed, lost outcomes, abandoned)
RUNS: dict[str, tuple[str, int, int, int, int, int, bool]] = {
    "completed": ("completed", 4, 3, 1, 0, 0, False),
    "running": ("running", 4, 1, 0, 0, 0, False),
    "completed-lost": ("completed", 4, 2, 0, 2, 2, False),
    "failed-complete": ("failed", 4, 2, 0, 2, 0, False),
    "interrupted": ("interrupted", 4, 0, 0, 0, 0, False),
    "failed-partial": ("failed", 4, 1, 0, 0, 0, False),
    "failed-partial-lost": ("failed", 4, 1, 0, 1, 1, False),  # 1 + 1 lost of 4 recorded
    "abandoned": ("failed", 4, 0, 0, 0, 0, True),
    "failed-lost-complete": ("failed", 2, 1, 0, 1, 1, False),  # complete, yet a lost one
}
EXPECTED = [
    ("running", 0),
    ("completed-lost", 2),
    ("interrupted", 0),
    ("failed-partial", 0),
    ("failed-partial-lost", 1),
    ("failed-lost-complete", 1),
]


def fill(reg: Registry) -> None:
    """``RUNS``, started in this order, each with outcomes as counted (lost ones apart)."""
    for i, (run_id, (status, n, trained, skipped, failed, lost, gone)) in enumerate(RUNS.items()):
        started = f"2026-01-01T00:00:{i:02d}+00:00"
        run = dataclasses.replace(make_run(run_id, n_partitions=n), started_at=started)
        reg.store.create_run(run)
        options = '{"abandoned": {"reason": "gone"}}' if gone else "{}"
        outcomes = ["trained"] * trained + ["skipped"] * skipped
        outcomes += ["failed"] * (failed - lost) + ["lost"] * lost
        with reg.store.engine.begin() as conn:
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_id == run_id)
                .values(
                    status=status, n_trained=trained, n_skipped=skipped, n_failed=failed,
                    options_json=options,
                )
            )  # fmt: skip
            for j, outcome in enumerate(outcomes):
                row = {"run_id": run_id, "key": f"k{j}", "status": outcome, "n_rows": 1}
                conn.execute(insert(t.run_partitions).values(**row))


def test_unfinished_runs_are_those_a_resume_would_finish(db_url: str, tmp_path: Path) -> None:
    with Registry(tmp_path / "registry", db_url=db_url) as reg:
        fill(reg)
        assert [(r.run_id, n) for r, n in reg.unfinished_runs()] == EXPECTED


def captured(reg: Registry) -> list[tuple[str, Any]]:
    """The statements ``unfinished_runs`` executes that read a table, with their parameters
    (not PostgreSQL's clock, ``db_clock.db_now``: one row, no table)."""
    with executed(Engine) as ran:
        reg.unfinished_runs()
    reads = [(text, params) for text, params in ran if text.lstrip().upper().startswith("SELECT")]
    return [(text, params) for text, params in reads if "clock_timestamp()" not in text]


@pytest.mark.parametrize("analyzed", [False, True])
def test_unfinished_runs_read_index_ranges_not_every_run(
    db_url: str, tmp_path: Path, analyzed: bool, plans: Callable[..., list[tuple[str, str]]]
) -> None:
    """Also once statistics say most runs have one of the statuses read (``ANALYZE``, which a
    user may run): SQLite would then scan every run rather than take the index."""
    with Registry(tmp_path / "registry", db_url=db_url) as reg:
        fill(reg)
        if analyzed:  # statistics of a registry's usual runs: most of them completed
            done = dataclasses.asdict(make_run("x", n_partitions=1))
            done.update(status="completed", spec_json="{}", options_json="{}", n_trained=1)
            del done["spec"], done["options"]
            rows = [{**done, "run_id": f"done{i:04d}"} for i in range(2000)]
            with reg.store.engine.begin() as conn:
                conn.execute(insert(t.runs), rows)
                conn.exec_driver_sql("ANALYZE")
        seen = captured(reg)
        assert seen
        for statement, plan in plans(reg, seen):
            for scan in ("SCAN runs", "SCAN run_partitions", "Seq Scan", "Full Scan"):
                assert scan not in plan, (statement, plan)
            assert "ix_runs_status" in plan, (statement, plan)
            assert "ix_run_partitions_lost" in plan, (statement, plan)


def test_a_schema_11_registry_gets_the_lost_index_on_open(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        fill(reg)
        with reg.store.engine.begin() as conn:  # as manymodels wrote schema 11
            conn.exec_driver_sql("DROP INDEX ix_run_partitions_lost")
            conn.exec_driver_sql("DROP TABLE holiday_sets")  # schema 13's
            conn.exec_driver_sql("ALTER TABLE monitor_actuals DROP COLUMN counted")  # 14's
            conn.exec_driver_sql("ALTER TABLE jobs DROP COLUMN warnings_json")  # 15's
            conn.execute(update(t.meta).where(t.meta.c.name == "schema_version").values(value="11"))
    with Registry.open(root, db_url=db_url) as reg:
        assert reg.store.get_meta("schema_version") == t.SCHEMA_VERSION == "15"
        indexes = {
            i["name"]: i["column_names"]
            for i in inspect(reg.store.engine).get_indexes("run_partitions")
        }
        assert indexes["ix_run_partitions_lost"] == ["status", "run_id"]
        assert [(r.run_id, n) for r, n in reg.unfinished_runs()] == EXPECTED
