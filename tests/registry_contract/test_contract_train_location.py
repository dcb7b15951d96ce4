"""`manymodels train --registry-db URL --artifacts DIR` with bad data, on every database: the
command opened (made) the registry before the data was read, so a SQLite file was made, or a
PostgreSQL database given its manymodels tables, before the data error was said. The library
opens it once the data is read and checked now (manymodels.registry.registry_location).

What is checked: a SQLite file is not made; a PostgreSQL database (the server's, made empty
by the fixture, as an administrator would) holds no table afterwards; the artifact store's
directory is not made. Good data then trains into the same place."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import linear_frame, synthetic_ridge_toml
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from manymodels.cli import app


def tables(db_url: str) -> list[str] | None:
    """The database's tables; ``None`` for a SQLite file that is not there (looking would
    make it)."""
    sqlite = db_url.startswith("sqlite:///")
    if sqlite and not Path(db_url.removeprefix("sqlite:///")).exists():
        return None
    engine = create_engine(db_url)
    try:
        return sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_bad_data_leaves_the_database_without_tables(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.toml").write_text(synthetic_ridge_toml("contract-apart"))
    linear_frame(2, 30).drop(columns="y").to_csv(tmp_path / "rows.csv", index=False)
    args = ["train", "spec.toml", "rows.csv", "--registry-db", db_url, "--artifacts", "art"]
    runner = CliRunner()
    done = runner.invoke(app, args)
    assert done.exit_code == 2, done.output
    (line,) = done.output.strip().splitlines()
    assert line.startswith("error: rows.csv: missing column(s) 'y' "), line
    assert tables(db_url) in (None, [])  # no SQLite file; PostgreSQL's database still empty
    assert not (tmp_path / "art").exists()
    linear_frame(2, 30).to_csv(tmp_path / "rows.csv", index=False)
    done = runner.invoke(app, [*args, "--backend", "local"])
    assert done.exit_code == 0, done.output
    assert "runs" in (tables(db_url) or [])
