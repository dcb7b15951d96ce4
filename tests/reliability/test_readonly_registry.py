"""A registry on a read-only filesystem: every read works, every write says why it cannot.

The filesystems are real: a tmpfs remounted read-only (``mount -o remount,ro``), and a
read-only bind of a writable directory (``mount --bind -o ro``, a container's ``:ro``
volume) through whose source a writer keeps writing. As root, ``chmod -R a-w`` would not stop
a single write, so only a mount proves anything; a user's machine without root skips, CI —
which runs as root — never does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import ReadOnlyRegistry
from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings

pytestmark = pytest.mark.slow

TOKEN = "read-only-test-token"
runner = CliRunner()


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test: {why}")
    pytest.skip(why)


def _mount(*args: str) -> None:
    if os.geteuid() != 0:
        _unavailable("mounting a filesystem needs root")
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        _unavailable(f"mount {' '.join(args)} failed here: {done.stderr.strip()}")


def _read_only(path: Path) -> None:
    """The mount is really read-only: for root too (a write fails with EROFS)."""
    with pytest.raises(OSError, match="Read-only file system"):
        (path / "probe").write_bytes(b"")


def _train_into(root: Path, versions: int = 1) -> None:
    """Five partitions, ``versions`` versions each (later ones stay candidates: manual)."""
    spec = spec_dict(promotion={"policy": "manual"})
    with Registry(root) as reg:
        for seed in range(versions):
            train(spec, linear_frame(5, 30, seed=seed), reg, backend="local")


@pytest.fixture(scope="module")
def read_only_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A registry trained into a tmpfs, which is then remounted read-only."""
    mnt = tmp_path_factory.mktemp("ro") / "disk"
    mnt.mkdir()
    _mount("-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt))
    try:
        _train_into(mnt / "reg", versions=2)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        _read_only(mnt)
        yield mnt / "reg"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def invoke(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def test_read_only_commands_work_and_writes_fail_with_one_line(
    read_only_registry: Path, tmp_path: Path
) -> None:
    root = read_only_registry
    with Registry.open(root) as reg:
        run_id = reg.list_runs()[0].run_id
    data = tmp_path / "data.csv"
    linear_frame(5, 30).to_csv(data, index=False)
    reads: list[list[str | Path]] = [
        ["models", "list"],
        ["models", "show", "pid=1"],
        ["runs", "list"],
        ["runs", "show", run_id],
        ["doctor"],
        ["gc", "--dry-run"],
        ["score", data, "--out", tmp_path / "scores.csv", "--backend", "local"],
    ]
    for args in reads:
        result = invoke(*args, "--registry", root)
        assert result.exit_code == 0, (args, result.stderr)
    assert len((tmp_path / "scores.csv").read_text().splitlines()) == 151

    spec = tmp_path / "spec.toml"
    spec.write_text('name = "t"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
                    '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n')  # fmt: skip
    writes: list[list[str | Path]] = [
        ["promote", "pid=1", "2"],
        ["rollback", "pid=1"],
        ["retire", "pid=1"],
        ["gc", "--keep", "1"],
        ["doctor", "--repair"],
        ["train", spec, data, "--backend", "local"],
        ["train", spec, data, "--append", "--backend", "local"],
    ]
    for args in writes:
        result = invoke(*args, "--registry", root)
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith(f"error: registry at {root} is read-only (its filesystem is "
                                   "mounted read-only)"), (args, lines)  # fmt: skip
        if args[0] == "train":  # refused as it is opened, an append's kept rows not read
            assert "cannot open it for writing (reading works)" in lines[0], (args, lines)
        assert result.exception is None or isinstance(result.exception, SystemExit)

    with pytest.raises(ReadOnlyRegistry, match="read-only"):
        Registry(root)  # a writer: refused at once, not at its first write
    with Registry.open(root) as reg:  # a reader: reads, loads and verifies; writes are refused
        assert reg.read_only == "its filesystem is mounted read-only"
        assert reg.load_model("pid=1").version.version == 1
        with pytest.raises(ReadOnlyRegistry, match=f"registry at {root} is read-only"):
            reg.promote("pid=1", 2)
        assert reg.get_version("pid=1").version == 1


@pytest.fixture
def empty_read_only_store(tmp_path: Path) -> Iterator[Path]:
    """An empty store directory on a tmpfs remounted read-only."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt))
    try:
        (mnt / "store").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        _read_only(mnt)
        yield mnt / "store"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_new_registry_over_a_read_only_store_is_refused_before_its_database(
    empty_read_only_store: Path, tmp_path: Path
) -> None:
    """``--artifacts`` naming a store directory that is there on a read-only mount: the new
    registry's database was made (its tables, no run) and left, and the refusal said the
    registry, on a writable disk, was read-only. Now the store is refused before the file or
    its directory is made, and an existing registry over it names the store as the cause."""
    store = empty_read_only_store
    data, spec = tmp_path / "data.csv", tmp_path / "spec.toml"
    linear_frame(5, 30).to_csv(data, index=False)
    spec.write_text('name = "t"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
                    '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n')  # fmt: skip
    new = tmp_path / "new"
    for where in (["--registry", new / "reg"], ["--registry-db", f"sqlite:///{new}/r.db"]):
        result = invoke("train", spec, data, *where, "--artifacts", store, "--backend", "local")
        assert result.exit_code == 1, result.output
        assert result.stderr.strip().splitlines() == [
            f"error: the artifact store {store} cannot be written: {store} is read-only (its "
            "filesystem is mounted read-only)"
        ]
        assert not new.exists()  # no database, no directory for it
    kept = tmp_path / "kept"
    _train_into(kept)  # a registry on a writable disk, its artifacts then bound read-only
    artifacts = kept / "artifacts"
    _mount("--bind", "-o", "ro", str(artifacts), str(artifacts))
    try:
        result = invoke("train", spec, data, "--registry", kept, "--backend", "local")
    finally:
        subprocess.run(["umount", "-l", str(artifacts)], check=False)
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(
        f"error: registry at {kept} is read-only (its artifact store {artifacts}: its filesystem "
        "is mounted read-only)"
    ), result.stderr


def test_a_router_serves_a_read_only_registry_and_refuses_writes_with_503(
    read_only_registry: Path,
) -> None:
    settings = Settings(registry=read_only_registry, admin_token=TOKEN, retrain_backend="local")
    admin = {"Authorization": f"Bearer {TOKEN}"}
    row = {"t": 30, "x0": 0.5, "x1": -0.5}
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/readyz").status_code == 200
        answer = http.post("/v1/partitions/pid=1/predict", json={"rows": [row]})
        assert answer.status_code == 200 and answer.json()["version"] == 1
        refused = [
            http.post("/v1/partitions/pid=1/promote", json={"version": 2}, headers=admin),
            http.post("/v1/partitions/pid=1/rollback", headers=admin),
            http.post(
                "/v1/partitions/pid=1/retrain", json={"rows": [{**row, "y": 1.0}]}, headers=admin
            ),
        ]
        for response in refused:
            assert response.status_code == 503, response.text
            assert "is read-only (its filesystem is mounted read-only)" in response.json()["detail"]
        still = http.post("/v1/partitions/pid=1/predict", json={"rows": [row]})
        assert still.status_code == 200 and still.json()["version"] == 1


@pytest.fixture
def read_only_bind(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """``(source, view)``: a writable registry, and a read-only bind mount of it."""
    source, view = tmp_path / "reg", tmp_path / "view"
    _train_into(source, versions=2)
    view.mkdir()
    _mount("--bind", "-o", "ro", str(source), str(view))
    try:
        _read_only(view)
        yield source, view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_a_read_only_view_sees_every_commit_of_a_writer_through_the_source(
    read_only_bind: tuple[Path, Path],
) -> None:
    """Both ways of reading: ``mode=ro`` while the writer holds the database open (its -shm
    is there), ``immutable=1`` once it has closed it (nothing in a -wal). A long-lived reader
    (a router) sees each commit, whichever way its next read goes."""
    source, view = read_only_bind
    db = source / "registry.db"
    with Registry.open(view) as reader:
        assert not Path(f"{db}-wal").exists()  # the trainer closed it: read immutable
        assert reader.get_version("pid=1").version == 1
        for version in (2, 1, 2):
            with Registry.open(source) as writer:
                writer.promote("pid=1", version)
                assert Path(f"{db}-shm").exists()  # the writer has it open: read with mode=ro
                assert reader.get_version("pid=1").version == version
                assert reader.load_model("pid=1").version.version == version
            assert not Path(f"{db}-wal").exists()  # closed: immutable again
            assert reader.get_version("pid=1").version == version
        history = [m.to_version for m in reader.alias_history("pid=1", "production")]
        assert history == [1, 2, 1, 2]
        with pytest.raises(ReadOnlyRegistry, match=f"registry at {view} is read-only"):
            reader.rollback("pid=1")
    assert sorted(os.listdir(view)) == ["artifacts", "registry.db"]  # the reader left nothing


_CRASH_AFTER_COMMIT = """
import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA wal_autocheckpoint=0")  # the commit stays in the -wal file
conn.execute("INSERT INTO meta VALUES ('committed-before-the-kill', 'yes')")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_commit_left_in_the_wal_by_a_killed_writer_is_read_or_refused_never_missed(
    tmp_path: Path,
) -> None:
    """A writer killed after a commit leaves it in ``-wal`` (with ``-shm``); the filesystem is
    then made read-only. ``immutable=1`` would ignore the -wal and answer without that commit,
    so: read through ``mode=ro`` while the -shm is there, and without it an error that says
    what to do — never an answer that silently misses a commit."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    _mount("-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt))
    try:
        root = mnt / "reg"
        _train_into(root)
        db = root / "registry.db"
        killed = subprocess.run([sys.executable, "-c", _CRASH_AFTER_COMMIT, str(db)], check=False)
        assert killed.returncode == -9 and Path(f"{db}-wal").stat().st_size > 0
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        with Registry.open(root) as reg:
            assert reg.store.get_meta("committed-before-the-kill") == "yes"

        subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
        Path(f"{db}-shm").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        result = invoke("models", "list", "--registry", root)
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines() == [
            f"error: cannot read registry database {db}: it is on a read-only filesystem with "
            "changes still in its -wal file, which SQLite reads only through a -shm file it "
            "cannot create there (open the registry once where it is writable — any command "
            "folds the -wal into the database — then mount it read-only again)"
        ]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
