"""Retiring partitions (``Registry.retire``, ``SqlStore.retire_aliases``) on every database
the registry runs on (SQLite and PostgreSQL): production's row goes, the version it served is
kept under ``retired``, the move is in the alias history, and ``rollback`` puts it back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from factories import executed, make_run, new_version

from manymodels.exceptions import AliasNotFound, DataError, PartitionNotFound
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.registry.entities import RETIRED, NewVersion
from manymodels.registry.writes import Recorded

LIBS = {"python": "3.11"}


def record(reg: Registry, run_id: str, *versions: NewVersion) -> Recorded:
    reg.store.create_run(make_run(run_id, n_partitions=len(versions)))
    return reg.store.record(run_id, list(versions), [], libraries=LIBS)


def _history(reg: Registry, key: str) -> list[tuple[int | None, int | None, str, str]]:
    return [
        (m.from_version, m.to_version, m.action, m.reason)
        for m in reg.alias_history(key, "production")
    ]


def test_retire_removes_production_keeps_the_version_and_rollback_restores_it(
    reg: Registry,
) -> None:
    sha, size = reg.artifacts.put(b"m")
    for i in range(3):  # v1 in production, v2 and v3 not promoted
        record(reg, f"r{i}", new_version("k=a", sha, size), new_version("k=b", sha, size))
    moves = reg.retire(["k=a", "k=b"], reason="old target")
    assert [(m.key, m.from_version, m.to_version, m.action) for m in moves] == [
        ("k=a", 1, None, "retire"),
        ("k=b", 1, None, "retire"),
    ]
    assert reg.store.alias_table("production") == {}
    assert reg.store.alias_versions(["k=a", "k=b"], RETIRED) == {"k=a": 1, "k=b": 1}
    changes = reg.store.alias_changes("production")
    assert sorted((k, v) for k, v, _ in changes) == [("k=a", None), ("k=b", None)]
    # gc's retention keeps the retired version (aliased) though two newer ones exist
    doomed = reg.store.prune_versions(1).deleted
    assert sorted(v for _, v, _ in doomed) == [2, 2]
    assert reg.rollback("k=a").to_version == 1
    assert reg.store.alias_table("production") == {"k=a": 1}
    assert reg.store.alias_versions(["k=a"], RETIRED) == {}
    assert _history(reg, "k=a") == [
        (None, 1, "first", "first version"),
        (1, None, "retire", "old target"),
        (None, 1, "rollback", "rollback of v1's retirement"),
    ]
    assert {k: v for k, v, _ in reg.store.alias_changes("production")} == {"k=a": 1, "k=b": None}
    reg.promote("k=b", 3)  # a promotion also ends the retirement
    assert reg.store.alias_versions(["k=b"], RETIRED) == {}
    assert reg.store.alias_table("production") == {"k=a": 1, "k=b": 3}


def test_retire_is_all_or_none_and_names_the_key_refused(reg: Registry) -> None:
    sha, size = reg.artifacts.put(b"m")
    record(reg, "r0", new_version("k=a", sha, size), new_version("k=b", sha, size))
    with pytest.raises(PartitionNotFound, match="no partition 'k=zz'"):
        reg.retire(["k=a", "k=zz"])
    reg.retire(["k=b"])
    with pytest.raises(PartitionNotFound, match="no partition 'k=zz'"):
        reg.retire(["k=a", "k=b", "k=zz"])
    with pytest.raises(DataError, match="fallback model, not a partition"):
        reg.retire(["__fallback__"])
    with pytest.raises(DataError, match="'retired' is kept by 'retire'"):
        reg.set_alias("k=a", RETIRED, 1)
    assert reg.store.alias_table("production") == {"k=a": 1}
    assert [m.action for m in reg.alias_history("k=a")] == ["first"]
    assert _history(reg, "k=b")[-1] == (1, None, "retire", "retired by hand")
    # a run's new version of a retired partition puts it back in production, and says so
    assert record(reg, "r1", new_version("k=b", sha, size)).returned == {"k=b"}
    assert reg.store.alias_table("production") == {"k=a": 1, "k=b": 2}
    assert reg.store.alias_versions(["k=b"], RETIRED) == {}
    assert _history(reg, "k=b")[-1] == (
        None,
        2,
        "first",
        "back in production after its retirement from v1",
    )


def test_retiring_a_retired_partition_returns_its_retirement_and_writes_nothing(
    reg: Registry,
) -> None:
    """A second retirement was ``AliasNotFound`` (the router's 404, the CLI's error): it is
    the entry that retired it, ``moved`` false, as a promotion of the version served is;
    its ``retired`` row and history stay as they were, and the other keys are retired."""
    sha, size = reg.artifacts.put(b"m")
    record(reg, "r0", *(new_version(f"k={k}", sha, size) for k in "abc"))
    (retired,) = reg.retire(["k=b"], reason="store closed")
    rows = {k: (v, at) for k, v, at in reg.store.alias_changes("production")}
    moves = reg.retire(["k=a", "k=b", "k=b"], reason="again")
    assert moves[1] == retired and not moves[1].moved and moves[0].moved
    assert (moves[1].at, moves[1].reason, moves[1].from_version) == (retired.at, "store closed", 1)
    assert [m.key for m in moves] == ["k=a", "k=b"]
    now = {k: (v, at) for k, v, at in reg.store.alias_changes("production")}
    assert now["k=b"] == rows["k=b"] and now["k=a"][0] is None
    assert _history(reg, "k=b") == [
        (None, 1, "first", "first version"),
        (1, None, "retire", "store closed"),
    ]
    (alone,) = reg.retire(["k=b"])
    assert alone == retired and not alone.moved
    with reg.store.engine.begin() as conn:  # k=c never in production: still refused
        conn.execute(t.aliases.delete().where(t.aliases.c.key == "k=c"))
    with pytest.raises(AliasNotFound, match=r"'k=c' has no production version$"):
        reg.retire(["k=b", "k=c"])
    assert _history(reg, "k=b")[-1] == (1, None, "retire", "store closed")


def test_a_retired_partition_s_refusal_says_so_to_every_caller(reg: Registry) -> None:
    """``load_model`` (and ``resolve_alias`` under it) refused a retired partition as one never
    promoted; each command that knew better read its ``retired`` row again by hand."""
    sha, size = reg.artifacts.put(b"m")
    record(reg, "r0", new_version("k=a", sha, size), new_version("k=b", sha, size))
    reg.retire(["k=a"])
    with pytest.raises(AliasNotFound) as refused:
        reg.load_model("k=a")
    assert str(refused.value) == (
        "partition 'k=a' has no 'production' alias: it was retired from v1 (a rollback puts it"
        " back in production)"
    )
    assert refused.value.retired_from == 1
    assert reg.store.retired_from("k=a") == 1 and reg.store.retired_from("k=b") is None
    with pytest.raises(AliasNotFound) as other:  # another alias: never retired from
        reg.store.resolve_alias("k=a", "candidate")
    assert (str(other.value), other.value.retired_from) == (
        "partition 'k=a' has no 'candidate' alias",
        None,
    )
    reg.rollback("k=a")
    assert reg.store.resolve_alias("k=a").version == 1 and reg.store.retired_from("k=a") is None


def test_a_refresh_reads_the_moved_rows_by_their_stamp(
    reg: Registry, plans: Callable[..., list[tuple[str, str]]]
) -> None:
    """A router's refresh (``alias_changes`` since its last read) walks ``ix_aliases_updated``
    to the rows moved since, never every partition's production and retired rows: on SQLite
    (no statistics) it walked ``ix_aliases_age`` by alias, O(partitions) every refresh."""
    sha, size = reg.artifacts.put(b"m")
    record(reg, "r0", *(new_version(f"k={i}", sha, size) for i in range(20)))
    reg.retire([f"k={i}" for i in range(10)], reason="old target")
    since = max(at for _, _, at in reg.store.alias_changes())
    with executed(reg.store.engine) as ran:
        assert reg.store.alias_changes(since=since) == []
    seen = [(text, params) for text, params in ran if "FROM aliases" in text]
    assert seen
    for _, plan in plans(reg, seen):
        assert "ix_aliases_updated" in plan, plan


def _retired_reads(ran: list[tuple[str, Any]]) -> int:
    """How many of the statements ``executed`` saw read ``retired`` rows of ``aliases``."""
    return sum(
        text.lstrip().startswith("SELECT") and "FROM aliases" in text
        and RETIRED in (params.values() if isinstance(params, dict) else params)
        for text, params in ran
    )  # fmt: skip


def test_a_run_brings_retired_partitions_back_as_returned_not_new(reg: Registry) -> None:
    """A run's versions of retired partitions were recorded as first versions ("first
    version", outcome ``first``): a user who retired 40 stores and trained again read "40 new
    partitions". Their keys are ``Recorded.returned`` now, read in one batched statement, and
    none is issued when every key has production (the usual run)."""
    sha, size = reg.artifacts.put(b"m")
    keys = [f"k={i}" for i in range(6)]
    record(reg, "r0", *(new_version(k, sha, size) for k in keys))
    record(reg, "r1", *(new_version(k, sha, size) for k in keys))  # v2: candidates
    reg.retire(["k=0", "k=1"], reason="stores closed")
    with reg.store.engine.begin() as conn:  # k=5 has versions but was never in production
        a = t.aliases.c
        conn.execute(t.aliases.delete().where(a.key == "k=5", a.alias == "production"))
    with executed(reg.store.engine) as ran:
        got = record(reg, "r2", *(new_version(k, sha, size) for k in keys))
    assert _retired_reads(ran) == 1
    assert got.returned == {"k=0", "k=1"} and dict(got) == dict.fromkeys(keys, 3)
    assert reg.store.alias_table("production") == dict.fromkeys(["k=0", "k=1", "k=5"], 3) | {
        "k=2": 1,
        "k=3": 1,
        "k=4": 1,
    }
    assert reg.store.alias_versions(keys, RETIRED) == {}
    assert _history(reg, "k=0")[-1] == (
        None,
        3,
        "first",
        "back in production after its retirement from v1",
    )
    assert _history(reg, "k=5")[-1] == (None, 3, "first", "first version")
    (v3,) = [v for v in reg.list_versions("k=1") if v.version == 3]
    assert v3.decision is not None and v3.decision.outcome == "returned"
    assert v3.evaluation["retired_from"] == 1
    with executed(reg.store.engine) as ran:  # every key in production: no retired read
        again = record(reg, "r3", *(new_version(k, sha, size) for k in keys))
    assert _retired_reads(ran) == 0 and again.returned == frozenset()
