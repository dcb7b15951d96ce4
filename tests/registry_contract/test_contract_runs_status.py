"""The runs still marked running, on every database: every schedule firing asks for those of
its spec (``run_busy.training_run``), ``gc`` for all of them (``live_runs_since``), and a run's
start for those keying the registry otherwise (``_refuse_keys_in_training``). Each router retrain
job records a run, so ``runs`` grows without end while the running ones stay few; the three
reads scanned every run ever recorded (0.6-1.3 s a firing at 300,000 runs). They walk
``ix_runs_status`` (status, spec_name) now: schema 11."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from factories import executed, make_run
from sqlalchemy import inspect, update
from sqlalchemy.engine import Engine

from manymodels.cli.schedule_runs import not_beside_a_run
from manymodels.exceptions import DataError, NothingToTrain
from manymodels.registry import Registry
from manymodels.registry import schema as t


def runs_by_status(root: Path, db_url: str) -> list[tuple[str, Any]]:
    """Every statement that reads ``runs`` by status while the three readers run, on any
    engine (a firing's ``not_beside_a_run`` opens its own registry)."""
    with executed(Engine) as ran:
        with Registry(root, db_url=db_url) as reg:
            keyed = make_run("r1")
            reg.store.create_run(dataclasses.replace(keyed, spec={"partition_by": ["k"]}))
            other = dataclasses.replace(make_run("r2"), spec={"partition_by": ["j"]})
            with suppress(DataError):  # r1 keys the registry and is beating: refused or not
                reg.store.create_run(other)
            reg.store.live_runs_since()
        with suppress(NothingToTrain):  # a run of "test" found training: skipped, or not
            not_beside_a_run(root, db_url, None, "test")
    return [
        (text, params)
        for text, params in ran
        if text.lstrip().upper().startswith("SELECT") and "runs.status =" in text
    ]


def test_the_running_runs_are_an_index_range(
    db_url: str, tmp_path: Path, plans: Callable[..., list[tuple[str, str]]]
) -> None:
    root = tmp_path / "registry"
    seen = runs_by_status(root, db_url)
    assert len(seen) >= 3  # not_beside_a_run, live_runs_since, _refuse_keys_in_training
    with Registry(root, db_url=db_url) as reg:
        for statement, plan in plans(reg, seen):
            assert "ix_runs_status" in plan, (statement, plan)
            assert "SCAN runs" not in plan, (statement, plan)


def test_a_schema_10_registry_gets_the_index_on_open(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        reg.store.create_run(make_run("r1"))
        with reg.store.engine.begin() as conn:  # as manymodels wrote schema 10
            conn.exec_driver_sql("DROP INDEX ix_runs_status")
            conn.exec_driver_sql("DROP INDEX ix_run_partitions_lost")  # schema 12's
            conn.exec_driver_sql("DROP TABLE holiday_sets")  # schema 13's
            conn.exec_driver_sql("ALTER TABLE monitor_actuals DROP COLUMN counted")  # 14's
            conn.exec_driver_sql("ALTER TABLE jobs DROP COLUMN warnings_json")  # 15's
            conn.execute(update(t.meta).where(t.meta.c.name == "schema_version").values(value="10"))
    with Registry.open(root, db_url=db_url) as reg:
        assert reg.store.get_meta("schema_version") == t.SCHEMA_VERSION == "15"
        indexes = {
            i["name"]: i["column_names"] for i in inspect(reg.store.engine).get_indexes("runs")
        }
        assert indexes["ix_runs_status"] == ["status", "spec_name"]
        assert reg.store.get_run("r1").status == "running"
