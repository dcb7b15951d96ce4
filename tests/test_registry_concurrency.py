"""Registry writes under concurrency: serialised on SQLite, stamped in commit order, and a
policy verdict never overrides a move made while its run was going.

Everything runs against real SQLite files with real threads. To make a race deterministic, a
second raw ``sqlite3`` connection holds the write lock (``BEGIN IMMEDIATE``) while the writers
under test start: they all get as far as they can, then the lock is released.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import make_run, new_version
from sqlalchemy import event

from manymodels.exceptions import NothingToRollBack
from manymodels.registry import Registry
from manymodels.registry.entities import AliasMove, NewVersion
from manymodels.registry.store import now
from manymodels.registry.writes import Recorded
from serving.aliases import AliasTable

LIBS = {"python": "3.11"}
KEY = "k=a"


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    with Registry(tmp_path / "registry") as registry:
        yield registry


def db_path(reg: Registry) -> Path:
    assert reg.root is not None
    return reg.root / "registry.db"


def record(
    reg: Registry, *versions: NewVersion, promote: Callable[[NewVersion], str | None] | None = None
) -> Recorded:
    run_id = f"run{len(reg.list_runs(limit=1000)) + 1}"
    reg.store.create_run(make_run(run_id))
    return reg.store.record(run_id, list(versions), [], libraries=LIBS, promote=promote)


def three_versions(reg: Registry) -> None:
    """``KEY`` with versions 1..3 and production history 1 → 2 → 3."""
    sha, size = reg.artifacts.put(b"model")
    for _ in range(3):
        record(reg, new_version(KEY, sha, size))
    reg.promote(KEY, 2)
    reg.promote(KEY, 3)


class LockHolder:
    """Hold SQLite's write lock from another connection until ``release``."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        for sql, params in statements:
            self.conn.execute(sql, params)
        self.conn.execute("COMMIT")
        self.conn.close()


def run_blocked(
    reg: Registry,
    calls: list[Callable[[], Any]],
    *,
    then: tuple[str, tuple[Any, ...]] | None = None,
) -> list[Any]:
    """Start ``calls`` in threads while the write lock is held elsewhere, let them get as far
    as they can, then commit the holder (running ``then`` in its transaction first)."""
    holder = LockHolder(db_path(reg))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for th in threads:
        th.start()
    time.sleep(0.5)  # every thread has read what it reads and waits on the lock
    holder.release(*([then] if then else []))
    for th in threads:
        th.join(60)
    return results


# ------------------------------------------------------------------------ serialised writes
def test_concurrent_rollbacks_are_serialised(reg: Registry) -> None:
    three_versions(reg)
    other = Registry.open(reg.root)  # type: ignore[arg-type]
    try:
        moves = run_blocked(reg, [lambda: reg.rollback(KEY), lambda: other.rollback(KEY)])
    finally:
        other.close()
    assert all(isinstance(m, AliasMove) for m in moves), moves
    # one went 3 → 2, the other 2 → 1; unserialised, both read "at 3" and both went to 2
    assert sorted((m.from_version, m.to_version) for m in moves) == [(2, 1), (3, 2)]
    assert reg.get_version(KEY).version == 1
    with pytest.raises(NothingToRollBack):
        reg.rollback(KEY)


def test_concurrent_promotions_of_one_version_write_one_move(reg: Registry) -> None:
    sha, size = reg.artifacts.put(b"model")
    record(reg, new_version(KEY, sha, size))
    record(reg, new_version(KEY, sha, size))
    other = Registry.open(reg.root)  # type: ignore[arg-type]
    try:
        moves = run_blocked(reg, [lambda: reg.promote(KEY, 2), lambda: other.promote(KEY, 2)])
    finally:
        other.close()
    assert all(isinstance(m, AliasMove) and m.to_version == 2 for m in moves), moves
    assert [m.action for m in reg.alias_history(KEY, "production")] == ["first", "promote"]


def test_a_corrupted_history_never_crashes_a_rollback(reg: Registry) -> None:
    """Racing rollbacks (before writes were serialised) left more rollbacks to v1 than forward
    moves: replaying that must not pop an empty stack (an IndexError, an HTTP 500)."""
    sha, size = reg.artifacts.put(b"model")
    record(reg, new_version(KEY, sha, size))
    record(reg, new_version(KEY, sha, size))
    reg.promote(KEY, 2)
    reg.rollback(KEY)
    at = now()
    with sqlite3.connect(db_path(reg)) as raw:
        raw.executemany(
            "INSERT INTO alias_history (key, alias, from_version, to_version, reason, action, at)"
            " VALUES (?, 'production', 2, 1, 'raced', 'rollback', ?)",
            [(KEY, at), (KEY, at)],
        )
    raw.close()
    with pytest.raises(NothingToRollBack):
        reg.rollback(KEY)
    with pytest.raises(NothingToRollBack):
        reg.rollback(KEY)
    assert reg.get_version(KEY).version == 1


def test_reads_do_not_wait_for_the_write_lock(reg: Registry) -> None:
    three_versions(reg)
    holder = LockHolder(db_path(reg))
    try:
        started = time.perf_counter()
        assert reg.get_version(KEY).version == 3
        assert reg.store.alias_table()[KEY] == 3
        assert time.perf_counter() - started < 5
    finally:
        holder.release()


# ------------------------------------------------------------------------ verdicts vs moves
def evaluated(
    reg: Registry, champion: int | None, *, promote: bool = True, key: str = KEY
) -> NewVersion:
    sha, size = reg.artifacts.put(b"challenger")
    v = new_version(key, sha, size)
    v.evaluation.update(
        champion_version=champion, promote=promote, reason="policy 'always'", policy="always"
    )
    return v


def verdict(v: NewVersion) -> str | None:
    return str(v.evaluation["reason"]) if v.evaluation.get("promote") else None


def test_a_verdict_does_not_override_a_move_made_during_the_run(reg: Registry) -> None:
    sha, size = reg.artifacts.put(b"model")
    record(reg, new_version(KEY, sha, size))
    record(reg, new_version(KEY, sha, size))
    planned = evaluated(reg, champion=1)  # the run compared against v1 ...
    reg.promote(KEY, 2, reason="hotfix")  # ... and meanwhile someone promoted v2
    assert record(reg, planned, promote=verdict) == {KEY: 3}
    assert reg.get_version(KEY).version == 2
    assert reg.get_partition(KEY).aliases == {"production": 2, "candidate": 3}
    last = reg.alias_history(KEY)[-1]
    assert (last.alias, last.to_version, last.action) == ("candidate", 3, "new")
    assert "production moved during the run" in last.reason
    assert "evaluated against v1, now v2" in last.reason
    stored = reg.get_version(KEY, 3)  # says what happened, as the aliases do
    assert stored.decision is not None and not stored.decision.promote
    assert stored.decision.outcome == "kept"
    assert stored.evaluation["overruled"] == "policy 'always'"
    assert "production moved during the run" in stored.evaluation["reason"]


def test_record_names_the_versions_whose_verdict_it_overruled(reg: Registry) -> None:
    sha, size = reg.artifacts.put(b"model")
    record(reg, new_version(KEY, sha, size), new_version("k=b", sha, size))
    record(reg, new_version(KEY, sha, size), new_version("k=b", sha, size))
    planned = [evaluated(reg, champion=1), evaluated(reg, key="k=b", champion=1)]
    reg.promote(KEY, 2, reason="hotfix")  # k=a moved; k=b is still at v1, as planned
    got = record(reg, *planned, promote=verdict)
    assert got == {KEY: 3, "k=b": 3} and got.overruled == {KEY}
    assert reg.get_version("k=b", 3).decision.promote  # type: ignore[union-attr]
    assert reg.get_partition("k=b").aliases["production"] == 3


def test_a_verdict_against_the_current_champion_is_applied(reg: Registry) -> None:
    sha, size = reg.artifacts.put(b"model")
    record(reg, new_version(KEY, sha, size))
    assert record(reg, evaluated(reg, champion=1), promote=verdict) == {KEY: 2}
    assert reg.get_version(KEY).version == 2
    last = reg.alias_history(KEY, "production")[-1]
    assert (last.to_version, last.action, last.reason) == (2, "policy", "policy 'always'")


def test_a_verdict_made_while_the_lock_was_held_sees_the_move(reg: Registry) -> None:
    """The run's commit waits on the lock while a promotion commits: the check happens inside
    the write transaction, after the promotion, not on what was read before waiting."""
    sha, size = reg.artifacts.put(b"model")
    record(reg, new_version(KEY, sha, size))
    record(reg, new_version(KEY, sha, size))
    reg.store.create_run(make_run("late"))
    planned = evaluated(reg, champion=1)
    [got] = run_blocked(
        reg,
        [lambda: reg.store.record("late", [planned], [], libraries=LIBS, promote=verdict)],
        then=(
            "UPDATE aliases SET version = 2, updated_at = ? WHERE key = ? AND alias = 'production'",
            (now(), KEY),
        ),
    )
    assert got == {KEY: 3}
    assert reg.store.alias_table()[KEY] == 2


# ------------------------------------------------------------------------ the router's mirror
def test_alias_stamps_follow_commit_order(reg: Registry) -> None:
    """A promotion waiting for the lock while another writer commits a later-stamped move must
    not become visible with an older stamp: an incremental refresh would skip it forever."""
    three_versions(reg)
    sha, size = reg.artifacts.put(b"model")
    record(reg, new_version("k=b", sha, size))
    record(reg, new_version("k=b", sha, size))
    table = AliasTable(reg.store, overlap_seconds=0.0)  # rely on the ordering alone
    table.load()
    holder = LockHolder(db_path(reg))
    result: list[Any] = []
    promotion = threading.Thread(target=lambda: result.append(reg.promote(KEY, 1)))
    promotion.start()
    time.sleep(0.3)
    other_stamp = now()  # another writer's move, committed first
    holder.release(
        (
            "UPDATE aliases SET version = 2, updated_at = ? WHERE key = 'k=b' "
            "AND alias = 'production'",
            (other_stamp,),
        )
    )
    promotion.join(60)
    assert result and result[0].at > other_stamp
    table.refresh()
    assert (table.get("k=b"), table.get(KEY)) == (2, 1)


def test_apply_uses_the_committed_row_not_the_callers_stamp(reg: Registry) -> None:
    three_versions(reg)
    table = AliasTable(reg.store, overlap_seconds=0.0)
    table.load()
    # a caller with a wrong version and a stamp from the future ...
    table.apply(KEY, 99, "2999-01-01T00:00:00.000000+00:00")
    assert table.get(KEY) == 3  # ... gets what the registry committed
    reg.promote(KEY, 1)  # and later moves still get through
    table.refresh()
    assert table.get(KEY) == 1


def test_default_overlap_is_above_the_busy_timeout() -> None:
    from manymodels.registry.engine import BUSY_TIMEOUT_SECONDS
    from serving.aliases import DEFAULT_OVERLAP_SECONDS

    assert DEFAULT_OVERLAP_SECONDS >= 2 * BUSY_TIMEOUT_SECONDS


# ------------------------------------------------------------------------ reads
def test_get_versions_reads_only_the_pairs_asked_for(reg: Registry) -> None:
    sha, size = reg.artifacts.put(b"model")
    for _ in range(5):
        record(reg, new_version(KEY, sha, size), new_version("k=b", sha, size))
    params: list[int] = []

    @event.listens_for(reg.store.engine, "before_cursor_execute")
    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "evaluation_json" in statement and "FROM model_versions" in statement:
            params.append(len(parameters))

    got = reg.store.get_versions([(KEY, 2), ("k=b", 5), (KEY, 9)])
    assert sorted((v.key, v.version) for v in got) == [(KEY, 2), ("k=b", 5)]
    assert {a for v in got for a in v.aliases} == {"candidate"}
    # one query, filtered in SQL by the pairs' keys and their versions (2 keys + 3 versions:
    # the primary key's index; a (key, version) IN list scanned the table on SQLite), never
    # every version of the keys; the rows kept are the pairs asked for
    assert params == [5]


def test_a_first_version_made_while_another_run_made_one_is_not_stored_as_promoted(
    reg: Registry,
) -> None:
    """Two first trains of one registry at once: the second to commit finds production set
    by the first, so its 'first version' is a candidate, and its evaluation says so."""
    sha, size = reg.artifacts.put(b"model")
    record(reg, new_version(KEY, sha, size))  # the other run's, committed first
    got = record(reg, evaluated(reg, champion=None), promote=verdict)
    assert got == {KEY: 2} and got.overruled == {KEY}
    assert reg.get_partition(KEY).aliases == {"production": 1, "candidate": 2}
    stored = reg.get_version(KEY, 2).evaluation
    assert stored["promote"] is False and stored["overruled"] == "policy 'always'"
    assert "evaluated against no production version, now v1" in stored["reason"]
