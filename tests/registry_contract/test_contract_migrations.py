"""Schema migrations (alembic) on every database: the revisions add up to ``schema.metadata``,
a registry of each older schema — made before alembic, so recorded only in ``meta`` — is
upgraded in place with its rows, and a registry newer than this manymodels is left alone."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, select, text, update

from manymodels.exceptions import RegistryError
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.registry.migrations import VERSIONS, alembic_config

ROW = "'2026-01-01T00:00:00+00:00'"


def differences(engine: Engine) -> list[Any]:
    """What alembic's autogenerate finds between the database and ``schema.metadata``."""
    with engine.connect() as conn, warnings.catch_warnings():
        # neither reflects nor compares an expression index, and says so: that one is checked
        # by name (``index_names``)
        warnings.filterwarnings("ignore", message=".*expression.*")
        diffs = compare_metadata(MigrationContext.configure(conn), t.metadata)
    return [d for d in diffs if not _is_expression_index(d)]


def index_names(engine: Engine, table: str) -> set[str]:
    if engine.dialect.name == "sqlite":  # SQLAlchemy does not reflect its expression indexes
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,)
            )
            return {r[0] for r in rows}
    return {i["name"] for i in inspect(engine).get_indexes(table) if i["name"]}


def _is_expression_index(diff: Any) -> bool:
    name = getattr(diff[1], "name", "") if isinstance(diff, tuple) and len(diff) > 1 else ""
    return bool(name == "ix_model_versions_skill")


def build(db_url: str, version: str) -> Engine:
    """A registry database as manymodels made it at ``version`` before alembic: its tables,
    ``meta.schema_version``, no ``alembic_version``, and one partition with a version."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), version)
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(t.meta.insert().values(name="schema_version", value=version))
        conn.execute(text(
            "INSERT INTO runs (run_id, kind, status, spec_name, spec_hash, spec_json, "
            "data_source, data_fingerprint, started_at, n_partitions, n_trained, n_skipped, "
            f"n_failed, options_json) VALUES ('r1', 'train', 'succeeded', 's', 'h', '{{}}', "
            f"'x', 'f', {ROW}, 1, 1, 0, 0, '{{}}')"
        ))  # fmt: skip
        conn.execute(text(
            f"INSERT INTO partitions VALUES ('k=a', '{{\"k\": \"a\"}}', 1, {ROW}, {ROW})"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO model_versions (key, version, run_id, created_at, estimator, "
            "params_json, metric, score, n_rows, data_fingerprint, feature_schema_json, "
            "artifact_sha256, artifact_size, libraries_json, candidates_json, warnings_json, "
            f"validation_json, evaluation_json) VALUES ('k=a', 1, 'r1', {ROW}, 'e', '{{}}', "
            f"'m', 0.5, 10, 'f', '{{}}', '{'0' * 64}', 1, '{{}}', '[]', '[]', '{{}}', '{{}}')"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO aliases (key, alias, version, updated_at) VALUES "
            f"('k=a', 'production', 1, {ROW})"
        ))  # fmt: skip
        if int(version) >= 8:  # schema 8 writes its version's creation time with the alias
            conn.execute(text(f"UPDATE aliases SET version_created_at = {ROW}"))
    return engine


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_a_new_registry_is_the_head_revision_exactly(db_url: str, tmp_path: Path) -> None:
    """``create_all`` and the chain of revisions from nothing make the same database."""
    with Registry(tmp_path / "registry", db_url=db_url) as reg:
        engine = reg.store.engine
        assert current_revision(engine) == t.SCHEMA_VERSION
        assert differences(engine) == []
        assert "ix_model_versions_skill" in index_names(engine, "model_versions")
        with engine.begin() as conn:  # empty it: the revisions alone build the same tables
            t.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE alembic_version"))
    engine = create_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert differences(engine) == []
    assert "ix_model_versions_skill" in index_names(engine, "model_versions")
    engine.dispose()


@pytest.mark.parametrize("version", VERSIONS[:-1])
def test_an_older_registry_is_upgraded_in_place(db_url: str, tmp_path: Path, version: str) -> None:
    engine = build(db_url, version)
    # schema 9 changes only the key columns' collation on PostgreSQL, which alembic does not
    # compare (test_contract_collation checks it)
    assert differences(engine) != [] or version == "8"
    engine.dispose()
    root = tmp_path / "registry"
    (root / "artifacts").mkdir(parents=True)
    with Registry.open(root, db_url=db_url) as reg:  # a reader: the upgrade is its one write
        assert reg.store.get_meta("schema_version") == t.SCHEMA_VERSION
        assert reg.get_version("k=a").version == 1  # every row kept
        assert reg.get_version("k=a").score == 0.5
        with reg.store.engine.connect() as conn:  # schema 8: filled from the version
            born = conn.execute(select(t.aliases.c.version_created_at)).scalars().all()
        assert born == [ROW.strip("'")]
        assert [p.key for p in reg.ranked_partitions("age")] == ["k=a"]
        engine = reg.store.engine
        assert current_revision(engine) == t.SCHEMA_VERSION
        assert differences(engine) == []
        assert "ix_model_versions_skill" in index_names(engine, "model_versions")
    with Registry.open(root, db_url=db_url) as reg:  # and opened again, nothing left to do
        assert [p.key for p in reg.list_partitions()] == ["k=a"]


def test_a_newer_registry_is_refused_and_nothing_written(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg, reg.store.engine.begin() as conn:
        newer = str(int(t.SCHEMA_VERSION) + 1)
        conn.execute(update(t.meta).where(t.meta.c.name == "schema_version").values(value=newer))
        conn.execute(text(f"UPDATE alembic_version SET version_num = '{newer}'"))
        conn.execute(text("DROP TABLE jobs"))  # say it changed what the upgrade would look at
    for opener in (Registry.open, Registry):
        with pytest.raises(RegistryError, match=f"schema version {newer}, newer than"):
            opener(root, db_url=db_url)
    from typer.testing import CliRunner

    from manymodels.cli import app

    for cmd in (["models", "list"], ["serve"], ["gc", "--dry-run"], ["doctor"]):
        args = [*cmd, "--registry", str(root), "--registry-db", db_url]
        result = CliRunner().invoke(app, args)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1, (cmd, result.output)
        assert lines[0].startswith("error: registry ") and lines[0].endswith(
            f"has schema version {newer}, newer than this manymodels reads (version "
            f"{t.SCHEMA_VERSION}): it was written by a newer manymodels — upgrade manymodels "
            "to open it (nothing was written)"
        ), (cmd, lines[0])
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(t.meta.c.value)).scalars().all() == [newer]
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == newer
        assert "jobs" not in inspect(conn).get_table_names()
    engine.dispose()


@pytest.mark.slow  # four processes: 8-10 s on a busy machine
def test_processes_opening_an_older_registry_together_upgrade_it_once(
    db_url: str, tmp_path: Path
) -> None:
    """Each upgrade runs under the write lock and reads the version again there: the first
    upgrades, the others find it done, and every writer's version counts."""
    from contract_workers import KEY, create_and_record
    from test_contract_concurrency import WRITERS, run_writers

    build(db_url, "1").dispose()
    root = tmp_path / "registry"
    numbers = run_writers(create_and_record, (db_url, str(root)))
    assert sorted(numbers.values()) == list(range(1, WRITERS + 1))
    with Registry.open(root, db_url=db_url) as reg:
        assert reg.get_partition(KEY).latest_version == WRITERS
        assert reg.get_version("k=a").version == 1
        assert current_revision(reg.store.engine) == t.SCHEMA_VERSION
        assert differences(reg.store.engine) == []
