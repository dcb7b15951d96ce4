"""A registry's rows as a test writes or reads them directly: runs and versions, older schemas,
owners of other processes, and the SQL a block runs, so that a test can set up a state that
the public API does not reach (a crashed run, an old database).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from manymodels.registry.entities import NewVersion, Run
from manymodels.registry.store import now

from .specs import RIDGE

if TYPE_CHECKING:
    from sqlalchemy import Engine


LATER_STEPS_UNDONE = (
    "ALTER TABLE model_versions DROP COLUMN members_json",  # schema 6's
    "ALTER TABLE runs DROP COLUMN heartbeat_at",  # schema 7's
    "DROP INDEX ix_aliases_age",  # schema 8's
    "DROP INDEX ix_run_partitions_key",  # schema 10's
    "DROP INDEX ix_runs_status",  # schema 11's
    "DROP INDEX ix_run_partitions_lost",  # schema 12's
    "ALTER TABLE aliases DROP COLUMN version_created_at",  # schema 8's
    "DROP TABLE holiday_sets",  # schema 13's
    "ALTER TABLE monitor_actuals DROP COLUMN counted",  # schema 14's
    "ALTER TABLE jobs DROP COLUMN warnings_json",  # schema 15's
)
"""What undoes the schema steps after 5 (``schema.SCHEMA_VERSION``'s list), in SQL SQLite and
PostgreSQL both run: a schema step adds its undoing here, once, for every test of an older
registry."""


def as_older_schema(execute: Callable[[str], object], version: str) -> None:
    """Make a registry's database one an older manymodels wrote: ``LATER_STEPS_UNDONE`` run by
    ``execute`` (``sqlite3.Connection.execute``, ``Connection.exec_driver_sql``), then
    ``meta.schema_version`` set to ``version``. The caller first undoes the steps after
    ``version`` up to 5 that its test is about (a column, the monitoring tables)."""
    for statement in LATER_STEPS_UNDONE:
        execute(statement)
    execute(f"UPDATE meta SET value = '{version}' WHERE name = 'schema_version'")


def make_run(run_id: str = "run1", *, spec_hash: str = "0" * 64, n_partitions: int = 0) -> Run:
    return Run(
        run_id=run_id,
        kind="train",
        status="running",
        spec_name="test",
        spec_hash=spec_hash,
        spec={},
        data_source="<test>",
        data_fingerprint="f" * 32,
        started_at=now(),
        ended_at=None,
        n_partitions=n_partitions,
        n_trained=0,
        n_skipped=0,
        n_failed=0,
    )


def new_version(
    key: str, sha: str, size: int, *, key_values: dict[str, Any] | None = None, score: float = -1.0
) -> NewVersion:
    return NewVersion(
        key=key,
        key_values=key_values if key_values is not None else {"k": key},
        n_rows=10,
        data_fingerprint="fp-" + key,
        estimator=RIDGE,
        params={"alpha": 1.0},
        metric="neg_mean_absolute_error",
        score=score,
        naive_score=-2.0,
        candidates=[],
        feature_schema={"features": ["x"]},
        artifact_sha256=sha,
        artifact_size=size,
        train_seconds=0.01,
    )


def other_machine_tag(pid: int = 4242) -> str:
    """The ``writer_tag`` a process on another machine records as a run's ``owner``: this
    machine cannot look its pid up (``tempnames.owner_alive`` is ``None``)."""
    from manymodels.tempnames import MACHINE

    return f"{pid}-12345-{'f' * 12 if MACHINE != 'f' * 12 else '0' * 12}"


def dead_process_tag() -> str:
    """The ``writer_tag`` of a process that ran on this machine and has ended: a run's
    ``owner`` after its process was killed."""
    code = "from manymodels.tempnames import writer_tag; print(writer_tag())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


@contextmanager
def executed(engine: Engine | type[Engine]) -> Iterator[list[tuple[str, Any]]]:
    """The statements ``engine`` runs inside the block, with their parameters: what a test of
    a query's plan reads (``sqlite_plan``) rather than trusting how the query was written.
    ``Engine`` itself hears every engine's, those of a registry a command opens on its own."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", keep)


def sqlite_plan(engine: Engine, statement: str, params: Any) -> str:
    """SQLite's ``EXPLAIN QUERY PLAN`` of one statement ``executed`` saw, its steps joined."""
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        return " ".join(str(r[-1]) for r in raw.execute(f"EXPLAIN QUERY PLAN {statement}", params))


def ago(seconds: float) -> str:
    """A registry timestamp ``seconds`` before now (a heartbeat that old)."""
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def mark_running(
    reg: Any, run_id: str, owner: str, heartbeat_at: str | None, host: str | None = None
) -> None:
    """The run ``run_id`` of ``reg`` (a ``Registry``) as its store holds it while its process
    (``owner``: ``other_machine_tag``, ``dead_process_tag``) trains it, its last heartbeat at
    ``heartbeat_at``, on ``host`` (``None``: none recorded, as a run of an older release)."""
    from sqlalchemy import update

    from manymodels.registry import schema as t

    reg.store.record_run_options(run_id, {"owner": owner, "host": host})
    with reg.store.engine.begin() as conn:
        conn.execute(
            update(t.runs)
            .where(t.runs.c.run_id == run_id)
            .values(status="running", ended_at=None, heartbeat_at=heartbeat_at)
        )
