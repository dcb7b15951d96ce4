"""Partitions by model age (``ranked_partitions("age")``, the monitor's ``sort=age`` pages), on
every database: ordered by the creation time of the version production points at, oldest
first, ties by key — read from the aliases (``ix_aliases_age``), production's versions alone,
not by walking every version, superseded ones first."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from factories import make_run, new_version
from sqlalchemy import delete, event, select

from manymodels.monitoring import pages
from manymodels.registry import Registry
from manymodels.registry import schema as t

LIBS = {"python": "3.11"}


def _registry(reg: Registry) -> None:
    """30 partitions of 1..6 versions, production on any of them (promoted there, or promoted
    on and rolled back); the versions of one run share a creation time (ties by key); one
    production alias left on a version that is gone (listed by neither)."""
    rng = random.Random(5)
    sha, size = reg.artifacts.put(b"m")
    for r in range(6):
        keys = [f"k={i:02d}" for i in range(30) if r == 0 or rng.random() < 0.6]
        reg.store.create_run(make_run(f"r{r}", n_partitions=len(keys)))
        reg.store.record(f"r{r}", [new_version(k, sha, size) for k in keys], [], libraries=LIBS)
    for key in rng.sample([f"k={i:02d}" for i in range(30)], 24):
        latest = reg.get_partition(key).latest_version
        reg.promote(key, rng.randint(1, latest), reason="test")
        if latest > 1 and rng.random() < 0.3:  # to the newest, then back
            reg.promote(key, latest, reason="test")
            reg.rollback(key)
    v = t.model_versions.c
    with reg.store.engine.begin() as conn:
        production = conn.execute(
            select(t.aliases.c.key, t.aliases.c.version).where(t.aliases.c.alias == "production")
        ).all()
        key, version = production[3]
        conn.execute(delete(t.model_versions).where(v.key == key, v.version == version))


def _expected(reg: Registry) -> list[str]:
    """Every version read, production's picked out and sorted here."""
    v, a = t.model_versions.c, t.aliases.c
    with reg.store.engine.connect() as conn:
        born = {(k, n): at for k, n, at in conn.execute(select(v.key, v.version, v.created_at))}
        production = conn.execute(select(a.key, a.version).where(a.alias == "production")).all()
    rows = [(born[(k, n)], k) for k, n in production if (k, n) in born]
    return [k for _, k in sorted(rows)]


def test_partitions_by_age_are_productions_versions_oldest_first(reg: Registry) -> None:
    _registry(reg)
    expected = _expected(reg)
    assert len(expected) == 29 and expected != sorted(expected)  # not simply the keys' order
    listed: list[str] = []
    after = None
    while page := reg.ranked_partitions("age", limit=7, after=after):
        listed += [p.key for p in page]
        after = page[-1].key
    assert listed == expected
    paged: list[str] = []
    for offset in range(0, 35, 6):
        keys, total = pages.page_keys(reg.store.engine, "age", 6, offset)
        paged += keys
    assert paged == expected and total == 30  # the alias on a missing version counts, unlisted
    for limit in (1, 4, 50):  # keyset pages (the dashboard's Health "Load more"): the same
        for i, after in enumerate(expected):
            got = pages.keys_after(reg.store.engine, "age", limit, after)
            assert got == expected[i + 1 : i + 1 + limit], (limit, after)


def test_an_alias_move_records_its_versions_creation_time(reg: Registry) -> None:
    _registry(reg)
    a, v = t.aliases.c, t.model_versions.c
    joined = select(a.version_created_at, v.created_at).join_from(
        t.aliases, t.model_versions, (v.key == a.key) & (v.version == a.version)
    )
    with reg.store.engine.connect() as conn:
        rows = conn.execute(joined).all()
    assert rows and all(mine == theirs for mine, theirs in rows)


def test_sqlite_reads_production_versions_by_index_not_every_version(tmp_path: Path) -> None:
    """SQLite's plan of both age orders: a walk of ``ix_aliases_age``, never of every version
    by ``ix_model_versions_created`` (where, oldest first, every superseded version comes
    before the production ones: a first page read them all)."""
    with Registry(tmp_path / "registry") as reg:
        _registry(reg)
        seen: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
            if "ORDER BY" in statement and "LIMIT" in statement:
                seen.append((statement, parameters))

        event.listen(reg.store.engine, "before_cursor_execute", record)
        try:
            first = reg.ranked_partitions("age", limit=5)
            reg.ranked_partitions("age", limit=5, after=first[-1].key)
            pages.page_keys(reg.store.engine, "age", 5, 5)
        finally:
            event.remove(reg.store.engine, "before_cursor_execute", record)
        assert len(seen) >= 3
        with reg.store.engine.connect() as conn:
            for statement, parameters in seen:
                plan = [
                    r[-1]
                    for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                ]
                assert any("aliases USING" in s and "ix_aliases_age" in s for s in plan), plan
                assert not any("ix_model_versions_created" in s for s in plan), plan
                assert not any(s.startswith("SCAN model_versions") for s in plan), plan
                assert not any("TEMP B-TREE" in s for s in plan), plan  # no sort: index order
