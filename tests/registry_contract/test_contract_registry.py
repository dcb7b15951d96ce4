"""The registry's contract, held by every database it runs on (SQLite and PostgreSQL).

Each test runs once per database (``conftest.db_url``): the same calls must give the same
versions, aliases, history and runs, and the same errors, whichever database is behind them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from factories import as_older_schema, make_run, new_version
from sqlalchemy import inspect

from manymodels.exceptions import (
    AliasNotFound,
    NoRegistry,
    NothingToRollBack,
    PartitionNotFound,
    VersionNotFound,
)
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.registry.entities import NewVersion, PartitionOutcome

LIBS = {"python": "3.11"}


def record(reg: Registry, run_id: str, *versions: NewVersion) -> dict[str, int]:
    reg.store.create_run(make_run(run_id, n_partitions=len(versions)))
    return reg.store.record(run_id, list(versions), [], libraries=LIBS)


def test_versions_are_numbered_per_partition_and_read_back(reg: Registry) -> None:
    sha, size = reg.artifacts.put(b"model-bytes")
    assert record(reg, "r1", new_version("k=a", sha, size), new_version("k=b", sha, size)) == {
        "k=a": 1,
        "k=b": 1,
    }
    assert record(reg, "r2", new_version("k=a", sha, size, score=-0.5)) == {"k=a": 2}

    assert [p.key for p in reg.list_partitions()] == ["k=a", "k=b"]
    assert [p.key for p in reg.list_partitions(prefix="k=b")] == ["k=b"]
    assert [p.key for p in reg.list_partitions(after="k=a")] == ["k=b"]
    assert reg.count_partitions() == 2
    a = reg.get_partition("k=a")
    assert a.latest_version == 2
    assert [v.version for v in reg.list_versions("k=a")] == [2, 1]
    v2 = reg.get_version("k=a", 2)
    assert (v2.run_id, v2.score, v2.artifact_sha256) == ("r2", -0.5, sha)
    assert v2.params == {"alpha": 1.0}
    # the first version took production; the second is a candidate
    assert reg.get_version("k=a").version == 1
    assert reg.get_version("k=a", alias="candidate").version == 2
    assert reg.store.model_ref("k=a", 2) is not None
    assert reg.store.model_ref("k=a", 3) is None
    assert {(k, v) for k, v, _ in reg.store.model_refs([("k=a", 1), ("k=b", 1)])} == {
        ("k=a", 1),
        ("k=b", 1),
    }
    # exactly the pairs asked for, not every pairing of their keys and versions
    record(reg, "r3", new_version("k=b", sha, size))  # k=b has v1 and v2, as k=a does
    asked = [("k=a", 2), ("k=b", 1)]
    assert sorted((k, v) for k, v, _ in reg.store.model_refs(asked)) == asked
    assert sorted((v.key, v.version) for v in reg.store.get_versions(asked)) == asked
    assert reg.store.production_info(["k=a", "k=b"])["k=b"].version == 1
    assert reg.artifacts.get(v2.artifact_sha256) == b"model-bytes"  # verified on read


def test_missing_things_raise_the_same_errors(reg: Registry) -> None:
    sha, size = reg.artifacts.put(b"m")
    record(reg, "r1", new_version("k=a", sha, size))
    with pytest.raises(PartitionNotFound):
        reg.get_partition("k=zz")
    with pytest.raises(VersionNotFound):
        reg.get_version("k=a", 9)
    with pytest.raises(VersionNotFound):
        reg.promote("k=a", 9)
    with pytest.raises(AliasNotFound):
        reg.get_version("k=a", alias="staging")
    with pytest.raises(NothingToRollBack):
        reg.rollback("k=a")


def test_promote_rollback_and_history(reg: Registry) -> None:
    sha, size = reg.artifacts.put(b"m")
    for i in range(3):
        record(reg, f"r{i}", new_version("k=a", sha, size))
    reg.promote("k=a", 2)
    reg.promote("k=a", 3)
    again = reg.promote("k=a", 3)  # idempotent: the move that put it there
    assert again.from_version == 2

    assert reg.rollback("k=a").to_version == 2
    assert reg.rollback("k=a").to_version == 1  # a stack: twice goes two back
    with pytest.raises(NothingToRollBack):
        reg.rollback("k=a")
    moves = [
        (m.from_version, m.to_version, m.action) for m in reg.alias_history("k=a", "production")
    ]
    assert moves == [
        (None, 1, "first"),
        (1, 2, "promote"),
        (2, 3, "promote"),
        (3, 2, "rollback"),
        (2, 1, "rollback"),
    ]
    assert reg.store.alias_table("production") == {"k=a": 1}
    assert reg.restore_alias("k=a", "production", 5, 3, reason="x") is None  # compare-and-set


def test_runs_and_their_outcomes(reg: Registry) -> None:
    sha, size = reg.artifacts.put(b"m")
    reg.store.create_run(make_run("r1", n_partitions=3))
    failed = PartitionOutcome(
        key="k=c", status="failed", error_type="ValueError", message="boom", n_rows=3,
        data_fingerprint="fp",
    )  # fmt: skip
    reg.store.record("r1", [new_version("k=a", sha, size)], [failed], libraries=LIBS)
    run = reg.store.finish_run("r1", "succeeded", options={"note": "x"})
    assert (run.status, run.n_trained, run.n_failed) == ("succeeded", 1, 1)
    assert [r.run_id for r in reg.list_runs()] == ["r1"]
    assert reg.get_run("r1").options["note"] == "x"
    assert reg.store.recorded_keys("r1") == {"k=a", "k=c"}
    assert reg.count_runs() == 1


def test_pruning_keeps_aliased_versions(reg: Registry) -> None:
    sha, size = reg.artifacts.put(b"m")
    for i in range(4):
        record(reg, f"r{i}", new_version("k=a", sha, size))
    doomed = reg.store.prune_versions(1).deleted
    assert sorted(v for _, v, _ in doomed) == [2, 3]  # v1 production, v4 candidate and newest
    assert [v.version for v in reg.list_versions("k=a")] == [4, 1]


def test_pruning_marks_the_deletion_for_routers(reg: Registry) -> None:
    """A router re-checks the versions it holds when this mark changes (serving.deletions)."""
    from manymodels.registry.writes import VERSIONS_DELETED

    sha, size = reg.artifacts.put(b"m")
    for i in range(4):
        record(reg, f"r{i}", new_version("k=a", sha, size))
    assert reg.store.prune_versions(1, dry_run=True).deleted
    assert reg.store.get_meta(VERSIONS_DELETED) is None  # a dry run deletes nothing
    reg.store.prune_versions(1)
    first = reg.store.get_meta(VERSIONS_DELETED)
    assert first is not None
    held = [("k=a", v) for v in (1, 2, 3, 4, 5)] + [("k=b", 1)]
    assert reg.store.existing_versions(held) == {("k=a", 1), ("k=a", 4)}
    record(reg, "r5", new_version("k=a", sha, size))
    reg.store.prune_versions(1)  # v4 goes: v5 is the newest, v1 production
    second = reg.store.get_meta(VERSIONS_DELETED)
    assert second not in (None, first)
    assert reg.store.prune_versions(1).deleted == []
    assert reg.store.get_meta(VERSIONS_DELETED) == second  # nothing deleted: no new mark


def test_version_specs_names_each_pairs_spec(reg: Registry) -> None:
    """The spec of each (key, version) asked, in one batched join to its run: what
    ``champion_targets.require_one_target`` groups targets by once a table's versions predict
    two. Exactly the pairs asked that exist, not every pairing of their keys and versions."""
    from dataclasses import replace

    sha, size = reg.artifacts.put(b"m")
    record(reg, "r1", new_version("k=a", sha, size), new_version("k=b", sha, size))
    reg.store.create_run(replace(make_run("r2", n_partitions=1), spec_name="south"))
    reg.store.record("r2", [new_version("k=b", sha, size)], [], libraries=LIBS)
    asked = [("k=a", 1), ("k=b", 2), ("k=c", 1)]  # k=b v1 a pairing not asked; k=c none
    assert reg.store.version_specs(asked) == {("k=a", 1): "test", ("k=b", 2): "south"}
    assert reg.store.version_specs([]) == {}


def test_reopening_finds_the_registry_and_nothing_is_created_by_reading(
    db_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        sha, size = reg.artifacts.put(b"m")
        record(reg, "r1", new_version("k=a", sha, size))
    with Registry.open(root, db_url=db_url) as reg:
        assert reg.get_version("k=a").version == 1
    with pytest.raises(NoRegistry):
        Registry.open(tmp_path / "elsewhere", db_url=db_url)


def test_an_older_schema_is_upgraded_on_open(db_url: str, tmp_path: Path) -> None:
    """A schema-1 registry (no ``data_sha256``, ``signature``, ``members_json``,
    ``runs.heartbeat_at`` or monitoring tables) is brought to today's schema by the same
    portable steps on every database, rows kept."""
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        sha, size = reg.artifacts.put(b"m")
        record(reg, "r1", new_version("k=a", sha, size))
        with reg.store.engine.begin() as conn:
            as_older_schema(conn.exec_driver_sql, "1")  # first: a step is on monitor_actuals
            for table in (t.monitor_drift, t.monitor_actuals):
                table.drop(conn)
            for column in ("data_sha256", "signature"):
                conn.exec_driver_sql(f"ALTER TABLE model_versions DROP COLUMN {column}")
    with Registry.open(root, db_url=db_url) as reg:
        assert reg.store.get_meta("schema_version") == t.SCHEMA_VERSION
        assert reg.get_version("k=a").version == 1
        columns = {c["name"] for c in inspect(reg.store.engine).get_columns("model_versions")}
        assert {"data_sha256", "signature", "members_json"} <= columns
        assert "heartbeat_at" in {c["name"] for c in inspect(reg.store.engine).get_columns("runs")}
        assert set(t.metadata.tables) <= set(inspect(reg.store.engine).get_table_names())


def test_actuals_of_many_partitions_are_one_batched_write(reg: Registry) -> None:
    """``monitoring.store.add_many_actuals`` (what ``manymodels actuals`` writes with): an
    insert of many rows, then an update of many by bound parameters, then windows past
    ``WINDOWS`` dropped — the same statements on every database."""
    from manymodels.monitoring import store
    from manymodels.monitoring.live import WINDOWS, ErrorSums

    one = ErrorSums(2, 1.0, 0.5, 0, 2.0, 2.5, 0)
    batches = [(f"k={i}", 1, one, 3.0, [(i, 3.0, 2.0)]) for i in range(1200)]  # > a batch
    store.add_many_actuals(reg.store.engine, "2026-11-01", batches)
    store.add_many_actuals(reg.store.engine, "2026-11-01", batches)
    sums = store.live_sums(reg.store.engine)
    assert len(sums) == 1200 and {s.rows for s, _ in sums.values()} == {4}
    for day in range(2, 2 + WINDOWS):
        store.add_many_actuals(reg.store.engine, f"2026-11-{day:02d}", batches[:2])
    assert len(store.windows(reg.store.engine, "k=0", 1)) == WINDOWS
    assert len(store.windows(reg.store.engine, "k=5", 1)) == 1


def test_the_newest_full_run_after_many_one_partition_retrains(reg: Registry) -> None:
    """The pointer a full run's finish writes, and the keyset walk of a registry without one
    (more runs than a page: a row-value comparison), answer alike on every database."""
    import dataclasses

    from sqlalchemy import delete

    from manymodels.registry.engine import now
    from manymodels.registry.full_runs import PAGE, pointer_name

    pool = {"run_id": "full", "levels": [80.0], "quantiles": [1.0]}
    full = dataclasses.replace(make_run("full"), options={"interval_pool": pool})
    reg.store.create_run(full)
    reg.store.finish_run("full", "completed")
    for i in range(PAGE + 5):
        one = dataclasses.replace(
            make_run(f"one{i:04d}"), started_at=now(), options={"only": 1, "interval_pool": pool}
        )
        reg.store.create_run(one)
        reg.store.finish_run(one.run_id, "completed")
    assert reg.store.newest_full_run("test", "interval_pool").run_id == "full"  # type: ignore[union-attr]
    with reg.store.engine.begin() as conn:
        conn.execute(delete(t.meta).where(t.meta.c.name.like("full_run:%")))
    assert reg.store.newest_full_run("test", "interval_pool").run_id == "full"  # type: ignore[union-attr]
    assert reg.store.get_meta(pointer_name("test", "interval_pool")) == "full"  # the walk wrote it
    assert reg.store.newest_full_run("test", "global") is None


def test_a_run_keyed_otherwise_is_refused_while_the_keying_run_lives(reg: Registry) -> None:
    """Two first runs into an empty registry keyed differently: the second re-keyed the
    registry while the first trained (no partition committed yet), and both trained. The
    check is made under create_run's write lock, on SQLite and PostgreSQL alike; once the
    first run has ended without a partition, the next may key the registry its own way."""
    from dataclasses import replace

    from manymodels.exceptions import DataError
    from manymodels.tempnames import writer_tag

    def keyed(run_id: str, keys: list[str], owner: str) -> Any:
        run = make_run(run_id)
        return replace(run, spec={"partition_by": keys}, options={"owner": owner})

    reg.store.create_run(keyed("stores", ["pid"], writer_tag()))  # this process: alive
    with pytest.raises(DataError, match=r"run stores of spec 'test' is training into this"):
        reg.store.create_run(keyed("users", ["user"], writer_tag()))
    assert reg.store.get_meta("partition_by") == '["pid"]'
    reg.store.finish_run("stores", "failed", error="every partition failed")
    reg.store.create_run(keyed("users", ["user"], writer_tag()))
    assert reg.store.get_meta("partition_by") == '["user"]'


def test_a_keying_run_whose_heartbeat_is_stamped_ahead_refuses_no_other_keying(
    reg: Registry,
) -> None:
    """A keying run on another machine whose heartbeat is stamped two hours ahead (a clock
    running ahead there) counted as beating, so every run keyed otherwise was refused ("is
    training into this registry") until this clock caught up — though ``RunBusy`` already
    took such a beat for no proof. Both ask ``run_busy.training_now`` now; a beat a minute
    ahead is still trusted."""
    from dataclasses import replace

    from factories import ago, mark_running, other_machine_tag

    from manymodels.exceptions import DataError

    def keyed(run_id: str, keys: list[str]) -> Any:
        return replace(make_run(run_id), spec={"partition_by": keys})

    reg.store.create_run(keyed("stores", ["pid"]))
    mark_running(reg, "stores", other_machine_tag(), ago(-60))  # within the silence limit
    with pytest.raises(DataError, match=r"run stores of spec 'test' is training into this"):
        reg.store.create_run(keyed("users", ["user"]))
    mark_running(reg, "stores", other_machine_tag(), ago(-2 * 3600 - 30))
    reg.store.create_run(keyed("users", ["user"]))
    assert reg.store.get_meta("partition_by") == '["user"]'
