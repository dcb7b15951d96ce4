"""Tests for SqlStore.record()'s fast paths: what is stored is exactly what it stored before.

record() encodes each distinct JSON object of a chunk once (``JsonMemo``) and sends its bulk
INSERTs as pre-compiled statements with tuples (``_insert_rows``). Both are pure speed-ups:
these tests hold them to the text and the SQL types the plain SQLAlchemy path stores.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import make_run, new_version

from manymodels.exceptions import VersionConflict
from manymodels.registry import PartitionOutcome, bulk, rows
from manymodels.registry import schema as tables
from manymodels.registry import store as store_module
from manymodels.registry.engine import dumps
from manymodels.registry.entities import CandidateResult, NewVersion
from manymodels.registry.store import SqlStore

LIBS = {"python": "3.11", "scikit-learn": "1.9"}

ODD_VALUES: list[Any] = [
    {},
    [],
    {"a": 1, "b": 1.0, "c": True, "d": None},
    {"b": 2, "a": 1},  # key order is kept, not sorted
    {1: "int key", 2.5: "float key", False: "bool key", None: "none key"},
    {"nested": {"list": [1, 2.5, "x", [None]]}, "é": "ünïcode ✓", "quote": 'a"b\\c'},
    [math.nan, math.inf, -math.inf, 1e300, 5e-324, -0.0],
    {"numpy": np.float64(0.1), "np_int": np.int64(3), "np_bool": np.bool_(True)},
    {"path": Path("/tmp/x"), "set": {1}},  # not JSON: default=str
    "just a string",
    12,
    None,
]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_encode_json_is_dumps(value: Any) -> None:
    assert rows.encode_json(value) == dumps(value)


def test_json_memo_encodes_each_object_once_and_equal_objects_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Any] = []
    real = rows.encode_json
    monkeypatch.setattr(rows, "encode_json", lambda v: calls.append(v) or real(v))
    memo = rows.JsonMemo()
    shared = {"features": ["x0", "x1"]}
    assert [memo(shared) for _ in range(5)] == [dumps(shared)] * 5
    assert len(calls) == 1
    # equal, not identical: encoded on their own, to their own text
    assert memo({"a": 1}) == '{"a":1}'
    assert memo({"a": 1.0}) == '{"a":1.0}'
    assert memo({"a": True}) == '{"a":true}'
    assert len(calls) == 4


def test_version_columns_are_the_table_order() -> None:
    def names(table: Any) -> tuple[str, ...]:
        return tuple(c.name for c in table.columns if c.name != "id")

    assert names(tables.model_versions) == rows.VERSION_COLUMNS
    assert names(tables.partitions) == store_module._PARTITION_COLUMNS
    assert names(tables.run_partitions) == store_module._RUN_PARTITION_COLUMNS


def test_sqlite_takes_the_precompiled_path(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/r.db")
    for table, columns in [
        (tables.model_versions, rows.VERSION_COLUMNS),
        (tables.partitions, store_module._PARTITION_COLUMNS),
        (tables.run_partitions, store_module._RUN_PARTITION_COLUMNS),
    ]:
        plan = store_module._bulk_insert(store.engine.dialect, table, columns)
        assert plan is not None and plan.sql.startswith(f"INSERT INTO {table.name} ")
    store.close()


def chunk() -> tuple[list[NewVersion], list[PartitionOutcome]]:
    """A chunk as the driver gets it: objects shared between versions, awkward values too."""
    schema = {"features": ["x0", "x1"], "dtypes": {"x0": "float64"}, "é": "✓"}
    validation = {"strategy": "last", "folds": 1, "rows": 20}
    versions = []
    for i in range(7):
        v = new_version(f"k={i}", f"{i:064x}", 100 + i, key_values={"k": i, "n": np.int64(i)})
        versions.append(
            dataclasses.replace(
                v,
                feature_schema=schema if i % 2 else {**schema, "history": {"time": i}},
                validation=validation if i < 4 else {**validation, "rows": 20.0},
                params={"alpha": np.float64(0.5)} if i == 3 else {},
                score=[-1.5, 2, np.float32(0.1), np.float64(-0.25), True, math.inf, -0.0][i],
                naive_score=None if i == 2 else np.float64(i),
                candidates=[CandidateResult("Ridge", "Ridge", {"alpha": i}, -float(i), None)],
                warnings=["a warning ✓"] if i == 5 else [],
                evaluation={"promote": True, "reason": "first version", "score": math.nan},
            )
        )
    outcomes = [
        PartitionOutcome("k=x", "failed", "ValueError", "bad ✓ 'quoted'", 3, "fp"),
        PartitionOutcome("k=y", "skipped", "PartitionSkipped", "too few rows", 1, None),
    ]
    return versions, outcomes


STAMPS = ("created_at", "updated_at", "at", "started_at", "ended_at", "heartbeat_at",
          "version_created_at")  # fmt: skip


def stored(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table with each value's SQLite storage class, stamps left out."""
    con = sqlite3.connect(db)
    out = {}
    for name in tables.metadata.tables:
        cur = con.execute(f"SELECT * FROM {name} ORDER BY rowid")
        cols = [c[0] for c in cur.description]
        out[name] = [
            tuple(
                (c, v, type(v).__name__) for c, v in zip(cols, row, strict=True) if c not in STAMPS
            )
            for row in cur
        ]
    con.close()
    return out


def record_twice(db: Path) -> None:
    store = SqlStore(f"sqlite:///{db}")
    for run in ("run1", "run2"):  # fresh partitions, then known ones (the update path)
        store.create_run(make_run(run))
        versions, outcomes = chunk()
        store.record(run, versions, outcomes, libraries=LIBS)
    store.close()


def test_record_stores_what_the_sqlalchemy_path_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_twice(tmp_path / "fast.db")
    with monkeypatch.context() as m:
        m.setattr(bulk, "_bulk_insert", lambda *args: None)  # conn.execute(insert, dicts)
        record_twice(tmp_path / "plain.db")
    fast, plain = stored(tmp_path / "fast.db"), stored(tmp_path / "plain.db")
    assert fast == plain
    assert len(fast["model_versions"]) == 14 and len(fast["run_partitions"]) == 18


def test_record_stores_the_dumps_of_every_field(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    record_twice(db)
    versions, _ = chunk()
    con = sqlite3.connect(db)
    cols = ", ".join(c for c in rows.VERSION_COLUMNS if c.endswith("_json"))
    got = con.execute(f"SELECT {cols} FROM model_versions WHERE run_id = 'run1' ORDER BY id")
    for v, row in zip(versions, got, strict=True):
        assert row == (
            dumps(v.params),
            dumps(v.feature_schema),
            dumps(LIBS),
            dumps([c.__dict__ for c in v.candidates]),
            dumps(v.warnings),
            dumps(v.validation),
            dumps(v.evaluation),
            dumps(list(v.members)) if v.members else None,  # no global member: NULL
        )
    keys = con.execute("SELECT key_json FROM partitions ORDER BY rowid").fetchall()
    assert keys == [(dumps(v.key_values),) for v in versions]
    con.close()


def test_a_conflicting_bulk_insert_is_still_a_version_conflict(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/r.db")
    store.create_run(make_run("run1"))
    store.record("run1", [], [PartitionOutcome("k=a", "failed", "E", "m")], libraries=LIBS)
    # (run_id, key) is the primary key of run_partitions
    with pytest.raises(VersionConflict), store._begin() as conn:
        store_module._insert_rows(
            conn,
            tables.run_partitions,
            store_module._RUN_PARTITION_COLUMNS,
            [("run1", "k=a", "failed", None, "E", "again", 0, None)],
        )
    assert store.run_outcomes("run1")[0].message == "m"  # the transaction rolled back
    store.close()
