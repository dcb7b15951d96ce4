"""Where a registry's database is: the ``sqlite://`` URL built from its directory
(``registry.location``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from factories import linear_frame, sales_files, sales_toml, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import NoRegistry, StoreNotFound
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry.location import locate
from manymodels.registry.store import describe_url

# characters a URL decodes or cuts at, all legal in a directory's name
AWKWARD = ["a%20b", "what?x=1", "hash#tag", "at@host"]


@pytest.mark.parametrize("name", AWKWARD)
def test_a_registry_whose_path_reads_as_url_syntax_opens_where_it_is(
    tmp_path: Path, name: str
) -> None:
    """``sqlite:///{path}`` let SQLAlchemy decode ``%20`` to a space and cut at ``?``: the
    registry under ``a%20b/`` failed "cannot open registry database …/a b/reg/registry.db"."""
    root = tmp_path / name / "reg"
    train(spec_dict(), linear_frame(2, 30), root, backend="local")
    assert (root / "registry.db").is_file()
    assert sorted(os.listdir(tmp_path)) == [name]  # nothing beside it, at a decoded path
    with Registry.open(root) as reg:
        assert describe_url(reg.db_url) == str((root / "registry.db").resolve())
        assert reg.load_model("pid=1").version.version == 1


def test_the_cli_trains_and_lists_a_registry_under_a_percent_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, data, _ = sales_files(tmp_path, sales_toml("sales"))
    monkeypatch.chdir(tmp_path)
    trained = CliRunner().invoke(
        app, ["train", str(spec), str(data), "--registry", "dir%20x/reg", "--backend", "local"]
    )
    assert trained.exit_code == 0, trained.output
    listed = CliRunner().invoke(app, ["models", "list", "--registry", "dir%20x/reg", "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["total"] == 5  # 4 trained, the fallback
    assert (tmp_path / "dir%20x" / "reg" / "registry.db").is_file()
    assert not (tmp_path / "dir x").exists()


def test_a_postgresql_url_is_kept_as_given(tmp_path: Path) -> None:
    url = "postgresql+psycopg://mm:p%40ss@db.example:5432/reg%20one"
    location = locate(tmp_path / "reg", url, tmp_path / "art", create=True)
    assert location.db_url == url


def test_a_database_named_without_its_store_says_by_its_type_whether_it_holds_a_registry(
    tmp_path: Path,
) -> None:
    """A reader's ``--registry-db`` with no store found raised one ``NoRegistry`` for a
    database holding a registry and for one holding none; each caller (an append, the
    scheduler's catch-up) opened the database again to tell them apart. ``locate`` tells
    them apart itself, by type, its line the same either way."""
    held = f"sqlite:///{tmp_path / 'held.db'}"
    with Registry(tmp_path / "kept", db_url=held) as reg:
        train(spec_dict(), linear_frame(2, 30), reg, backend="local")
    said = r"no artifact store at .*nowhere/artifacts: with a database named, give its artifact"
    with pytest.raises(StoreNotFound, match=said):
        Registry.open(tmp_path / "nowhere", db_url=held)
    for none in (f"sqlite:///{tmp_path / 'absent.db'}", f"sqlite:///{empty(tmp_path)}"):
        with pytest.raises(NoRegistry, match=said) as e:
            Registry.open(tmp_path / "nowhere", db_url=none)
        assert type(e.value) is NoRegistry, none  # nothing there: a place to make one
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "absent.db").exists()


def empty(tmp_path: Path) -> Path:
    """An SQLite file with no tables (a database made, no registry in it)."""
    path = tmp_path / "empty.db"
    path.write_bytes(b"")  # zero bytes: SQLite's empty database
    return path
