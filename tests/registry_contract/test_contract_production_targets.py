"""``production_targets``, doctor's read for its mixed-target check, on every database: the
target of each production version, from one statement whose rows are read a page at a time
(a server-side cursor on PostgreSQL). It fetched every row at once: at 100,000 partitions,
every production schema's text in memory together, where the check needs one at a time."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from factories import make_run, new_version
from sqlalchemy import event

from manymodels.registry import Registry, checks
from manymodels.registry.entities import NewVersion

LIBS = {"python": "3.11"}


def _version(key: str, sha: str, size: int, **schema: Any) -> NewVersion:
    return replace(new_version(key, sha, size), feature_schema={"features": ["x"], **schema})


def test_each_production_target_is_read_a_page_at_a_time(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six production versions over pages of two: the targets come out in key order, each
    schema parsed or matched as it streams by (a target changing mid-page and across pages,
    an import's unrecorded target, another spec's), in one statement run with ``yield_per``
    — on PostgreSQL through a named (server-side) cursor."""
    monkeypatch.setattr(checks, "SCHEMAS_PER_FETCH", 2, raising=False)  # old: none
    sha, size = reg.artifacts.put(b"m")
    y, cost = {"target": "y", "task": "regression"}, {"target": "cost", "task": "regression"}
    test = [
        _version("k=a", sha, size, **y),
        _version("k=b", sha, size, **y),
        _version("k=c", sha, size, **cost),
        _version("k=d", sha, size, target=None, task="regression"),  # an MLflow import's
        _version("k=e", sha, size, **y),
    ]
    reg.store.create_run(make_run("r1", n_partitions=len(test)))
    reg.store.record("r1", test, [], libraries=LIBS)
    reg.store.create_run(replace(make_run("r2", n_partitions=1), spec_name="south"))
    reg.store.record("r2", [_version("k=f", sha, size, **y)], [], libraries=LIBS)

    seen: list[tuple[str, Any, dict[str, Any]]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any, *_: Any) -> None:
        seen.append((statement, cursor, dict(context.execution_options)))

    event.listen(reg.store.engine, "before_cursor_execute", record)
    try:
        found = reg.store.production_targets()
    finally:
        event.remove(reg.store.engine, "before_cursor_execute", record)
    assert found == [
        ("test", "k=a", 1, "y"),
        ("test", "k=b", 1, "y"),
        ("test", "k=c", 1, "cost"),
        ("test", "k=d", 1, None),
        ("test", "k=e", 1, "y"),
        ("south", "k=f", 1, "y"),
    ]
    statements = [s for s in seen if s[0] != "BEGIN"]  # SQLite's, said by the registry
    assert len(statements) == 1, [s[0] for s in seen]  # one statement, as before
    _, cursor, options = statements[0]
    assert options.get("yield_per") == 2, options  # before: every row fetched at once
    if reg.store.engine.dialect.name == "postgresql":
        assert getattr(cursor, "name", None), type(cursor)  # psycopg's ServerCursor
