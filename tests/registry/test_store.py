"""Opening a registry's SQL database (manymodels.registry.store)."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import linear_frame, synthetic_ridge_toml
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import RegistryError
from manymodels.registry import Registry


def test_a_database_in_a_new_directory_is_made_as_a_new_registry_directory_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train --registry-db sqlite:///new-dir/r.db` failed with SQLite's "unable to open
    database file", where `--registry new-dir/reg` makes its directory: the database's
    directory is made the same way, and a reader then finds the registry there."""
    monkeypatch.chdir(tmp_path)
    linear_frame(3, 30).to_csv("rows.csv", index=False)
    Path("spec.toml").write_text(synthetic_ridge_toml("newdir"))
    cli = CliRunner()
    url = "sqlite:///new-dir/sub/r.db"
    done = cli.invoke(app, ["train", "spec.toml", "rows.csv", "--registry-db", url])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "new-dir" / "sub" / "r.db").is_file()
    listed = cli.invoke(app, ["models", "list", "--registry-db", url, "--json"])
    assert listed.exit_code == 0, listed.output
    assert "pid=0" in listed.output


def test_a_misspelt_data_file_leaves_no_database_made_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train spec.toml missing.csv --registry-db sqlite:///nd/r.db` said "data file not
    found" after making nd/r.db (an empty registry) and ./mmregistry: the data is missing
    before any database or directory is made, as with --registry alone."""
    monkeypatch.chdir(tmp_path)
    Path("spec.toml").write_text(synthetic_ridge_toml("typo"))
    done = CliRunner().invoke(
        app, ["train", "spec.toml", "rows.csv", "--registry-db", "sqlite:///nd/r.db"]
    )
    assert done.exit_code == 2, done.output
    assert done.output.strip().splitlines() == ["error: rows.csv: data file not found"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


def test_a_refused_start_makes_no_directory_and_a_file_in_the_way_is_one_line(
    tmp_path: Path,
) -> None:
    """A writer refused (its artifact store holds models: a lost database, not a new
    registry) and a reader make no directory for the database; a parent that is a file is
    one line naming the database, not SQLite's "unable to open database file"."""
    from manymodels import train

    spec = synthetic_ridge_toml("lost")
    (tmp_path / "spec.toml").write_text(spec)
    train(tmp_path / "spec.toml", linear_frame(2, 30), registry=tmp_path / "reg")
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'deeper' / 'r.db'}"
    with pytest.raises(RegistryError, match="holds models"):
        Registry(tmp_path / "reg", db_url=url)
    with pytest.raises(RegistryError, match="no registry database"):
        Registry.open(tmp_path / "reg", db_url=url)
    assert not (tmp_path / "elsewhere").exists()
    (tmp_path / "afile").write_text("")
    with pytest.raises(RegistryError) as refused:
        Registry(tmp_path / "new", db_url=f"sqlite:///{tmp_path / 'afile' / 'r.db'}")
    assert str(refused.value).startswith(
        f"cannot create the directory of registry database {tmp_path / 'afile' / 'r.db'}: "
    )
    assert "\n" not in str(refused.value)


def test_an_unreadable_query_option_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--registry-db 'sqlite:///new-dir/r.db?timeout=abc'` ended in SQLAlchemy's traceback
    ("ValueError: could not convert string to float: 'abc'"): one line naming the database,
    and the directory made for it taken back."""
    monkeypatch.chdir(tmp_path)
    linear_frame(3, 30).to_csv("rows.csv", index=False)
    Path("spec.toml").write_text(synthetic_ridge_toml("option"))
    url = "sqlite:///new-dir/r.db?timeout=abc"
    done = CliRunner().invoke(app, ["train", "spec.toml", "rows.csv", "--registry-db", url])
    assert done.exit_code == 1, done.output
    assert done.stderr.splitlines() == [
        "error: cannot open registry database new-dir/r.db: a query option's value cannot be "
        "read (ValueError: could not convert string to float: 'abc')"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "spec.toml"]


def test_a_tilde_in_a_sqlite_url_makes_no_directory_named_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No shell expands `~` inside `sqlite:///~/mm/r.db`, nor does SQLite: once the database's
    directory was made (4d0f052) `train` made a directory named `~` in the working directory
    and a registry in it, the trap `--registry '~/mmregistry'` was taken out of
    (registry.location). One line names the database and the full path to give instead."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    linear_frame(2, 30).to_csv("rows.csv", index=False)
    Path("spec.toml").write_text(synthetic_ridge_toml("tilde"))
    url = "sqlite:///~/mm/r.db"
    done = CliRunner().invoke(app, ["train", "spec.toml", "rows.csv", "--registry-db", url])
    assert done.exit_code == 1, done.output
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: cannot create the directory of registry database ~/")
    assert f"sqlite:///{tmp_path / 'home' / 'mm' / 'r.db'}" in done.stderr
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize(
    ("url", "shown", "scheme"),
    [
        ("postgresq://mm:secret@db/mm", "postgresq://mm:***@db/mm", "postgresq"),
        ("sqlite3:///r.db", "sqlite3:///r.db", "sqlite3"),
    ],
)
def test_a_scheme_that_names_no_database_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, shown: str, scheme: str
) -> None:
    """docs/deployment.md §3's URL with its scheme mistyped read "NoSuchModuleError: Can't
    load plugin: sqlalchemy.dialects:postgresq", SQLAlchemy's plugin system and no word of
    what to write; now the scheme and the two that are (the password hidden, nothing made)."""
    monkeypatch.chdir(tmp_path)
    linear_frame(2, 30).to_csv("rows.csv", index=False)
    Path("spec.toml").write_text(synthetic_ridge_toml("scheme"))
    done = CliRunner().invoke(app, ["train", "spec.toml", "rows.csv", "--registry-db", url])
    assert done.exit_code == 1, done.output
    assert done.stderr.splitlines() == [
        f"error: registry database {shown}: {scheme!r} is no database scheme manymodels knows "
        "(give postgresql+psycopg://… or sqlite:///…)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "spec.toml"]


@pytest.mark.parametrize(
    ("url", "shown", "backend"),
    [("mysql://mm:secret@db/mm", "mysql://mm:***@db/mm", "mysql"),
     ("mssql+pyodbc://db/mm", "mssql+pyodbc://db/mm", "mssql")],
)  # fmt: skip
def test_a_database_other_than_sqlite_or_postgresql_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, shown: str, backend: str
) -> None:
    """A MySQL URL said "the registry database's driver is not installed: no module
    'MySQLdb'", as if installing it were the way on; the registry's schema, locks and
    collation are SQLite's and PostgreSQL's only. Now one line naming both, nothing made."""
    monkeypatch.chdir(tmp_path)
    linear_frame(2, 30).to_csv("rows.csv", index=False)
    Path("spec.toml").write_text(synthetic_ridge_toml("scheme"))
    for command in (["train", "spec.toml", "rows.csv"], ["models", "list"]):
        done = CliRunner().invoke(app, [*command, "--registry-db", url])
        assert done.exit_code == 1, done.output
        assert done.stderr.splitlines() == [
            f"error: registry database {shown}: a registry is kept in SQLite or PostgreSQL, "
            f"not {backend} (give postgresql+psycopg://… or sqlite:///…)"
        ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "spec.toml"]
