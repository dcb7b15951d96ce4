"""A new registry pointed at a bucket that does not exist (a typo in ``MANYMODELS_ARTIFACTS``,
or the bucket not made yet), as an operator first runs ``train`` with docs/deployment.md's
steps 3 and 4: a real PostgreSQL server and a real SeaweedFS S3 server, nothing mocked.

``train`` made the registry's tables in the empty database, then failed to mark the store
("cannot mark s3://… as this registry's: Access Denied." on SeaweedFS, which answers a PUT
into a missing bucket so): exit 1, but the database now held an empty registry, so ``serve``
over the same URLs started a router of no partition where it had refused the empty database
in one line. Now the bucket is asked for before the tables are made: one line naming it, and
the database stays as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_contract.pgcluster import PostgresServer, running_own_server
from s3server import SeaweedServer, required_weed

BUCKET = "manymodels-bucket"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    binary = required_weed()
    # a key that reads and writes but may not make buckets, as an operator's usually is
    writer = {"name": "writer", "actions": ["Read", "Write", "List", "Tagging"],
              "credentials": [{"accessKey": "writer", "secretKey": "writer-secret"}]}  # fmt: skip
    root = tmp_path_factory.mktemp("seaweedfs")
    server = SeaweedServer(binary, root, BUCKET, identities=[writer])
    with pytest.MonkeyPatch.context() as mp:
        for name, value in server.env.items():
            mp.setenv(name, value)
        try:
            server.start()
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    yield from running_own_server()


def _manymodels(
    *args: str,
    db: str,
    artifacts: str,
    cwd: Path,
    weed: SeaweedServer,
    timeout: float = 120,
    secret: str = "writer-secret",
) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it: its own process, the locations in the variables."""
    env = {
        **os.environ,
        **weed.env,
        "AWS_ACCESS_KEY_ID": "writer",
        "AWS_SECRET_ACCESS_KEY": secret,
        **({"MANYMODELS_REGISTRY_DB": db} if db else {}),  # "": the command line's own
        "MANYMODELS_ARTIFACTS": artifacts,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "manymodels", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _tables(postgres: PostgresServer, db: str) -> list[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(db)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.slow  # seven commands, each its own process (~60 s on a busy 2-core machine)
def test_train_into_a_missing_bucket_is_one_line_and_makes_no_registry(
    weed: SeaweedServer, postgres: PostgresServer, tmp_path: Path
) -> None:
    db, missing = postgres.database(), f"s3://no-{BUCKET}/store-sales"
    samples = ROOT / "data-samples"
    spec, data = samples / "store_sales.toml", samples / "store_sales.csv"
    done = _manymodels(
        "train", str(spec), str(data), "--backend", "local",
        db=db, artifacts=missing, cwd=tmp_path, weed=weed,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: the artifact store {missing} cannot be written: "), line
    assert f"bucket 'no-{BUCKET}' does not exist" in line, line
    assert _tables(postgres, db) == []  # nothing made: the database is as it was
    try:  # a router of no partition would serve on: the refusal comes before it listens
        served = _manymodels("serve", db=db, artifacts=missing, cwd=tmp_path, weed=weed, timeout=60)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"serve started over the database the failed train left: {e.stderr!r}")
    assert served.returncode == 1, served.stderr
    (line,) = served.stderr.strip().splitlines()
    assert "is empty: it holds no registry" in line, line
    # the bucket made, the same command trains, and the router's check passes
    good = f"s3://{BUCKET}/store-sales"
    done = _manymodels(
        "train", str(spec), str(data), "--backend", "local",
        db=db, artifacts=good, cwd=tmp_path, weed=weed,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # over a registry with models, a missing bucket is said too (it was "holds none of this
    # registry's models", as for a misspelt prefix), by serve and by train
    for args in (["serve"], ["train", str(spec), str(data), "--backend", "local"]):
        done = _manymodels(*args, db=db, artifacts=missing, cwd=tmp_path, weed=weed, timeout=60)
        assert done.returncode == 1, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"error: the artifact store {missing} holds none of this"), line
        assert f"its bucket 'no-{BUCKET}' does not exist: no artifact of" in line, line
    # a wrong secret: serve said "cannot look for artifact … in s3://…: Forbidden" (a HEAD's
    # 403 has no body), which told nothing of the credentials
    done = _manymodels("serve", db=db, artifacts=good, cwd=tmp_path, weed=weed, secret="wrong")
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: the artifact store {good} refused to let this client"), line
    assert "check its credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in line, line


@pytest.mark.parametrize("where", ["--registry-db", "--registry"])
def test_train_into_a_missing_bucket_leaves_no_sqlite_file(
    weed: SeaweedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """The same refusal over a new SQLite registry: SQLite created the file (its header, 4 KB,
    no table) before the bucket was asked for, and it stayed with the directories made for it
    (``a/b/new.db``, or the new ``--registry`` directory ``reg/sub`` and its
    ``registry.db``). Now the bucket is asked first and nothing is made. ``--registry-db``
    as an operator runs it, in its own process; ``--registry`` by the same typer app in this
    one (a process costs ~3 s of imports), its exit code and stderr the same."""
    samples = ROOT / "data-samples"
    spec, data = samples / "store_sales.toml", samples / "store_sales.csv"
    place = f"sqlite:///{tmp_path}/a/b/new.db" if where == "--registry-db" else "reg/sub"
    missing = f"s3://no-{BUCKET}/store-sales"
    args = ["train", str(spec), str(data), "--backend", "local", where, place]
    if where == "--registry-db":
        done = _manymodels(*args, db="", artifacts=missing, cwd=tmp_path, weed=weed)
        code, stderr = done.returncode, done.stderr
    else:
        code, stderr = _in_process(args, missing, tmp_path, monkeypatch)
    assert code == 1, stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith(f"error: the artifact store {missing} cannot be written: "), line
    assert f"bucket 'no-{BUCKET}' does not exist" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # before: a (or reg), and the file


def _in_process(
    args: list[str], artifacts: str, cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    """``_manymodels``'s command run by the typer app in this process, with its variables:
    its exit code and stderr (stdout must be empty)."""
    import s3fs
    from typer.testing import CliRunner

    from manymodels.cli import app

    monkeypatch.chdir(cwd)
    for name, value in (("AWS_ACCESS_KEY_ID", "writer"), ("AWS_SECRET_ACCESS_KEY", "writer-secret"),
                        ("MANYMODELS_ARTIFACTS", artifacts)):  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MANYMODELS_REGISTRY_DB", raising=False)
    s3fs.S3FileSystem.clear_instance_cache()  # a client of another test's server or key
    try:
        result = CliRunner().invoke(app, args)
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
    assert result.stdout == "", result.stdout
    return result.exit_code, result.stderr
