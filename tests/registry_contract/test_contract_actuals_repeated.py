"""Actuals posted again are counted once (schema 14, ``monitoring.counted``) on every database:
``manymodels actuals`` of one file twice, then of it with weeks added; and a registry of schema
13, whose windows hold no digests, upgraded in place with its sums kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from factories import sales_toml
from sqlalchemy import select
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.monitoring import store
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.samples import store_sales

SPEC = sales_toml("repeated", "[fallback]\nenabled = false\n")
runner = CliRunner()


def _trained(db_url: str, tmp_path: Path) -> tuple[list[str], pd.DataFrame]:
    spec, data = tmp_path / "spec.toml", tmp_path / "sales.csv"
    spec.write_text(SPEC)
    frame = store_sales(n_stores=2, weeks=40)
    frame.to_csv(data, index=False)
    flags = ["--registry-db", db_url, "--artifacts", str(tmp_path / "store")]
    trained = runner.invoke(app, ["train", str(spec), str(data), *flags, "--backend", "local"])
    assert trained.exit_code == 0, trained.output
    return flags, frame


def _actuals(path: Path, flags: list[str]) -> dict[str, Any]:
    result = runner.invoke(app, ["actuals", str(path), *flags, "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _live_rows(db_url: str, tmp_path: Path) -> dict[str, int]:
    with Registry(tmp_path / "registry", db_url=db_url, artifacts=tmp_path / "store") as reg:
        return {k: s.rows for (k, _), (s, _) in store.live_sums(reg.store.engine).items()}


def test_a_file_run_twice_counts_its_rows_once(db_url: str, tmp_path: Path) -> None:
    flags, frame = _trained(db_url, tmp_path)
    path = tmp_path / "actuals.csv"
    frame.groupby(["store", "brand"]).tail(4).to_csv(path, index=False)
    first = _actuals(path, flags)
    partitions = len(first["recorded"])
    assert partitions >= 4 and first["already_counted"] == 0
    again = _actuals(path, flags)
    assert [r["rows"] for r in again["recorded"]] == [0] * partitions
    assert again["already_counted"] == 4 * partitions
    assert set(_live_rows(db_url, tmp_path).values()) == {4}  # was 8

    frame.groupby(["store", "brand"]).tail(6).to_csv(path, index=False)  # two weeks before
    grown = _actuals(path, flags)
    assert {(r["rows"], r["already_counted"]) for r in grown["recorded"]} == {(2, 4)}
    assert set(_live_rows(db_url, tmp_path).values()) == {6}


def test_a_schema_13_registry_keeps_its_windows_and_counts_from_then(
    db_url: str, tmp_path: Path
) -> None:
    """Its windows are kept as they were (no digests: the rows they counted are not known,
    so the same rows once more count once more), and from then a repeat is skipped."""
    flags, frame = _trained(db_url, tmp_path)
    path = tmp_path / "actuals.csv"
    frame.groupby(["store", "brand"]).tail(3).to_csv(path, index=False)
    _actuals(path, flags)
    with Registry(tmp_path / "registry", db_url=db_url, artifacts=tmp_path / "store") as reg:
        with reg.store.engine.begin() as conn:  # as manymodels wrote schema 13
            conn.exec_driver_sql("ALTER TABLE monitor_actuals DROP COLUMN counted")
            conn.exec_driver_sql("ALTER TABLE jobs DROP COLUMN warnings_json")  # schema 15's
            conn.exec_driver_sql("UPDATE meta SET value = '13' WHERE name = 'schema_version'")
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '13'")
        reg.store.engine.dispose()
    with Registry.open(tmp_path / "registry", db_url=db_url, artifacts=tmp_path / "store") as reg:
        assert reg.store.get_meta("schema_version") == t.SCHEMA_VERSION
        with reg.store.engine.connect() as conn:
            assert set(conn.execute(select(t.monitor_actuals.c.counted)).scalars()) == {None}
    assert set(_live_rows(db_url, tmp_path).values()) == {3}
    upgraded = _actuals(path, flags)
    assert {r["already_counted"] for r in upgraded["recorded"]} == {0}
    again = _actuals(path, flags)
    assert {(r["rows"], r["already_counted"]) for r in again["recorded"]} == {(0, 3)}
    assert set(_live_rows(db_url, tmp_path).values()) == {6}
