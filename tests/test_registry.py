"""Tests for manymodels.registry: versions, aliases, runs, pagination, safety, atomicity."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, make_run, new_version, spec_dict
from sklearn.linear_model import Ridge
from sqlalchemy import update

from manymodels.artifacts import serialize
from manymodels.exceptions import (
    AliasNotFound,
    ArtifactCorrupted,
    ArtifactNotFound,
    DataError,
    PartitionNotFound,
    RegistryError,
    RunNotFound,
    VersionConflict,
    VersionNotFound,
)
from manymodels.pipeline import train
from manymodels.registry import PartitionOutcome, Registry
from manymodels.registry import schema as tables
from manymodels.registry.client import library_versions

LIBS = {"python": "3.11"}


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    with Registry(tmp_path / "registry") as registry:
        registry.store.create_run(make_run("run1"))
        yield registry


def put_model(reg: Registry, slope: float = 1.0) -> tuple[str, int]:
    X = np.arange(10.0).reshape(-1, 1)
    return reg.artifacts.put(serialize(Ridge().fit(X, slope * X.ravel())))


def record(reg: Registry, *keys: str, **kwargs: object) -> dict[str, int]:
    """Register ``keys`` in a new run of their own (a run records a partition once)."""
    run_id = f"run{len(reg.list_runs(limit=1000)) + 1}"
    reg.store.create_run(make_run(run_id))
    sha, size = put_model(reg)
    versions = [new_version(k, sha, size) for k in keys]
    return reg.store.record(run_id, versions, [], libraries=LIBS, **kwargs)  # type: ignore[arg-type]


def snapshot(reg: Registry) -> dict[str, object]:
    """Everything a write could touch, to prove a failed write touched nothing."""
    with reg.store.engine.connect() as conn:
        return {
            name: sorted(map(tuple, conn.execute(table.select()).all()), key=repr)
            for name, table in tables.metadata.tables.items()
        }


# ------------------------------------------------------------------------------ versions
def test_versions_are_numbered_per_partition(reg: Registry) -> None:
    assert record(reg, "k=a", "k=b") == {"k=a": 1, "k=b": 1}
    assert record(reg, "k=a") == {"k=a": 2}
    assert record(reg, "k=b", "k=a") == {"k=a": 3, "k=b": 2}
    assert [v.version for v in reg.list_versions("k=a")] == [3, 2, 1]
    assert [v.version for v in reg.list_versions("k=b")] == [2, 1]
    assert reg.get_partition("k=a").latest_version == 3
    v = reg.get_version("k=a", 2)
    assert (v.key, v.version, v.run_id) == ("k=a", 2, "run3")
    assert v.libraries == LIBS
    assert v.params == {"alpha": 1.0}


def test_first_version_is_production_later_ones_are_candidates(reg: Registry) -> None:
    record(reg, "k=a")
    record(reg, "k=a")
    record(reg, "k=a")
    summary = reg.get_partition("k=a")
    assert summary.aliases == {"production": 1, "candidate": 3}
    assert summary.production is not None
    assert summary.production.version == 1
    assert reg.get_version("k=a").version == 1
    assert reg.get_version("k=a", alias="candidate").version == 3
    assert [v.aliases for v in reg.list_versions("k=a")] == [("candidate",), (), ("production",)]


def test_a_version_s_repr_is_one_short_line_and_its_fields_stay(reg: Registry) -> None:
    """``repr(reg.get_version(…))`` was the dataclass's: the whole feature schema, the
    candidates and the libraries, a wall of text in a notebook (and in a ``PartitionSummary``
    or ``LoadedModel`` holding it). Now one line naming the model, as MLflow's does."""
    record(reg, "k=a")
    v = reg.get_version("k=a")
    shown = repr(v)
    assert shown == (
        f"ModelVersion(key='k=a', version=1, estimator={v.estimator!r}, metric={v.metric!r}, "
        f"score={v.score:.6g}, aliases=['production'], created_at={v.created_at!r})"
    )
    assert "feature_schema" not in shown and len(shown) < 200
    assert shown in repr(reg.get_partition("k=a"))
    assert v.feature_schema and v.libraries == LIBS and v.to_dict()["feature_schema"]


def test_promote_callback_moves_production(reg: Registry) -> None:
    record(reg, "k=a")
    record(reg, "k=a", promote=lambda v: "policy 'always'")
    assert reg.get_partition("k=a").aliases == {"production": 2}
    last = reg.alias_history("k=a")[-1]
    assert (last.alias, last.from_version, last.to_version, last.reason) == (
        "production", 1, 2, "policy 'always'"
    )  # fmt: skip


def test_alias_history_is_recorded(reg: Registry) -> None:
    record(reg, "k=a")
    record(reg, "k=a")
    move = reg.set_alias("k=a", "production", 2, reason="manual promotion")
    assert (move.from_version, move.to_version) == (1, 2)
    reg.set_alias("k=a", "production", 1, reason="rollback")
    history = [
        (m.alias, m.from_version, m.to_version, m.reason, m.run_id)
        for m in reg.alias_history("k=a")
    ]
    assert history == [
        ("production", None, 1, "first version", "run2"),
        ("candidate", None, 2, "new version", "run3"),
        ("production", 1, 2, "manual promotion", None),
        ("production", 2, 1, "rollback", None),
    ]
    assert [m.to_version for m in reg.alias_history("k=a", "candidate")] == [2]
    assert reg.get_version("k=a").version == 1


@pytest.mark.parametrize("reason", ["", "  ", None])
def test_set_alias_records_a_blank_reason_as_none_given(reg: Registry, reason: str | None) -> None:
    """`reason=""` was recorded as is (a history entry saying nothing), where promote and the
    CLI and router take a blank reason as none given and record their default."""
    record(reg, "k=a")
    record(reg, "k=a")
    move = reg.set_alias("k=a", "production", 2, reason=reason)
    assert move.reason == reg.alias_history("k=a")[-1].reason == "set by hand"
    assert reg.set_alias("k=a", "production", 1, reason=" why ").reason == " why "


def test_set_alias_to_a_missing_version_writes_nothing(reg: Registry) -> None:
    record(reg, "k=a")
    before = snapshot(reg)
    with pytest.raises(VersionNotFound, match="'k=a' has no version 7"):
        reg.set_alias("k=a", "production", 7, reason="typo")
    with pytest.raises(PartitionNotFound):
        reg.set_alias("k=zzz", "production", 1, reason="typo")
    assert snapshot(reg) == before


@pytest.mark.parametrize("alias", [None, "", 5])
def test_an_alias_that_is_no_name_writes_nothing(reg: Registry, alias: object) -> None:
    # None was refused by the database's NOT NULL, reported as a write conflict
    record(reg, "k=a")
    before = snapshot(reg)
    with pytest.raises(DataError, match=r"^an alias is a name such as 'candidate', not "):
        reg.set_alias("k=a", alias, 1, reason="x")  # type: ignore[arg-type]
    assert snapshot(reg) == before


def test_model_ref_is_the_artifact_and_schema_of_exactly_that_version(reg: Registry) -> None:
    record(reg, "k=a", "k=b")
    record(reg, "k=a")
    for key, version in [("k=a", 1), ("k=a", 2), ("k=b", 1)]:
        full = reg.get_version(key, version)
        ref = reg.store.model_ref(key, version)
        assert ref is not None and ref.artifact_sha256 == full.artifact_sha256
        assert json.loads(ref.feature_schema_json) == full.feature_schema
        assert (ref.data_sha256, ref.signature) == (full.data_sha256, full.signature)
    assert reg.store.model_ref("k=a", 3) is None
    assert reg.store.model_ref("k=zzz", 1) is None
    assert reg.store.model_ref("k=a'; drop table model_versions; --", 1) is None
    assert reg.store.model_ref("k=a", 1) is not None


def test_model_ref_reports_an_unreadable_database(tmp_path: Path) -> None:
    with Registry(tmp_path / "r") as reg:
        with reg.store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE model_versions")
        with pytest.raises(RegistryError, match="registry database unavailable"):
            reg.store.model_ref("k=a", 1)


def test_lookups_of_what_does_not_exist(reg: Registry) -> None:
    record(reg, "k=a")
    with pytest.raises(PartitionNotFound, match="no partition 'k=nope'"):
        reg.get_partition("k=nope")
    with pytest.raises(LookupError):
        reg.list_versions("k=nope")
    with pytest.raises(VersionNotFound):
        reg.get_version("k=a", 2)
    with pytest.raises(PartitionNotFound):
        reg.get_version("k=nope", 1)
    with pytest.raises(AliasNotFound, match="no 'candidate' alias"):
        reg.get_version("k=a", alias="candidate")
    with pytest.raises(RunNotFound, match="no run with id 'nope'"):
        reg.get_run("nope")


def test_a_numpy_version_number_names_that_version(reg: Registry) -> None:
    # what mm.score's model_version column holds: SQLite bound it as a BLOB, "no version 1"
    record(reg, "k=a")
    record(reg, "k=a")
    one, two = np.int64(1), np.int64(2)
    assert reg.get_version("k=a", two).version == 2
    assert reg.load_model("k=a", version=one).version.version == 1
    with pytest.raises(ArtifactNotFound, match="version 2 of 'k=a' kept no training rows"):
        reg.training_rows("k=a", two)
    assert reg.promote("k=a", two).to_version == 2
    assert reg.set_alias("k=a", "production", np.uint8(1), reason="back").to_version == 1
    assert reg.get_partition("k=a").aliases["production"] == 1


@pytest.mark.parametrize("version", ["1", 1.0, np.float64(1.0), True, [1]])
def test_a_version_that_is_not_a_whole_number_says_so(reg: Registry, version: object) -> None:
    record(reg, "k=a")
    before = snapshot(reg)
    calls = [
        lambda: reg.get_version("k=a", version),  # type: ignore[arg-type]
        lambda: reg.load_model("k=a", version),  # type: ignore[arg-type]
        lambda: reg.training_rows("k=a", version),  # type: ignore[arg-type]
        lambda: reg.promote("k=a", version),  # type: ignore[arg-type]
        lambda: reg.set_alias("k=a", "production", version, reason="x"),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(DataError, match=r"^a version is a whole number \(1, 2, …\), not "):
            call()
    assert snapshot(reg) == before


def test_an_unknown_ranking_is_a_data_error(reg: Registry) -> None:
    # a plain ValueError before: not one of ours, so `except ManyModelsError` missed it
    record(reg, "k=a")
    with pytest.raises(DataError, match=r"^rank by one of skill, score, age, not 'nope'$"):
        reg.ranked_partitions("nope")
    assert [p.key for p in reg.ranked_partitions("age")] == ["k=a"]


def test_list_partitions_pages_by_offset_and_after(reg: Registry) -> None:
    keys = [f"k=p{i}" for i in range(7)]
    record(reg, *reversed(keys))
    assert reg.count_partitions() == 7
    by_offset = [[p.key for p in reg.list_partitions(limit=3, offset=o)] for o in (0, 3, 6, 9)]
    assert by_offset == [keys[:3], keys[3:6], keys[6:], []]
    pages, after = [], None
    while True:
        page = reg.list_partitions(limit=3, after=after)
        if not page:
            break
        pages.append([p.key for p in page])
        after = page[-1].key
    assert pages == [keys[:3], keys[3:6], keys[6:]]
    first = reg.list_partitions(limit=1)[0]
    assert first.production is not None
    assert first.production.version == 1
    assert first.key_values == {"k": "k=p0"}


# ------------------------------------------------------------------------------ runs
def test_run_counts_and_outcomes(reg: Registry) -> None:
    sha, size = put_model(reg)
    outcomes = [
        PartitionOutcome("k=s", "skipped", "PartitionSkipped", "too few", 3, "fp"),
        PartitionOutcome("k=f", "failed", "ValueError", "boom", 9, "fp"),
    ]
    reg.store.record(
        "run1", [new_version("k=a", sha, size), new_version("k=b", sha, size)], outcomes,
        libraries=LIBS,
    )  # fmt: skip
    reg.store.record("run1", [new_version("__fallback__", sha, size)], [], libraries=LIBS,
                     count=False)  # fmt: skip
    run = reg.get_run("run1")
    assert (run.n_trained, run.n_skipped, run.n_failed) == (2, 1, 1)
    failed = reg.store.run_outcomes("run1", status="failed")
    assert [(o.key, o.error_type, o.message, o.n_rows) for o in failed] == [
        ("k=f", "ValueError", "boom", 9)
    ]
    assert reg.store.recorded_keys("run1") == {"k=a", "k=b", "k=s", "k=f", "__fallback__"}
    finished = reg.store.finish_run("run1", "completed")
    assert finished.status == "completed"
    assert finished.ended_at is not None


def test_list_runs_newest_first(reg: Registry) -> None:
    reg.store.create_run(make_run("run2"))
    assert [r.run_id for r in reg.list_runs()] == ["run2", "run1"]
    assert [r.run_id for r in reg.list_runs(limit=1, offset=1)] == ["run1"]


# ------------------------------------------------------------------------------ atomicity
def test_a_failed_chunk_write_leaves_nothing_half_written(reg: Registry) -> None:
    record(reg, "k=a")
    before = snapshot(reg)
    sha, size = put_model(reg)
    # a new partition, then the same key twice: the duplicate fails the whole transaction
    chunk = [new_version("k=new", sha, size), new_version("k=a", sha, size),
             new_version("k=a", sha, size)]  # fmt: skip
    with pytest.raises(VersionConflict):
        reg.store.record("run1", chunk, [], libraries=LIBS)
    assert snapshot(reg) == before
    with pytest.raises(PartitionNotFound):
        reg.get_partition("k=new")
    assert reg.get_partition("k=a").latest_version == 1
    assert reg.get_run("run1").n_trained == 0
    # and the registry still takes the next write normally
    assert record(reg, "k=a", "k=new") == {"k=a": 2, "k=new": 1}


def test_duplicate_new_partitions_conflict_without_writes(reg: Registry) -> None:
    before = snapshot(reg)
    sha, size = put_model(reg)
    with pytest.raises(VersionConflict):
        reg.store.record(
            "run1", [new_version("k=x", sha, size), new_version("k=x", sha, size)], [],
            libraries=LIBS,
        )  # fmt: skip
    assert snapshot(reg) == before


def test_a_partition_is_recorded_once_per_run(reg: Registry) -> None:
    sha, size = put_model(reg)
    reg.store.record("run1", [new_version("k=a", sha, size)], [], libraries=LIBS)
    before = snapshot(reg)
    with pytest.raises(VersionConflict):
        reg.store.record("run1", [new_version("k=a", sha, size)], [], libraries=LIBS)
    assert snapshot(reg) == before


# ------------------------------------------------------------------------------ models
def test_load_model_round_trip_and_reopen(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with Registry(root) as reg:
        reg.store.create_run(make_run("run1"))
        sha, size = put_model(reg, slope=3.0)
        reg.store.record("run1", [new_version("k=a", sha, size)], [], libraries=LIBS)
    with Registry.open(root) as reg:
        loaded = reg.load_model("k=a")
        assert loaded.version.version == 1
        assert loaded.model.predict([[2.0]])[0] == pytest.approx(
            Ridge().fit(np.arange(10.0).reshape(-1, 1), 3.0 * np.arange(10.0)).predict([[2.0]])[0]
        )
        assert reg.load_model({"k": "a"}, version=1).version.artifact_sha256 == sha


def test_tampered_artifact_is_caught_by_load_model(reg: Registry, tmp_path: Path) -> None:
    record(reg, "k=a")
    version = reg.get_version("k=a")
    path = reg.artifacts.path(version.artifact_sha256)  # type: ignore[attr-defined]
    marker = tmp_path / "unpickled"

    class Tripwire:
        def __reduce__(self) -> tuple[object, tuple[Path]]:
            return (Path.touch, (marker,))

    path.write_bytes(pickle.dumps(Tripwire()))
    with pytest.raises(ArtifactCorrupted, match="refusing to load"):
        reg.load_model("k=a")
    assert not marker.exists()
    path.write_bytes(path.read_bytes()[:5])
    with pytest.raises(ArtifactCorrupted):
        reg.load_model("k=a")
    path.unlink()
    with pytest.raises(ArtifactNotFound):
        reg.load_model("k=a")


def test_unsafe_keys_are_stored_and_loaded_back_safely(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "registry"
    values = ["../../etc", "a/b", "..", "/abs", "x y,z=1"]
    rows = []
    for i, name in enumerate(values):
        for t in range(12):
            rows.append({"name": name, "t": t, "x": float(t), "y": (i + 1) * float(t)})
    summary = train(
        spec_dict(partition_by=["name"], fallback={"enabled": False}),
        pd.DataFrame(rows), root, backend="local",
    )  # fmt: skip
    assert summary.run.n_trained == len(values)
    with Registry.open(root) as reg:
        for i, name in enumerate(values):
            loaded = reg.load_model({"name": name})
            assert reg.get_partition(loaded.version.key).key_values == {"name": name}
            assert loaded.model.predict([[2.0]])[0] == pytest.approx((i + 1) * 2.0, rel=0.05)
        assert reg.load_model("name=../../etc").version.key == "name=..%2F..%2Fetc"
        assert reg.get_partition("name=a/b").key == "name=a%2Fb"
    # nothing was written anywhere but the registry, and artifacts are named by hash only
    created = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert all(p == "deep" or p.startswith("deep/registry") for p in created)
    artifacts = [p for p in (root / "artifacts").glob("??/??/*") if p.is_file()]
    # beside them, one mark naming the registry that writes to the store (registry.ownership)
    assert [p.parent.name for p in (root / "artifacts").rglob("*") if p.is_file()].count(
        "owners"
    ) == 1
    with Registry.open(root) as reg:  # a model per partition, the rows once per chunk
        versions = [reg.get_version({"name": n}) for n in values]
        named = {v.artifact_sha256 for v in versions} | {v.data_sha256 for v in versions}
    assert sorted(p.name for p in artifacts) == sorted(named) and len(named) > len(values)
    assert all(len(p.name) == 64 and set(p.name) <= set("0123456789abcdef") for p in artifacts)


def test_a_key_mapping_in_any_order_finds_the_partition(reg: Registry) -> None:
    sha, size = put_model(reg)
    v = new_version("store=1,brand=x", sha, size, key_values={"store": 1, "brand": "x"})
    reg.store.record("run1", [v], [], libraries=LIBS)
    assert reg.get_partition({"store": 1, "brand": "x"}).key == "store=1,brand=x"
    assert reg.get_partition({"brand": "x", "store": 1}).key == "store=1,brand=x"


# ------------------------------------------------------------------------------ opening
def test_a_registry_is_not_pickled_and_says_to_pass_its_location(tmp_path: Path) -> None:
    """pickle failed inside SQLAlchemy ("Can't pickle local object 'create_engine.<locals>.
    connect'"); a copy reopened by location would carry the signing key and the database's
    password, so it is refused, saying what to do instead. ``copy.copy`` still works."""
    import copy

    with Registry(tmp_path / "reg") as reg:
        record(reg, "k=a")
        message = (
            r"^a Registry is not pickled \(its database connection and signing key stay in "
            rf"this process\): pass its location \({re.escape(str(tmp_path / 'reg'))}\) and "
            "open it where it is used with Registry.open$"
        )
        for dump in (pickle.dumps, copy.deepcopy):
            with pytest.raises(TypeError, match=message):
                dump(reg)
        assert copy.copy(reg).get_version("k=a").version == 1
    with Registry.open(tmp_path / "reg") as reopened:  # what a worker does with the location
        assert reopened.get_version("k=a").version == 1
    db, store = f"sqlite:///{tmp_path / 'meta.db'}", tmp_path / "store"
    with Registry(db_url=db, artifacts=store) as apart:  # the advice must open it too
        record(apart, "k=b")
        with pytest.raises(TypeError, match=r"Registry\(db_url=…, artifacts=…, create=False\)$"):
            pickle.dumps(apart)
    with Registry(db_url=db, artifacts=store, create=False) as reopened:
        assert reopened.get_version("k=b").version == 1


def test_open_refuses_a_missing_registry(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no registry at"):
        Registry.open(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(RegistryError, match="no registry at"):
        Registry.open(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RegistryError, match="not a directory"):
        Registry(tmp_path / "file")


def test_schema_version_mismatch_is_refused(tmp_path: Path) -> None:
    with Registry(tmp_path / "r") as reg, reg.store.engine.begin() as conn:
        conn.execute(update(tables.meta).values(value="999"))
    with pytest.raises(RegistryError, match="schema version 999"):
        Registry.open(tmp_path / "r")


def test_library_versions_are_recorded() -> None:
    libs = library_versions()
    assert {"python", "manymodels", "scikit-learn", "numpy", "pandas", "joblib"} <= set(libs)


def test_a_run_s_and_a_summary_s_repr_are_one_short_line(tmp_path: Path) -> None:
    """``repr(mm.train(…))`` and ``repr(reg.get_run(…))`` were the dataclasses': the whole
    spec, the options and every failure's outcome, a wall of text in a notebook (as a
    version's was before 522f65f). Now one line naming the run and its counts; every field
    stays an attribute."""
    summary = train(spec_dict(features=["x0", "x1"]), linear_frame(3), tmp_path / "reg",
                    backend="local")  # fmt: skip
    run = summary.run
    shown = repr(run)
    assert shown == (
        f"Run(run_id={run.run_id!r}, kind='train', status='completed', spec_name='test', "
        f"n_partitions=3, n_trained=3, n_skipped=0, n_failed=0, "
        f"started_at={run.started_at!r}, ended_at={run.ended_at!r})"
    )
    assert "candidates" not in shown and run.spec["candidates"] and run.options["owner"]
    assert repr(summary) == (
        f"RunSummary(run={shown}, failures={len(summary.failures)}, "
        f"seconds={summary.seconds:.3g}, fallback='trained')"
    )
