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
from manymodels.exceptions import NoRegistry, RegistryError, StoreNotFound
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
    them apart itself, by type. A database that is not there said "no artifact store at …"
    too, sending the user after a store when the database was what was missing: it says
    so now ("no registry database at …", "… is empty")."""
    held = f"sqlite:///{tmp_path / 'held.db'}"
    with Registry(tmp_path / "kept", db_url=held) as reg:
        train(spec_dict(), linear_frame(2, 30), reg, backend="local")
    said = r"no artifact store at .*nowhere/artifacts: with a database named, give its artifact"
    with pytest.raises(StoreNotFound, match=said):
        Registry.open(tmp_path / "nowhere", db_url=held)
    nones = {
        f"sqlite:///{tmp_path / 'absent.db'}": r"^no registry database at .*/absent\.db$",
        f"sqlite:///{empty(tmp_path)}": r"^registry database .*/empty\.db is empty",
    }
    for none, line in nones.items():
        with pytest.raises(NoRegistry, match=line) as e:
            Registry.open(tmp_path / "nowhere", db_url=none)
        assert type(e.value) is NoRegistry, none  # nothing there: a place to make one
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "absent.db").exists()


def test_a_database_that_records_no_artifact_reads_a_missing_store_as_empty(
    tmp_path: Path,
) -> None:
    """A writer beside a database named apart makes ``--registry b/`` at its store's first
    write, not as it opens: a registry with a database and no artifact yet (a schedule's, an
    upgraded one, one whose runs wrote none) has no ``b/``, and every reader got
    ``StoreNotFound`` for it. Its store is read as empty while the database records no
    artifact; once one is recorded, a missing store is ``StoreNotFound`` again."""
    url = f"sqlite:///{tmp_path / 'db' / 'registry.db'}"
    Registry(tmp_path / "b", db_url=url).close()  # a writer's opening: its database made
    assert sorted(os.listdir(tmp_path)) == ["db"]  # b/ not made
    with Registry.open(tmp_path / "b", db_url=url) as reg:
        assert reg.list_partitions() == [] and reg.count_partitions() == 0
        assert list(reg.artifacts.digests()) == []
    listed = CliRunner().invoke(
        app, ["models", "list", "--registry", str(tmp_path / "b"), "--registry-db", url, "--json"]
    )
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["total"] == 0
    assert sorted(os.listdir(tmp_path)) == ["db"]  # readers made nothing either
    train(spec_dict(), linear_frame(2, 30), Registry(tmp_path / "b", db_url=url), backend="local")
    assert (tmp_path / "b" / "artifacts").is_dir()  # made by the first write
    (tmp_path / "b").rename(tmp_path / "moved")
    said = r"no artifact store at .*/b/artifacts: with a database named"
    with pytest.raises(StoreNotFound, match=said):
        Registry.open(tmp_path / "b", db_url=url)


def empty(tmp_path: Path) -> Path:
    """An SQLite file with no tables (a database made, no registry in it)."""
    path = tmp_path / "empty.db"
    path.write_bytes(b"")  # zero bytes: SQLite's empty database
    return path


SPEC_TOML = (  # spec_dict() as a file: the same spec as the registry's runs
    'name = "test"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
    '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
)


def test_a_refused_run_with_its_database_named_apart_makes_no_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train --registry-db <a registry's database> --registry b`, its store forgotten (no
    `--artifacts`), is refused once the registry is opened, and left `b/` made, empty: the
    directory was made for the store the moment the registry opened. It is made by the
    store's first write now, so a refused run makes nothing; a run that goes ahead writes
    its artifacts there, and the next run finds them."""
    monkeypatch.chdir(tmp_path)
    train(spec_dict(), linear_frame(4, 40), tmp_path / "reg", backend="local")
    linear_frame(4, 40).to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "spec.toml").write_text(SPEC_TOML)
    run = ["train", "spec.toml", "rows.csv", "--registry", "b", "--backend", "local"]
    refused = CliRunner().invoke(
        app, [*run, "--registry-db", f"sqlite:///{tmp_path}/reg/registry.db"]
    )
    assert refused.exit_code == 1, refused.output
    assert "holds none of this registry's models" in refused.stderr, refused.stderr
    assert not (tmp_path / "b").exists()
    fresh = [*run, "--registry-db", f"sqlite:///{tmp_path}/new/registry.db"]
    for _ in range(2):  # the first makes b/artifacts; the second finds its models there
        done = CliRunner().invoke(app, fresh)
        assert done.exit_code == 0, done.output
    assert (tmp_path / "b" / "artifacts" / "owners").is_dir()
    assert sorted(os.listdir(tmp_path / "b")) == ["artifacts"]


def test_a_directory_that_cannot_be_made_is_refused_at_once_with_a_database_named(
    tmp_path: Path,
) -> None:
    """Not making the directory until the store's first write must not move the refusal of a
    path that cannot be one to the middle of a run: said as the registry opens, as before."""
    (tmp_path / "file").write_text("not a directory")
    url = f"sqlite:///{tmp_path}/db/registry.db"
    with pytest.raises(RegistryError, match=r"cannot create a registry at .*file/b: "):
        Registry(tmp_path / "file" / "b", db_url=url)
    assert sorted(os.listdir(tmp_path)) == ["file"]
    # a dangling symlink into it: judged by where it points, which the store would make
    # (it made the database, then failed at the store's first write: "cannot mark …")
    (tmp_path / "link").symlink_to(tmp_path / "file" / "b")
    with pytest.raises(RegistryError, match=r"cannot create a registry at .*link: .*file is not"):
        Registry(tmp_path / "link", db_url=url)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(RegistryError, match=r"cannot create a registry at .*loop: "):
        Registry(tmp_path / "loop", db_url=url)
    assert sorted(os.listdir(tmp_path)) == ["file", "link", "loop"]  # no db/
