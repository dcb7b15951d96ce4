"""Registry backups (``manymodels.backup``, ``manymodels export-registry`` / ``import-registry``).

A backup taken while a router answers and a training run commits restores into an empty
registry that serves the same answers; a damaged, tampered or foreign file, and a target that
already holds something, are one ``error:`` line each and leave nothing behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import (
    as_older_schema,
    directories_refuse_fsync,
    linear_frame,
    spec_dict,
    wait_ready,
)
from typer.testing import CliRunner

from manymodels.backup import MANIFEST, export_registry
from manymodels.cli import app
from manymodels.exceptions import ArtifactCorrupted, ArtifactNotFound, BadSignature
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.restore import import_registry
from manymodels.signing import Signer
from serving.local import running_server
from serving.settings import Settings

SPEC = spec_dict(features=["x0", "x1"])
ROWS = [{"x0": 0.5, "x1": -1.0}, {"x0": 2.0, "x1": 0.25}]
TABLES = ("runs", "partitions", "model_versions", "aliases", "alias_history", "run_partitions",
          "meta")  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry of three partitions and the fallback, trained twice (two versions each where
    the data changed), kept read-only by the tests (each copies it first if it writes)."""
    root = tmp_path_factory.mktemp("backup") / "reg"
    train(SPEC, linear_frame(3, 30), root, backend="local")
    train(SPEC, linear_frame(3, 30, seed=1), root, backend="local")
    return root


def _copy(trained: Path, tmp_path: Path) -> Path:
    root = tmp_path / "src"
    shutil.copytree(trained, root)
    return root


def _rows(db: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _error_line(result: Any) -> str:
    """The one line a failing command printed (CliRunner mixes stderr into output)."""
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_backup_written_under_a_percent_directory_is_made(trained: Path, tmp_path: Path) -> None:
    """The snapshot beside ``out`` was opened by an f-string ``sqlite:///`` URL: under
    ``a%20b/`` SQLAlchemy read ``a b/`` and the export failed."""
    out = tmp_path / "a%20b" / "b.tar"
    out.parent.mkdir()
    result = _cli("export-registry", str(out), "--registry", str(trained))
    assert result.exit_code == 0, result.output
    with tarfile.open(out) as tar:
        assert tar.getnames()[0] == "registry.db"
    assert os.listdir(tmp_path) == ["a%20b"]


def test_round_trip_restores_every_row_and_exactly_the_referenced_artifacts(
    trained: Path, tmp_path: Path
) -> None:
    out, restored = tmp_path / "b.tar", tmp_path / "restored"
    result = _cli("export-registry", str(out), "--registry", str(trained), "--json")
    assert result.exit_code == 0, result.output
    exported = json.loads(result.output)
    with Registry.open(trained) as reg:
        referenced = reg.store.referenced_digests()
        held = set(reg.artifacts.digests())
    with tarfile.open(out) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
    assert names[0] == "registry.db" and names[-1] == MANIFEST
    assert {n.removeprefix("artifacts/") for n in names[1:-1]} == referenced
    assert len(referenced) == exported["artifacts"] and referenced <= held
    assert manifest["schema_version"] == t.SCHEMA_VERSION
    assert manifest["counts"]["versions"] == exported["counts"]["versions"] > 4

    result = _cli("import-registry", str(out), "--registry", str(restored))
    assert result.exit_code == 0, result.output
    for table in TABLES:
        new_rows, old_rows = (
            _rows(restored / "registry.db", table),
            _rows(trained / "registry.db", table),
        )
        if table == "meta":  # every row but the id: the copy is a registry of its own
            old_rows = [r for r in old_rows if r[0] != "registry_id"]
            assert "registry_id" not in {r[0] for r in new_rows}
        assert new_rows == old_rows
    with Registry.open(restored) as new, Registry.open(trained) as old:
        assert set(new.artifacts.digests()) == referenced
        for p in old.list_partitions(limit=100):
            assert (
                new.load_model(p.key).predict(ROWS) == old.load_model(p.key).predict(ROWS)
            ).all()
    assert _cli("doctor", "--registry", str(restored)).exit_code == 0
    assert {p.name for p in tmp_path.iterdir()} == {"b.tar", "restored"}  # no temp left


@pytest.mark.parametrize(
    ("name", "magic"),
    [("b.tar.gz", b"\x1f\x8b"), ("b.tgz", b"\x1f\x8b"), ("b.tar.bz2", b"BZh"),
     ("b.tar.xz", b"\xfd7zXZ\x00")],
)  # fmt: skip
def test_a_backup_named_as_compressed_is_compressed_and_restores(
    trained: Path, tmp_path: Path, name: str, magic: bytes
) -> None:
    """``export-registry backup.tar.gz`` wrote a plain tar under that name: no smaller, and
    ``tar xzf`` refused it as not gzip."""
    out = tmp_path / name
    result = _cli("export-registry", str(out), "--registry", str(trained))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(magic)
    result = _cli("import-registry", str(out), "--registry", str(tmp_path / "restored"))
    assert result.exit_code == 0, result.output
    assert _cli("doctor", "--registry", str(tmp_path / "restored")).exit_code == 0


@pytest.mark.parametrize("name", ["b.tar", "b.tar.gz"])
def test_the_export_fsyncs_the_whole_tar_before_it_takes_its_name(
    trained: Path, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tar was fsynced before it was closed: its end blocks, and for a compressed one the
    compressor's last bytes and the gzip trailer, were written after the fsync, then the file
    renamed to its name; a power cut after that could leave a backup cut short under it."""
    real, synced = os.fsync, {}

    def recording(fd: int) -> None:
        real(fd)
        synced[os.readlink(f"/proc/self/fd/{fd}")] = os.fstat(fd).st_size

    monkeypatch.setattr(os, "fsync", recording)
    out = tmp_path / name
    with Registry.open(trained) as reg:
        export_registry(reg, out)
    tars = {Path(p).name: size for p, size in synced.items() if p.endswith(name)}
    assert len(tars) == 1, synced  # the hidden tar before its rename
    assert list(tars.values()) == [out.stat().st_size]


def test_export_is_a_snapshot_beside_an_open_write_transaction(
    trained: Path, tmp_path: Path
) -> None:
    """A writer holding the write lock mid-transaction neither blocks the export nor leaks
    its uncommitted rows into it."""
    root = _copy(trained, tmp_path)
    writer = sqlite3.connect(root / "registry.db", isolation_level=None, timeout=1)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO partitions VALUES ('pid=99', '{\"pid\": 99}', 1, 'x', 'x')")
    try:
        started = time.monotonic()
        with Registry.open(root) as reg:
            done = export_registry(reg, tmp_path / "b.tar")
        assert time.monotonic() - started < 10  # not the 30 s busy timeout
    finally:
        writer.execute("COMMIT")
        writer.close()
    import_registry(tmp_path / "b.tar", tmp_path / "restored")
    keys = [r[0] for r in _rows(tmp_path / "restored" / "registry.db", "partitions")]
    assert "pid=99" not in keys and len(keys) == done.counts["partitions"] == 4


@pytest.mark.parametrize("damage", ["missing", "corrupted"])
def test_a_referenced_artifact_missing_or_corrupted_stops_the_export(
    trained: Path, tmp_path: Path, damage: str
) -> None:
    root = _copy(trained, tmp_path)
    with Registry.open(root) as reg:
        digest = reg.load_model("pid=1").version.artifact_sha256
        path = reg.artifacts.path(digest)  # type: ignore[attr-defined]
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes() + b"x")
    out = tmp_path / "out" / "b.tar"
    out.parent.mkdir()
    out.write_bytes(b"the previous backup")
    with Registry.open(root) as reg, pytest.raises((ArtifactNotFound, ArtifactCorrupted)) as e:
        export_registry(reg, out)
    assert digest in str(e.value) and "partition 'pid=1'" in str(e.value)
    line = _error_line(_cli("export-registry", str(out), "--registry", str(root)))
    assert digest in line and "no backup was written" in line
    assert [p.name for p in out.parent.iterdir()] == ["b.tar"]  # no temp file left
    assert out.read_bytes() == b"the previous backup"


@pytest.fixture(scope="module")
def backup_tar(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tar") / "b.tar"
    with Registry.open(trained) as reg:
        export_registry(reg, out)
    return out


def _rewrite(src: Path, dst: Path, change: dict[str, bytes]) -> None:
    """Copy the tar ``src`` to ``dst`` with some members' bytes replaced (headers kept apart
    from their size)."""
    with tarfile.open(src) as old, tarfile.open(dst, "w") as new:
        for info in old.getmembers():
            data = change.get(info.name, old.extractfile(info).read())  # type: ignore[union-attr]
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))


def _artifact_member(tar_path: Path) -> str:
    with tarfile.open(tar_path) as tar:
        return next(n for n in tar.getnames() if n.startswith("artifacts/"))


def test_a_tampered_member_is_refused_by_name_and_nothing_is_left(
    backup_tar: Path, tmp_path: Path
) -> None:
    name = _artifact_member(backup_tar)
    with tarfile.open(backup_tar) as tar:
        data = bytearray(tar.extractfile(name).read())  # type: ignore[union-attr]
    data[-1] ^= 1  # same size: only the sha256 can tell
    bad = tmp_path / "bad.tar"
    _rewrite(backup_tar, bad, {name: bytes(data)})
    target = tmp_path / "restored"
    line = _error_line(_cli("import-registry", str(bad), "--registry", str(target)))
    assert f"member {name} does not match its sha256" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar"]


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE], ids=["symlink", "hardlink"])
def test_a_listed_member_that_is_a_link_is_refused(
    backup_tar: Path, tmp_path: Path, kind: bytes
) -> None:
    """A member the manifest lists, swapped for a symlink or hard link of the same name
    (pointing out of the target, or at another member), is refused before anything lands."""
    name = _artifact_member(backup_tar)
    bad = tmp_path / "links.tar"
    with tarfile.open(backup_tar) as old, tarfile.open(bad, "w") as new:
        for info in old.getmembers():
            if info.name == name:
                link = tarfile.TarInfo(name)
                link.type = kind
                link.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else "registry.db"
                new.addfile(link)
            else:
                new.addfile(info, old.extractfile(info))
    line = _error_line(_cli("import-registry", str(bad), "--registry", str(tmp_path / "r")))
    assert f"member {name} is not the file its manifest lists" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["links.tar"]


def test_a_tampered_database_or_manifest_is_refused(backup_tar: Path, tmp_path: Path) -> None:
    with tarfile.open(backup_tar) as tar:
        db = tar.extractfile("registry.db").read()  # type: ignore[union-attr]
        manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
    cases = {
        "db": {"registry.db": db[:-1] + bytes([db[-1] ^ 1])},
        "count": {MANIFEST: json.dumps({**manifest, "counts": {**manifest["counts"],
                                                               "versions": 1}}).encode()},
        "extra": {},
    }  # fmt: skip
    for case, change in cases.items():
        bad = tmp_path / f"{case}.tar"
        _rewrite(backup_tar, bad, change)
        if case == "extra":
            with tarfile.open(bad, "a") as tar:
                info = tarfile.TarInfo("../evil")
                info.size = 1
                tar.addfile(info, io.BytesIO(b"x"))
        line = _error_line(_cli("import-registry", str(bad), "--registry", str(tmp_path / "r")))
        expected = {"db": "member registry.db does not match its sha256",
                    "count": "its manifest counts 1 versions",
                    "extra": "member ../evil is not in its manifest"}[case]  # fmt: skip
        assert expected in line, line
        assert not (tmp_path / "r").exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_bad_inputs_are_one_error_line(backup_tar: Path, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "restored"
    line = _error_line(_cli("import-registry", str(tmp_path / "nope.tar"), "--registry",
                            str(target)))  # fmt: skip
    assert "no backup file at" in line
    text = tmp_path / "notes.tar"
    text.write_text("not a tar at all\n" * 100)
    line = _error_line(_cli("import-registry", str(text), "--registry", str(target)))
    assert "is not a manymodels registry backup" in line
    truncated = tmp_path / "half.tar"
    truncated.write_bytes(backup_tar.read_bytes()[: backup_tar.stat().st_size // 2])
    line = _error_line(_cli("import-registry", str(truncated), "--registry", str(target)))
    assert "half.tar" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["half.tar", "notes.tar"]


def test_bad_export_targets_are_one_error_line(trained: Path, tmp_path: Path) -> None:
    for args, says in [
        (["export-registry", str(tmp_path / "b.tar"), "--registry", str(tmp_path / "nope")],
         "no registry at"),
        (["export-registry", str(tmp_path), "--registry", str(trained)], "is a directory"),
        (["export-registry", str(tmp_path / "no" / "b.tar"), "--registry", str(trained)],
         "does not exist"),
        # a name promising another format: it was written as a plain tar under that name
        (["export-registry", str(tmp_path / "b.zip"), "--registry", str(trained)],
         "a backup is a tar, not .zip: name it .tar, or .tar.gz"),
        (["export-registry", str(tmp_path / "b.gz"), "--registry", str(trained)],
         "a backup is a tar, not .gz"),
        (["export-registry", str(tmp_path / "b.tar.zst"), "--registry", str(trained)],
         "a backup is a tar, not .zst"),
    ]:  # fmt: skip
        assert says in _error_line(_cli(*args))
    assert list(tmp_path.iterdir()) == []


def test_an_export_onto_the_registry_itself_or_a_non_file_is_refused(
    trained: Path, tmp_path: Path
) -> None:
    """export-registry replaces OUT by rename: onto the registry's own database (a typo) it
    would destroy the registry, onto a device or FIFO it would replace that node."""
    reg = _copy(trained, tmp_path)
    before = _rows(reg / "registry.db", "model_versions")
    for out in (reg / "registry.db", reg / "b.tar", reg / "artifacts" / "b.tar"):
        assert "inside the registry" in _error_line(_cli("export-registry", str(out),
                                                         "--registry", str(reg)))  # fmt: skip
    assert _rows(reg / "registry.db", "model_versions") == before
    assert not (reg / "b.tar").exists()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    line = _error_line(_cli("export-registry", str(fifo), "--registry", str(reg)))
    assert "not a regular file" in line
    assert fifo.is_fifo()


def test_a_non_empty_target_is_refused_and_an_empty_one_is_used(
    backup_tar: Path, trained: Path, tmp_path: Path
) -> None:
    line = _error_line(_cli("import-registry", str(backup_tar), "--registry", str(trained)))
    assert "is not empty" in line and "give another --registry" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _cli("import-registry", str(backup_tar), "--registry", str(empty)).exit_code == 0
    assert (empty / "registry.db").exists()


def test_a_signed_registry_restored_verifies_with_the_same_key(tmp_path: Path) -> None:
    key, other = Signer(b"k" * 32), Signer(b"o" * 32)
    train(SPEC, linear_frame(2, 30), tmp_path / "src", backend="local", signer=key)
    with Registry.open(tmp_path / "src") as reg:
        export_registry(reg, tmp_path / "b.tar")
    import_registry(tmp_path / "b.tar", tmp_path / "restored")
    with Registry.open(tmp_path / "restored", signer=key) as reg:
        assert reg.signed_by == key.key_id
        assert len(reg.load_model("pid=0").predict(ROWS)) == 2
    with Registry.open(tmp_path / "restored", signer=other) as reg, pytest.raises(BadSignature):
        reg.load_model("pid=0")


def test_an_older_schema_is_upgraded_on_import(backup_tar: Path, tmp_path: Path) -> None:
    """A backup written by a manymodels of schema 3 (no monitoring tables) is restored and
    upgraded by the usual open path."""
    with tarfile.open(backup_tar) as tar:
        db = tar.extractfile("registry.db").read()  # type: ignore[union-attr]
        manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
    old = tmp_path / "old.db"
    old.write_bytes(db)
    with sqlite3.connect(old) as conn:
        as_older_schema(conn.execute, "3")  # its later steps first: one is on monitor_actuals
        conn.execute("DROP TABLE monitor_drift")
        conn.execute("DROP TABLE monitor_actuals")
    conn.close()
    import hashlib

    data = old.read_bytes()
    manifest["schema_version"] = "3"
    manifest["members"]["registry.db"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                          "size": len(data)}  # fmt: skip
    tar_path = tmp_path / "old.tar"
    _rewrite(backup_tar, tar_path, {"registry.db": data, MANIFEST: json.dumps(manifest).encode()})
    result = _cli("import-registry", str(tar_path), "--registry", str(tmp_path / "r"), "--json")
    assert result.exit_code == 0, result.output
    with Registry.open(tmp_path / "r") as reg:
        assert reg.store.get_meta("schema_version") == t.SCHEMA_VERSION
        assert len(reg.load_model("pid=0").predict(ROWS)) == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow  # a `manymodels serve` process, two training runs, a second router: 50 s busy
def test_a_backup_under_load_restores_and_serves_identically(tmp_path: Path) -> None:
    """The issue's "done when": a router answers in a loop and a training run commits while
    backups are taken; a backup taken during the run (one that caught the run unfinished,
    when one did), restored into an empty registry, serves the same versions and answers."""
    src = tmp_path / "src"
    train(SPEC, linear_frame(10, 30), src, backend="local")
    port = _free_port()
    cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--registry", str(src),
           "--port", str(port), "--refresh-seconds", "0.2"]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    statuses: list[int] = []
    stop = threading.Event()
    with subprocess.Popen(cmd, stderr=subprocess.DEVNULL) as proc:
        try:
            wait_ready(base, proc, timeout=60)

            def load() -> None:
                with httpx.Client(base_url=base, timeout=10) as client:
                    while not stop.is_set():
                        for key in ("pid=0", "pid=5", "pid=9"):
                            r = client.post(f"/v1/partitions/{key}/predict", json={"rows": ROWS})
                            statuses.append(r.status_code)

            loader = threading.Thread(target=load)
            loader.start()
            trainer = threading.Thread(
                target=train, args=(SPEC, linear_frame(10, 30, seed=1), src),
                kwargs={"backend": "local"},
            )  # fmt: skip
            trainer.start()
            taken: list[Path] = []
            while trainer.is_alive():
                out = tmp_path / f"b{len(taken)}.tar"
                with Registry.open(src) as reg:
                    export_registry(reg, out)
                taken.append(out)
            trainer.join()
            stop.set()
            loader.join()
            assert taken and statuses and set(statuses) == {200}
            mid_run = [b for b in taken if _runs_running(b, tmp_path)]
            print("BK", len(taken), len(mid_run), len(statuses))
            import_registry((mid_run or taken)[0], tmp_path / "restored")
            with Registry.open(tmp_path / "restored") as new, Registry.open(src) as old:
                restored = {p.key: p.aliases["production"] for p in new.list_partitions()}
                versions = {(v.key, v.version): v for v in new.store.version_digests()}
                original = {(v.key, v.version): v for v in old.store.version_digests()}
            assert len(restored) == 11  # and the fallback
            assert all(original[k] == v for k, v in versions.items())  # rows, signatures
            restored_settings = Settings(registry=tmp_path / "restored")
            with running_server(restored_settings) as url, httpx.Client(timeout=10) as client:
                for key, version in restored.items():
                    if key == "__fallback__":  # answers for unknown keys, not by its own
                        continue
                    path = f"/v1/partitions/{key}/predict"
                    mine = client.post(f"{url}{path}", json={"rows": ROWS}).json()
                    theirs = client.post(
                        f"{base}{path}", params={"version": version}, json={"rows": ROWS}
                    ).json()
                    assert mine["version"] == theirs["version"] == version
                    assert mine["predictions"] == theirs["predictions"]
        finally:
            stop.set()
            proc.terminate()
            proc.wait(30)


def _runs_running(backup: Path, tmp_path: Path) -> int:
    """How many runs the backup's snapshot caught unfinished."""
    db = tmp_path / f"{backup.stem}.db"
    with tarfile.open(backup) as tar:
        db.write_bytes(tar.extractfile("registry.db").read())  # type: ignore[union-attr]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0])


def test_leftovers_of_a_killed_export_or_import_go_with_the_next_one(
    trained: Path, backup_tar: Path, tmp_path: Path
) -> None:
    """A killed export left a partial tar and a database copy, a killed import a partial
    registry, hidden, for good (three killed exports and two imports: ~430 MB). The next
    export or import beside them removes a dead writer's, never a running one's."""
    from manymodels.tempnames import writer_tag

    done = subprocess.run(
        [sys.executable, "-c", "from manymodels.tempnames import writer_tag; print(writer_tag())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    dead, alive = done.stdout.strip(), writer_tag()
    leftovers = [
        tmp_path / f".tmp-export-{dead}-0a1b2c3d-b.tar",
        tmp_path / f".tmp-import-{dead}-0a1b2c3d-r",
    ]
    leftovers[0].write_bytes(b"a partial tar")
    leftovers[0].with_name(leftovers[0].name + ".db").write_bytes(b"a database copy")
    (leftovers[1] / "artifacts").mkdir(parents=True)
    running = tmp_path / f".tmp-export-{alive}-0a1b2c3d-c.tar"
    running.write_bytes(b"being written")
    # not a writer's name: its tag runs on into the rest of the name
    mine = tmp_path / f".tmp-export-{dead}junk"
    mine.write_bytes(b"a user's file")
    # another machine's (or container's): once a day old
    elsewhere = tmp_path / f".tmp-export-1-2-{'f' * 12}-0a1b2c3d-d.tar"
    elsewhere.write_bytes(b"another machine's")
    fresh = tmp_path / f".tmp-export-1-2-{'e' * 12}-0a1b2c3d-e.tar"
    fresh.write_bytes(b"another machine's, being written")
    os.utime(elsewhere, (time.time() - 2 * 86_400, time.time() - 2 * 86_400))
    export_registry(Registry.open(trained), tmp_path / "b.tar")
    assert (
        not leftovers[0].exists() and not leftovers[0].with_name(leftovers[0].name + ".db").exists()
    )
    assert leftovers[1].exists()  # an import's: the next import's to judge
    import_registry(backup_tar, tmp_path / "restored")
    assert not leftovers[1].exists() and running.exists()
    assert mine.exists() and fresh.exists() and not elsewhere.exists()


def test_an_artifact_gc_deleted_after_the_snapshot_says_to_export_again(
    trained: Path, tmp_path: Path
) -> None:
    """An export racing ``gc --keep 1`` failed with "missing … manymodels doctor lists every
    such problem" (exit 2), and doctor found none: the version was gone with its artifact."""
    from manymodels.backup import _read_artifact, _snapshot
    from manymodels.exceptions import RegistryError
    from manymodels.gc import collect

    root = _copy(trained, tmp_path)
    with Registry(root) as reg:
        train(spec_dict(), linear_frame(2, 40).assign(y=lambda d: d["y"] + 1), reg, backend="local")
        old = reg.get_version("pid=0", 1)
        snapshot = tmp_path / "snapshot.db"
        _snapshot(reg, snapshot)  # what the export reads from, taken before gc runs
        collect(reg, keep=1, grace_seconds=0, alias_grace_seconds=0)
        assert not reg.artifacts.exists(old.artifact_sha256)
        with pytest.raises(
            RegistryError,
            match=r"partition 'pid=0' v1 was deleted from the registry while the export ran",
        ):
            _read_artifact(reg, old.artifact_sha256, snapshot)


def test_a_run_going_when_the_backup_was_taken_is_interrupted_in_the_copy(
    tmp_path: Path,
) -> None:
    """Restored as running, it named the original's live process: ``doctor`` said "is
    running (process N on this machine)", and ``--resume`` refused to take it over while the
    original trained on. In the copy it is interrupted, and resumes at once."""
    from manymodels.doctor import check
    from manymodels.tempnames import writer_tag

    df = linear_frame(2, 30)
    summary = train(SPEC, df, tmp_path / "src", backend="local")
    with Registry.open(tmp_path / "src") as reg:
        with reg.store.engine.begin() as conn:  # as a run this (live) process is training
            options = {**summary.run.options, "owner": writer_tag()}
            conn.execute(
                t.runs.update().values(
                    status="running", ended_at=None, options_json=json.dumps(options)
                )
            )
        assert reg.get_run(summary.run.run_id).owner_alive
        export_registry(reg, tmp_path / "b.tar")
    import_registry(tmp_path / "b.tar", tmp_path / "restored")
    with Registry.open(tmp_path / "restored") as reg:
        run = reg.get_run(summary.run.run_id)
        assert (run.status, run.error) == ("interrupted", "running when the backup was taken")
        assert run.ended_at is not None  # its elapsed time does not grow in the copy
        (problem,) = [p for p in check(reg).problems if p.kind == "unfinished_run"]
        assert "was interrupted: finish it with" in problem.message
    resumed = train(SPEC, df, tmp_path / "restored", backend="local", resume=run.run_id)
    assert resumed.run.status == "completed"


def test_a_directory_its_filesystem_cannot_fsync_fails_neither_export_nor_import(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some network and FUSE filesystems refuse fsync of a directory (EINVAL). The backup
    module kept its own fsync_dir, without 1be2d11's allowance: `export-registry` and
    `import-registry` failed once the archive / the registry was already in place under its
    name. Now both use ``durable_files.fsync_dir`` and the command stands."""
    directories_refuse_fsync(monkeypatch)
    out, restored = tmp_path / "b.tar", tmp_path / "restored"
    result = _cli("export-registry", str(out), "--registry", str(trained))
    assert result.exit_code == 0, result.output
    result = _cli("import-registry", str(out), "--registry", str(restored))
    assert result.exit_code == 0, result.output
    with Registry.open(restored) as reg:
        assert reg.store.referenced_digests() <= set(reg.artifacts.digests())


def test_a_backup_of_a_newer_schema_says_to_upgrade_manymodels(
    backup_tar: Path, tmp_path: Path
) -> None:
    """A backup exported by a newer manymodels (a schema above this one's head). Was: one
    line naming the hidden staging directory the import had removed, "registry
    …/.tmp-import-…-r/registry.db has schema version 10, newer …"; now it names the backup."""
    import hashlib

    with tarfile.open(backup_tar) as tar:
        db = tar.extractfile("registry.db").read()  # type: ignore[union-attr]
        manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
    newer = str(int(t.SCHEMA_VERSION) + 1)
    made = tmp_path / "newer.db"
    made.write_bytes(db)
    with sqlite3.connect(made) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (newer,))
    conn.close()
    data = made.read_bytes()
    manifest["schema_version"] = newer
    manifest["members"]["registry.db"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                          "size": len(data)}  # fmt: skip
    tar_path = tmp_path / "newer.tar"
    _rewrite(backup_tar, tar_path, {"registry.db": data, MANIFEST: json.dumps(manifest).encode()})
    target = tmp_path / "r"
    line = _error_line(_cli("import-registry", str(tar_path), "--registry", str(target)))
    assert line == (
        f"error: {tar_path} holds a registry of schema version {newer}, newer than this "
        f"manymodels reads (version {t.SCHEMA_VERSION}): it was exported by a newer "
        "manymodels — upgrade manymodels to import it; nothing was imported"
    )
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-import-")] == []
