"""Opening a registry: only a writer creates one, and never over models whose database is lost.

A ``registry.db`` that was emptied (a full disk, a bad copy, ``truncate``) used to be taken for
a new registry: every command answered as if nothing was trained, and ``gc`` then deleted every
artifact. These tests plant such databases in real registry directories.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import ArtifactError, NoRegistry, RegistryError
from manymodels.gc import collect
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry.ownership import claim_store

SPEC_TOML = """
name = "test"
partition_by = ["pid"]
target = "y"
time_column = "t"

[[candidates]]
estimator = "sklearn.linear_model.Ridge"
"""


def one_error_line(result: Any, *expected: str) -> str:
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("open") / "reg"
    train(spec_dict(), linear_frame(2, 30), root, backend="local")
    return root


def artifact_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "artifacts").rglob("*") if p.is_file())


def emptied(trained: Path, tmp_path: Path) -> Path:
    """A copy of ``trained`` whose database was truncated to 0 bytes (no -wal, no -shm)."""
    import shutil

    root = Path(shutil.copytree(trained, tmp_path / "reg"))
    for suffix in ("-wal", "-shm"):
        (root / f"registry.db{suffix}").unlink(missing_ok=True)
    (root / "registry.db").write_bytes(b"")
    return root


def test_an_emptied_database_beside_artifacts_is_refused_by_readers_and_writers(
    trained: Path, tmp_path: Path
) -> None:
    root = emptied(trained, tmp_path)
    files = artifact_files(root)
    assert files
    for opener in (Registry.open, Registry):
        with pytest.raises(NoRegistry, match=r"is empty.*holds models: refusing"):
            opener(root)
    assert (root / "registry.db").stat().st_size == 0  # not even a header was written
    assert artifact_files(root) == files


@pytest.mark.parametrize(
    "command",
    [
        ["models", "list"],
        ["runs", "list"],
        ["promote", "pid=0", "1"],
        ["rollback", "pid=0"],
        ["gc", "--keep", "1", "--grace-seconds", "0"],
        pytest.param(["serve"], marks=pytest.mark.timeout(60)),  # it would serve forever
    ],
)
def test_cli_commands_refuse_an_emptied_database(
    trained: Path, tmp_path: Path, command: list[str]
) -> None:
    root = emptied(trained, tmp_path)
    files = artifact_files(root)
    result = CliRunner().invoke(app, [*command, "--registry", str(root)])
    one_error_line(result, "registry.db is empty", "holds models")
    assert result.exit_code == 1
    assert artifact_files(root) == files
    assert (root / "registry.db").stat().st_size == 0


def test_training_into_an_emptied_database_is_refused(trained: Path, tmp_path: Path) -> None:
    root = emptied(trained, tmp_path)
    files = artifact_files(root)
    (tmp_path / "spec.toml").write_text(SPEC_TOML)
    linear_frame(2, 30).to_csv(tmp_path / "data.csv", index=False)
    result = CliRunner().invoke(
        app,
        ["train", str(tmp_path / "spec.toml"), str(tmp_path / "data.csv"),
         "--registry", str(root), "--backend", "local"],
    )  # fmt: skip
    one_error_line(result, "is empty", "refusing to start a new registry")
    assert artifact_files(root) == files


def test_a_deleted_database_beside_artifacts_is_refused(trained: Path, tmp_path: Path) -> None:
    root = emptied(trained, tmp_path)
    (root / "registry.db").unlink()
    with pytest.raises(NoRegistry, match=r"no registry database at .*holds models"):
        Registry(root)
    assert not (root / "registry.db").exists()
    with pytest.raises(NoRegistry, match=r"no registry database at .*holds models"):
        Registry.open(root)


def test_the_router_refuses_to_start_over_an_emptied_database(
    trained: Path, tmp_path: Path
) -> None:
    import warnings

    from serving.app import create_app
    from serving.settings import Settings

    with warnings.catch_warnings():  # Starlette's notice that it prefers httpx2
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient

    root = emptied(trained, tmp_path)
    client = TestClient(create_app(Settings(registry=root)))
    with pytest.raises(NoRegistry, match="is empty"), client:
        pass


def test_an_empty_database_without_artifacts_is_new_to_a_writer_only(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    root.mkdir()
    (root / "registry.db").write_bytes(b"")
    with pytest.raises(NoRegistry, match=r"is empty: it holds no registry$"):
        Registry.open(root)
    assert (root / "registry.db").stat().st_size == 0
    with Registry(root) as reg:  # an explicit writer: nothing to lose, so a new registry
        assert reg.count_partitions() == 0
    with Registry.open(root) as reg:
        assert reg.count_partitions() == 0


def test_another_programs_database_is_never_written_into(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    root.mkdir()
    with sqlite3.connect(root / "registry.db") as raw:
        raw.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    raw.close()
    for opener in (Registry.open, Registry):
        with pytest.raises(RegistryError, match=r"is not a manymodels registry.*users"):
            opener(root)
    with sqlite3.connect(root / "registry.db") as raw:
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    raw.close()
    assert names == {"users"}


def test_an_unreadable_database_is_one_line(trained: Path, tmp_path: Path) -> None:
    root = emptied(trained, tmp_path)
    (root / "registry.db").write_bytes(b"not a database, " * 512)
    result = CliRunner().invoke(app, ["models", "list", "--registry", str(root)])
    one_error_line(result, "cannot open registry database", "file is not a database")


def test_gc_deletes_nothing_when_the_registry_references_none_of_the_store(
    trained: Path, tmp_path: Path
) -> None:
    """Belt and braces: a database paired with another registry's artifact store (or one that
    lost its versions) references none of them; gc must not take that for garbage."""
    other = tmp_path / "other"
    train(spec_dict(), linear_frame(1, 30).assign(y=lambda d: d["y"] * 3), other, backend="local")
    files = artifact_files(other)
    with Registry.open(trained, artifacts=other / "artifacts") as reg:
        for dry_run in (True, False):
            with pytest.raises(RegistryError, match="also holds the models of another registry"):
                collect(reg, keep=1, grace_seconds=0, dry_run=dry_run)
        # a store written before registries marked theirs holds none of this one's models
        shutil.rmtree(other / "artifacts" / "owners")
        files = artifact_files(other)
        for dry_run in (True, False):
            with pytest.raises(ArtifactError, match="holds none of this registry's models"):
                collect(reg, keep=1, grace_seconds=0, dry_run=dry_run)
        # … and marked as this registry's (a gc of old did so): the older guard still holds
        claim_store(reg)
        files = artifact_files(other)
        for dry_run in (True, False):
            with pytest.raises(RegistryError, match=r"references none of the .* artifact"):
                collect(reg, keep=1, grace_seconds=0, dry_run=dry_run)
    assert artifact_files(other) == files

    with Registry(tmp_path / "fresh") as reg:  # no versions at all, yet an orphan in its store
        reg.artifacts.put(b"left behind by a crashed first run")
        with pytest.raises(RegistryError, match="remove the artifacts by hand"):
            collect(reg, grace_seconds=0)
        assert len(list(reg.artifacts.digests())) == 1


def test_a_database_named_without_its_store_says_the_store_is_missing(
    trained: Path, tmp_path: Path
) -> None:
    """``--registry-db`` alone, from a directory without ``./mmregistry``: the error said
    "no registry at mmregistry (train something first)", though the database exists."""
    url = f"sqlite:///{trained / 'registry.db'}"
    with pytest.raises(NoRegistry, match=r"no artifact store at .*artifacts: with a database"):
        Registry.open(tmp_path / "mmregistry", db_url=url)
    assert not (tmp_path / "mmregistry").exists()


def test_a_registry_opened_by_a_relative_path_stays_that_registry_after_a_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service opened ``./mmregistry`` (the README's default) and later changed directory:
    its database path was absolute, its artifact store's relative, so loads failed and a
    train through the same handle recorded versions whose artifacts it wrote under the new
    directory (a Ray worker with a ``working_dir`` did the same on its own)."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    train(spec_dict(), linear_frame(), registry="mmregistry", backend="local")
    reg = Registry.open("mmregistry")
    key = "pid=0"
    monkeypatch.chdir(second)
    assert reg.load_model(key).version.version == 1
    train(spec_dict(), linear_frame(seed=5), registry=reg, backend="local")
    assert not (second / "mmregistry").exists()
    again = Registry.open(first / "mmregistry")
    newest = max(again.list_versions(key), key=lambda v: v.version)
    assert newest.version == 2
    assert again.load_model(key, newest.version).version.version == 2


@pytest.mark.parametrize("root", [5, ["reg"]])
def test_a_registry_that_is_not_a_path_is_one_line(tmp_path: Path, root: object) -> None:
    # Registry.open(5) raised a bare TypeError from pathlib; train(…, registry=5) too
    named = type(root).__name__
    with pytest.raises(RegistryError, match=f"^a registry is a directory's path, not {named}$"):
        Registry.open(root)  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match=f"^a registry is a directory's path, not {named}$"):
        train(spec_dict(), linear_frame(2), root, backend="local")  # type: ignore[arg-type]


def test_a_postgresql_server_that_never_answers_fails_in_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A frozen server (accepting, never answering) held a router's cold load 130 s (libpq
    waits for ever, or for TCP's retries) before its 500; a connection now gives up after
    ``PG_CONNECT_TIMEOUT_SECONDS``, and the open is one ``RegistryError``."""
    import socket
    import threading
    import time

    pytest.importorskip("psycopg")
    from manymodels.registry import pg_connect

    monkeypatch.setattr(pg_connect, "PG_CONNECT_TIMEOUT_SECONDS", 2)
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(silent.accept()[0]), daemon=True).start()
    port = silent.getsockname()[1]
    started = time.monotonic()
    try:
        with pytest.raises(RegistryError):
            Registry.open(
                "unused", db_url=f"postgresql+psycopg://u@127.0.0.1:{port}/db",
                artifacts=str(Path("unused-store")),
            )  # fmt: skip
    finally:
        silent.close()
        for conn in held:
            conn.close()
    # under the default 10 s: a patch of a constant no longer read would fail here
    assert time.monotonic() - started < 8


def test_a_new_registry_that_cannot_start_leaves_no_directory(tmp_path: Path) -> None:
    """`manymodels train … --registry new --artifacts <a store that cannot be opened>` made
    the directory `new` and left it, empty, behind its one error line. A directory that was
    there before stays, whatever happens."""
    from manymodels.exceptions import ArtifactError

    with pytest.raises(ArtifactError, match="unknown scheme"):
        Registry(tmp_path / "new" / "registry", artifacts="nosuch://bucket/prefix")
    assert not (tmp_path / "new").exists()  # nor the parent it made for it
    (tmp_path / "mine").mkdir()
    with pytest.raises(ArtifactError):
        Registry(tmp_path / "mine", artifacts="nosuch://bucket/prefix")
    assert (tmp_path / "mine").is_dir()


def test_an_artifact_store_whose_client_connects_as_it_is_made_fails_in_one_line(
    tmp_path: Path,
) -> None:
    """An fsspec client that connects when it is made (``ftp://``, ``sftp://``): a store that
    does not answer was a traceback (``socket.gaierror``, ``ConnectionRefusedError``) from
    every command naming it, where an unreachable S3 is one line. Now one ``error:`` line
    naming the store (exit 1), an ``ArtifactStoreUnavailable`` in the library."""
    import socket

    from manymodels.exceptions import ArtifactStoreUnavailable

    with socket.socket() as probe:  # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"ftp://127.0.0.1:{port}/models"
    with pytest.raises(ArtifactStoreUnavailable, match=f"cannot open the artifact store {url}"):
        Registry.open(tmp_path / "none", artifacts=url)
    result = CliRunner().invoke(
        app, ["models", "list", "--registry", str(tmp_path / "none"), "--artifacts", url]
    )
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot open the artifact store {url}")


@pytest.mark.parametrize("command", [["models", "list"], ["runs", "list"], ["doctor"]])
def test_a_registry_whose_database_is_elsewhere_says_to_name_it(
    tmp_path: Path, command: list[str]
) -> None:
    """docs/deployment.md §3 trains with MANYMODELS_REGISTRY_DB; a shell without it then reads
    the directory, which holds the artifacts and no registry.db. That is told as the likely
    cause (the URL not given), not only as a lost database to restore from a backup."""
    root, db = tmp_path / "reg", tmp_path / "elsewhere.db"
    with Registry(root, db_url=f"sqlite:///{db}") as reg:
        train(spec_dict(), linear_frame(2, 30), reg, backend="local")
    assert not (root / "registry.db").exists()
    files = artifact_files(root)
    result = CliRunner().invoke(app, [*command, "--registry", str(root)])
    one_error_line(
        result,
        f"no registry database at {root / 'registry.db'}",
        "holds models: refusing to start a new registry over them",
        "give it with --registry-db or MANYMODELS_REGISTRY_DB",
    )
    assert result.exit_code == 1
    assert artifact_files(root) == files and not (root / "registry.db").exists()
    ok = CliRunner().invoke(app, [*command, "--registry", str(root), "--registry-db",
                                  f"sqlite:///{db}"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
