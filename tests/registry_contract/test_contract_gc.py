"""``gc --keep N`` at scale, on every database: the versions it deletes are chosen by one
set-based query (the answer the former ``NOT IN`` query gave), and a dry run reads without the
write lock — a writer is neither blocked by it nor blocks it."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

from factories import ago, executed, make_run, new_version
from sqlalchemy import event, func, select, tuple_, update

from manymodels.registry import Registry
from manymodels.registry import schema as t

LIBS = {"python": "3.11"}
BOUND = 10.0  # seconds: "does not hang" (a write lock is waited for 30 s)
SINCE = "2026-06-01T00:00:00.000000+00:00"


def _versions(reg: Registry, partitions: int, rounds: int, seed: int = 3) -> None:
    """Partitions with 1..``rounds`` versions each, some keeping their training rows."""
    rng = random.Random(seed)
    sha, size = reg.artifacts.put(b"m")
    for r in range(rounds):
        keys = [f"k={i}" for i in range(partitions) if r == 0 or rng.random() < 0.7]
        reg.store.create_run(make_run(f"r{r}", n_partitions=len(keys)))
        reg.store.record(f"r{r}", [new_version(k, sha, size) for k in keys], [], libraries=LIBS)


def _former_doomed(conn: Any, keep: int, moved_since: str | None) -> set[tuple[str, int]]:
    """The previous code's query (row-value ``NOT IN``s), as the reference answer."""
    c, a = t.model_versions.c, t.aliases.c
    rank = func.row_number().over(partition_by=c.key, order_by=c.version.desc()).label("rank")
    ranked = select(c.id, c.key, c.version, c.artifact_sha256, rank).subquery()
    pair = tuple_(ranked.c.key, ranked.c.version)
    with_rows = select(c.key, func.max(c.version)).where(c.data_sha256.is_not(None)).group_by(c.key)
    q = select(ranked.c.key, ranked.c.version).where(
        ranked.c.rank > keep, ~pair.in_(select(a.key, a.version)), ~pair.in_(with_rows)
    )
    if moved_since is not None:
        h = t.alias_history.c
        for end in (h.from_version, h.to_version):
            q = q.where(~pair.in_(select(h.key, end).where(h.at > moved_since, end.is_not(None))))
    return {(k, v) for k, v in conn.execute(q)}


def test_gc_deletes_what_the_former_query_chose(reg: Registry) -> None:
    """Aliases on old versions (several per partition, two on one version), versions that
    kept their training rows, alias moves before and after the grace's start: for each
    retention, a dry run and then a real prune choose the versions the former query did."""
    rng = random.Random(11)
    _versions(reg, 40, 6)
    c = t.model_versions.c
    with reg.store.engine.begin() as conn:
        rows = conn.execute(select(c.key, c.version)).all()
        for key, version in rng.sample(rows, 60):
            conn.execute(
                update(t.model_versions)
                .where(c.key == key, c.version == version)
                .values(data_sha256="d" * 64)
            )
    for key, version in rng.sample(rows, 30):
        reg.set_alias(key, rng.choice(["candidate", "shadow"]), version, reason="test")
        if rng.random() < 0.3:
            reg.set_alias(key, "staging", version, reason="test")
    with reg.store.engine.begin() as conn:
        h = t.alias_history.c
        for (move_id,) in conn.execute(select(h.id)).all():
            at = rng.choice(
                ["2026-01-01T00:00:00.000000+00:00", "2026-12-01T00:00:00.000000+00:00"]
            )
            conn.execute(update(t.alias_history).where(h.id == move_id).values(at=at))
    deleted, graced = 0, False
    for keep in (4, 3, 2):
        answers = []
        for since in (None, SINCE):
            with reg.store.engine.connect() as conn:
                answers.append(_former_doomed(conn, keep, since))
            dry = reg.store.prune_versions(keep, dry_run=True, moved_since=since).deleted
            assert {(k, v) for k, v, _ in dry} == answers[-1], (keep, since)
        pruned = reg.store.prune_versions(keep, moved_since=SINCE).deleted
        assert {(k, v) for k, v, _ in pruned} == answers[-1]
        deleted, graced = deleted + len(pruned), graced or answers[0] != answers[1]
    assert deleted and graced  # the answers were not empty, and the grace kept some
    with reg.store.engine.connect() as conn:
        assert _former_doomed(conn, 1, None) == {
            (k, v) for k, v, _ in reg.store.prune_versions(1, dry_run=True).deleted
        }


def test_a_dry_run_answers_while_another_connection_holds_the_write_lock(
    db_url: str, tmp_path: Path
) -> None:
    with Registry(tmp_path / "registry", db_url=db_url) as reg:
        _versions(reg, 5, 3)
        expected = reg.store.prune_versions(1, dry_run=True).deleted
        with Registry.open(tmp_path / "registry", db_url=db_url) as other:
            got: list[Any] = []
            with other.store._begin() as conn:  # a writer in the middle of its transaction
                conn.execute(update(t.meta).where(t.meta.c.name == "none").values(value="x"))
                dry = threading.Thread(
                    target=lambda: got.append(reg.store.prune_versions(1, dry_run=True).deleted)
                )
                dry.start()
                dry.join(BOUND)
                answered = not dry.is_alive()
            dry.join()
        assert answered, "the dry run waited for another connection's write lock"
        assert got == [expected] and expected


def test_a_writer_is_not_blocked_by_a_dry_run(db_url: str, tmp_path: Path) -> None:
    """While the dry run's query runs, a second client writes (creates a run) and commits."""
    with Registry(tmp_path / "registry", db_url=db_url) as reg:
        _versions(reg, 5, 3)
        with Registry.open(tmp_path / "registry", db_url=db_url) as other:
            wrote: list[bool] = []

            def write() -> None:
                other.store.create_run(make_run("during"))
                wrote.append(True)

            def during(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                if "row_number" in statement.lower() and not wrote:
                    writer = threading.Thread(target=write)
                    writer.start()
                    writer.join(BOUND)
                    threads.append(writer)
                    in_time.append(not writer.is_alive())

            threads: list[threading.Thread] = []
            in_time: list[bool] = []
            event.listen(reg.store.engine, "before_cursor_execute", during)
            try:
                assert reg.store.prune_versions(1, dry_run=True).deleted
            finally:
                event.remove(reg.store.engine, "before_cursor_execute", during)
                for th in threads:
                    th.join()
            assert in_time == [True], "the writer waited for the dry run"
        assert reg.get_run("during").run_id == "during"


def test_sqlite_looks_each_exception_up_by_index_not_by_scanning_a_list(tmp_path: Path) -> None:
    """SQLite's plan of gc's query: a row-value ``NOT IN (subquery)`` is a ``LIST SUBQUERY``
    scanned for every version (8 s at 24,000 versions, 32 s at 48,000); each exception is
    now a search of an index (the aliases' primary key, an automatic index on the moves)."""
    with Registry(tmp_path / "registry") as reg:
        _versions(reg, 5, 3)
        seen: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
            if "row_number" in statement.lower():
                seen.append((statement, parameters))

        event.listen(reg.store.engine, "before_cursor_execute", record)
        try:
            reg.store.prune_versions(1, dry_run=True, moved_since=SINCE)
        finally:
            event.remove(reg.store.engine, "before_cursor_execute", record)
        [(statement, parameters)] = seen
        with reg.store.engine.connect() as conn:
            plan = [
                row[-1]
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            ]
        assert not [step for step in plan if "LIST SUBQUERY" in step], plan
        assert any(step.startswith("SEARCH aliases USING") for step in plan), plan
        assert any(step.startswith("SEARCH moved USING") for step in plan), plan


def test_pruned_versions_take_their_actuals_windows_with_them(reg: Registry) -> None:
    """On every database: the prune deletes exactly the doomed (key, version) pairs' live-error
    windows — not every pairing of their keys and versions — in its transaction."""
    from manymodels.monitoring import store
    from manymodels.monitoring.live import ErrorSums

    _versions(reg, 30, 4)
    c = t.model_versions.c
    with reg.store.engine.connect() as conn:
        pairs = [(k, v) for k, v in conn.execute(select(c.key, c.version))]
    one = ErrorSums(2, 1.0, 0.5, 0, 2.0, 2.5, 0)
    store.add_many_actuals(reg.store.engine, "2026-11-01", [(k, v, one, 1.0, []) for k, v in pairs])
    doomed = {(k, v) for k, v, _ in reg.store.prune_versions(1).deleted}
    assert doomed and len(doomed) < len(pairs)
    a = t.monitor_actuals.c
    with reg.store.engine.connect() as conn:
        left = {(k, v) for k, v in conn.execute(select(a.key, a.version))}
    assert left == set(pairs) - doomed


def test_gc_reads_past_the_retention_once_and_splits_deleted_from_spared(reg: Registry) -> None:
    """gc counted the versions the alias grace kept by running the prune's query again without
    the grace: a second scan of every version (at 100,000 partitions, the prune's cost twice).
    One read now, split by the grace: what it deletes and what it keeps for the grace are the
    former query's answers with and without the grace, dry and real."""
    from manymodels.gc import collect

    rng = random.Random(5)
    _versions(reg, 30, 4)  # each record moved production: the replaced ones are in the grace
    h = t.alias_history.c
    with reg.store.engine.begin() as conn:
        for (move_id,) in conn.execute(select(h.id)).all():
            if rng.random() < 0.5:  # long before the grace
                conn.execute(update(t.alias_history).where(h.id == move_id).values(at=SINCE))
    with reg.store.engine.connect() as conn:
        past = _former_doomed(conn, 1, None)
        doomed = _former_doomed(conn, 1, ago(600))
    assert doomed and past - doomed  # some go, the grace keeps some
    for dry_run in (True, False):
        with executed(reg.store.engine) as seen:
            report = collect(reg, keep=1, dry_run=dry_run)
        windows = [s for s, _ in seen if "row_number" in s.lower()]
        assert len(windows) == 1, (dry_run, windows)
        assert set(report.versions_deleted) == doomed, dry_run
        assert report.versions_kept_alias_grace == len(past - doomed), dry_run
    c = t.model_versions.c
    with reg.store.engine.connect() as conn:
        left = {(k, v) for k, v in conn.execute(select(c.key, c.version))}
        assert _former_doomed(conn, 1, None) == past - doomed  # the spared, still there
    assert not left & doomed
