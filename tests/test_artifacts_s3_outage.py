"""The S3 artifact store's server stopped (SIGKILL: connections refused) or frozen (SIGSTOP: it
holds its connections and answers nothing), under a read, a batch of writes, a training run and
``doctor``. A real SeaweedFS server for the module (``tests/s3server.py``), started again after
a test that stopped it; nothing is mocked. Each of these took minutes (a write to a frozen
server: for ever) before; the bounds asserted are what they take now, with room to spare.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import pytest
from factories import linear_frame, spec_dict
from s3server import SeaweedServer, required_weed
from tcpproxy import DroppingProxy
from typer.testing import CliRunner

from manymodels.artifacts import open_store
from manymodels.cli import app
from manymodels.exceptions import ArtifactStoreUnavailable
from manymodels.pipeline import Progress, train
from manymodels.registry import Registry

# slow (CI; the default run's 10 minutes): fault trials: an S3 server stopped or frozen
pytestmark = pytest.mark.slow

BUCKET = "manymodels-outage"
SPEC = spec_dict(features=["x0", "x1"], fallback={"enabled": False})


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """One SeaweedFS server for the module, its AWS variables set, and no user settings of
    the S3 client (``~/.aws/config``, fsspec's) to change what the tests time."""
    binary = required_weed()
    import fsspec.config

    server = SeaweedServer(binary, tmp_path_factory.mktemp("seaweedfs"), BUCKET)
    none = str(tmp_path_factory.mktemp("aws") / "none")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {**server.env, "AWS_CONFIG_FILE": none}.items():
            mp.setenv(name, value)
        mp.delenv("AWS_MAX_ATTEMPTS", raising=False)
        for protocol in ("s3", "s3a"):
            mp.delitem(fsspec.config.conf, protocol, raising=False)
        _forget_clients()
        try:
            server.start()
            yield server
        finally:
            server.thaw()
            server.stop()
            _forget_clients()


@pytest.fixture
def server(weed: SeaweedServer) -> Iterator[SeaweedServer]:
    """The module's server, running (started again if a test before stopped it) and awake."""
    if not weed.running:
        _forget_clients()
        weed.start()
    yield weed
    weed.thaw()
    _forget_clients()  # a client whose connections the test left waiting on a frozen server


@pytest.fixture
def stopped(weed: SeaweedServer) -> SeaweedServer:
    """The module's server stopped (SIGKILL): left stopped by the test before (the last
    test here to stop it, so no start is spent between), else stopped now."""
    if weed.running:
        weed.stop()
    _forget_clients()
    return weed


@pytest.fixture(scope="module", autouse=True)
def doctors_registry(
    weed: SeaweedServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """A registry of 12 partitions in a store of its own, trained as the module starts, while
    the server runs: ``doctor``'s test meets it with the server already stopped by the test
    before, where a registry trained in the test needed the server started again (~4 s)."""
    if not weed.running:
        weed.start()
    url, registry = _url(), tmp_path_factory.mktemp("doctor") / "reg"
    with Registry(registry, artifacts=url) as reg:
        train(SPEC, linear_frame(12, 20), reg, backend="local")
    return url, registry


def _forget_clients() -> None:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


def _url() -> str:
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


def _within(seconds: float, call: Callable[[], Any], server: SeaweedServer) -> tuple[float, Any]:
    """``call()``'s seconds and result (or the error it raised); a call still waiting after
    ``seconds`` fails the test, once the server is woken to let it finish."""
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(call)
        try:
            outcome = future.exception(timeout=seconds) or future.result()
        except FutureTimeout:
            server.thaw()
            pytest.fail(f"still waiting after {seconds:g} s")
    return time.monotonic() - started, outcome


def test_a_batch_of_writes_to_a_frozen_server_fails_in_seconds(
    server: SeaweedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A training chunk's deferred puts (``sync``): botocore sent each PUT with ``Expect:
    100-continue`` and aiohttp waited for the ``100 Continue`` without a timeout, so a write
    to a frozen server never returned. The read timeout now covers it: set here as a user
    would (fsspec's configuration for ``s3``), to 1 s. The puts are kept and written once
    the server answers again."""
    import fsspec.config

    monkeypatch.setitem(fsspec.config.conf, "s3", {"config_kwargs": {"read_timeout": 1}})
    store = open_store(_url())
    blobs = [f"model {i}".encode() for i in range(40)]
    digests = [store.put(b, durable=False)[0] for b in blobs]
    server.freeze()
    seconds, error = _within(60, store.sync, server)
    assert isinstance(error, ArtifactStoreUnavailable), error
    assert "cannot write 40 artifact(s)" in str(error) and "timeout" in str(error).lower()
    assert seconds < 15, seconds  # 3 attempts of 1 s, and botocore's backoff between them
    server.thaw()
    store.sync()
    fresh = open_store(store.url)  # what another process reads
    assert [fresh.get(d) for d in digests] == blobs


@pytest.mark.slow
def test_a_frozen_server_fails_a_cold_load_in_seconds_not_minutes(
    server: SeaweedServer, tmp_path: Path
) -> None:
    """The shipped settings: a router's cold load waited ~7 minutes on a frozen server (s3fs's
    5 tries of botocore's 5, each a 15 s read timeout) before its 503; now 3 tries of 5 s."""
    import httpx

    from serving.local import running_server
    from serving.settings import Settings

    url, registry = _url(), tmp_path / "reg"
    with Registry(registry, artifacts=url) as reg:
        train(SPEC, linear_frame(3), reg, backend="local")
    row = {"t": 5, "x0": 1.0, "x1": 2.0}
    settings = Settings(registry=registry, artifacts=url)
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=120) as http:

        def predict() -> httpx.Response:
            return http.post("/v1/partitions/pid=1/predict", json={"rows": [row]})

        server.freeze()
        seconds, answer = _within(100, predict, server)
        server.thaw()
        again = predict()
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 503, answer.text
    assert "timeout" in answer.json()["detail"].lower(), answer.text
    assert seconds < 25, seconds
    assert again.status_code == 200, again.text  # the server back: answered, no restart


@pytest.mark.slow
def test_a_run_stops_at_the_first_chunk_its_store_fails_and_resume_finishes_it(
    server: SeaweedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server stopped after the first of four chunks was committed. Every put of the
    chunks after it waited out the client's retries, a deferred batch re-sent every pending
    object each time, and the run went on to the end (most of an hour for 2,000 partitions,
    every one lost). Now the chunk that meets the outage stops, its partitions are ``lost``,
    the run stops with one line naming the store and the ``--resume`` command, and a resume
    once the server is back trains the rest."""
    from manymodels import artifact_stores

    monkeypatch.setattr(artifact_stores, "PENDING_OBJECTS", 4)  # a flush every 4 puts
    url, registry = _url(), tmp_path / "reg"
    df = linear_frame(40, 20)
    stopped_at: list[float] = []

    def stop_after_first_chunk(progress: Progress) -> None:
        if progress.done and not stopped_at:
            server.stop()
            stopped_at.append(time.monotonic())

    with Registry(registry, artifacts=url) as reg:
        with pytest.raises(ArtifactStoreUnavailable) as raised:
            train(SPEC, df, reg, backend="local", progress=stop_after_first_chunk)
        seconds = time.monotonic() - stopped_at[0]
        run = reg.list_runs(limit=1)[0]
        lost = reg.store.run_outcomes(run.run_id, status="lost", limit=100)
    said = str(raised.value)
    assert seconds < 15, seconds  # one failed flush (3 attempts), not one per partition
    assert "\n" not in said and url in said and f"--resume {run.run_id}" in said, said
    assert "10 partition(s) lost with the task that met it, the rest not trained" in said, said
    assert run.status == "failed" and run.n_trained == 10, run
    assert len(lost) == 10 and {o.error_type for o in lost} == {"ArtifactStoreUnavailable"}
    server.start()
    with Registry(registry, artifacts=url) as reg:
        summary = train(SPEC, df, reg, backend="local", resume=run.run_id)
    assert summary.run.status == "completed" and summary.run.n_trained == 40, summary.run
    result = CliRunner().invoke(app, ["doctor", "--registry", str(registry)],
                                env={"MANYMODELS_ARTIFACTS": url})  # fmt: skip
    assert result.exit_code == 0, result.output  # every version's bytes are in the store


def _one_try(monkeypatch: pytest.MonkeyPatch, **config: Any) -> None:
    """Each S3 request tried once (and ``config``'s other botocore options), set as
    docs/deployment.md has a user set it, ``FSSPEC_S3_CONFIG_KWARGS``: read here as fsspec reads
    the environment (once, as it is imported). A stopped server's read then fails at once, where
    the shipped 3 tries waited ~2.7 s for each; a refused connection is the same error either
    way (``ArtifactStoreUnavailable``)."""
    import fsspec.config

    value = json.dumps({"retries": {"total_max_attempts": 1}, **config})
    read: dict[str, dict[str, Any]] = {}
    fsspec.config.set_conf_env(read, {"FSSPEC_S3_CONFIG_KWARGS": value})
    monkeypatch.setitem(fsspec.config.conf, "s3", read["s3"])


@pytest.mark.slow
def test_a_rollback_while_the_store_is_down_is_a_503_and_moves_nothing(
    server: SeaweedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rollback checks that the version it goes back to can be loaded, and skipped those
    whose artifact check raised any ``ArtifactError`` — the store not answering included. With
    the server stopped, the router's rollback answered 409 "no earlier 'production' version to
    roll back to that still exists and can be loaded" (the library: ``NothingToRollBack``), a
    verdict clients do not retry, about versions that were fine. Now it is the outage (503,
    ``ArtifactStoreUnavailable``), nothing moves, and once the server is back the rollback goes
    to v1. Real uvicorn.

    Two checks each make the 503 here, before any write: ``ModelAccess._servable`` raises the
    outage at the first version's read; without it every version is skipped, the store's
    ``rollback_alias`` finds no target (``NothingToRollBack``, nothing written) and
    ``AliasControl.rollback`` asks ``ownership.check_store``, whose lookup meets the stopped
    store too. This test fails only with both gone (a store that fails one read only needs
    ``_servable``'s: the rollback test with a ``DroppingProxy``)."""
    import httpx

    from serving.local import running_server
    from serving.settings import Settings

    _one_try(monkeypatch)
    url, registry, key = _url(), tmp_path / "reg", "pid=1"
    with Registry(registry, artifacts=url) as reg:
        train(SPEC, linear_frame(2, seed=1), reg, backend="local")
        train(SPEC, linear_frame(2, seed=2), reg, backend="local")
        reg.promote(key, 2, reason="the test's")
    token = "rollback-outage-token"
    settings = Settings(registry=registry, artifacts=url, admin_token=token)
    headers = {"Authorization": f"Bearer {token}"}
    with (
        running_server(settings) as base,
        httpx.Client(base_url=base, timeout=120) as http,
        Registry(registry, artifacts=url) as reg,  # opened while the store answers
    ):
        server.stop()
        answer = http.post(f"/v1/partitions/{key}/rollback", headers=headers)
        with pytest.raises(ArtifactStoreUnavailable):
            reg.rollback(key)
        assert reg.get_version(key).version == 2  # nothing moved
        assert answer.status_code == 503, answer.text
        server.start()
        _forget_clients()
        # SeaweedFS answers 500 "internal error, please try again" for a moment after it
        # starts: that too is the store failing (503), never a version to skip (409)
        again = http.post(f"/v1/partitions/{key}/rollback", headers=headers)
        assert again.status_code in (200, 503), again.text
        deadline = time.monotonic() + 30
        while again.status_code == 503:
            assert time.monotonic() < deadline, again.text
            time.sleep(0.5)
            again = http.post(f"/v1/partitions/{key}/rollback", headers=headers)
    assert again.status_code == 200, again.text
    assert (again.json()["from_version"], again.json()["to_version"]) == (2, 1), again.text


@pytest.fixture
def proxy(server: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[DroppingProxy]:
    """The module's server behind a ``DroppingProxy``, the S3 client pointed at it as a user
    points it (``AWS_ENDPOINT_URL``) and botocore trying each request once: a dropped read
    fails at once (aiohttp still sends a dropped GET once more, on a new connection, and the
    proxy drops that too)."""
    dropping = DroppingProxy(int(server.endpoint.rsplit(":", 1)[1]))
    monkeypatch.setenv("AWS_ENDPOINT_URL", dropping.endpoint)
    _one_try(monkeypatch)
    _forget_clients()
    yield dropping
    dropping.close()
    _forget_clients()


def _reads_of(digest: str) -> re.Pattern[bytes]:
    return re.compile(rb"^GET /\S*/" + digest.encode() + rb"\b")


def test_a_rollback_whose_store_drops_one_read_skips_no_version_for_an_older_one(
    proxy: DroppingProxy, tmp_path: Path
) -> None:
    """Production went v1 → v2 → v3 and the store drops the one read of v2's artifact,
    answering every other. A store that does not answer says nothing about the version, so
    the rollback raises the outage (``ModelAccess._servable``) and moves nothing: taken for a
    version that cannot be loaded, v2 was skipped and production went 3 → 1, older than the
    version asked for, and no later check could tell (``check_store`` is asked only when
    nothing is left to roll back to). The store answering again, it goes to v2."""
    url, registry, key = _url(), tmp_path / "reg", "pid=1"
    with Registry(registry, artifacts=url) as reg:
        for seed in (1, 2, 3):  # each run's policy promotes its version
            train(SPEC, linear_frame(2, seed=seed), reg, backend="local")
        assert [m.to_version for m in reg.alias_history(key, "production")] == [1, 2, 3]
        v2 = reg.get_version(key, 2).artifact_sha256
        proxy.drop = _reads_of(v2)
        with pytest.raises(ArtifactStoreUnavailable, match=v2[:12]):
            moved = reg.rollback(key)
            pytest.fail(f"production went {moved.from_version} → {moved.to_version}")
        assert reg.get_version(key).version == 3  # nothing moved
        proxy.drop = None
        assert reg.rollback(key).to_version == 2  # the store answering: one version back


def test_a_promotion_whose_store_drops_its_read_raises_and_asks_it_nothing_more(
    proxy: DroppingProxy, tmp_path: Path
) -> None:
    """A promotion whose one read of the version's artifact the store drops raises that
    outage and moves nothing; it asks the store nothing more (``AliasControl.promote``): the
    check of a wrong store (``check_store``), made for an artifact found missing or refused,
    would wait on a store down as long again and report the lookup, not the read."""
    url, registry, key = _url(), tmp_path / "reg", "pid=1"
    with Registry(registry, artifacts=url) as reg:
        for seed in (1, 2):
            train(SPEC, linear_frame(2, seed=seed), reg, backend="local")
        v1 = reg.get_version(key, 1).artifact_sha256
        proxy.drop, asked = _reads_of(v1), len(proxy.requests)
        with pytest.raises(ArtifactStoreUnavailable, match=v1[:12]):
            reg.promote(key, 1)
        tried = proxy.requests[asked:]  # the read, and aiohttp's one retry of a GET dropped
        assert tried[-len(proxy.dropped) :] == proxy.dropped != [], tried  # nothing after
        assert reg.get_version(key).version == 2  # nothing moved
        proxy.drop = None
        assert reg.promote(key, 1).to_version == 1


@pytest.mark.slow
def test_a_prediction_the_stopped_store_fails_is_a_503_with_retry_after_on_v1_and_v2(
    server: SeaweedServer, tmp_path: Path
) -> None:
    """The README's outage answer is a 503 with ``Retry-After``. A prediction whose model the
    stopped store could not give (a cold load) was a 503 without it on ``/v1`` and on ``/v2``
    (their errors answered by the generic handlers, which set no header), so a client or a
    load balancer that retries a 503 only when told when gave up on a passing outage; only
    the database handler's 503s had it. Real uvicorn, a real SeaweedFS killed."""
    import httpx

    from serving.local import running_server
    from serving.settings import Settings

    url, registry = _url(), tmp_path / "reg"
    with Registry(registry, artifacts=url) as reg:
        train(SPEC, linear_frame(3), reg, backend="local")
    row = {"t": 5, "x0": 1.0, "x1": 2.0}
    tensors = {
        "inputs": [
            {"name": name, "datatype": "FP64", "shape": [1], "data": [row[name]]}
            for name in ("x0", "x1")
        ]
    }
    settings = Settings(registry=registry, artifacts=url)
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=120) as http:
        server.stop()
        v1 = http.post("/v1/partitions/pid=1/predict", json={"rows": [row]})
        v2 = http.post("/v2/models/pid=2/infer", json=tensors)
    assert v1.status_code == 503, v1.text
    assert v1.headers.get("retry-after") == "5", v1.headers
    assert "cannot read artifact" in v1.json()["detail"], v1.text
    assert v2.status_code == 503, v2.text
    assert v2.headers.get("retry-after") == "5", v2.headers
    assert "cannot read artifact" in v2.json()["error"], v2.text


def test_doctor_reports_a_stopped_store_once_without_reading_every_artifact(
    doctors_registry: tuple[str, Path], stopped: SeaweedServer
) -> None:
    """``doctor`` read every artifact of a registry whose store was down, ~8 s each, to list
    each as a problem of its own: one problem now, found at the first read, and the other
    checks (the database's) still made."""
    url, registry = doctors_registry
    started = time.monotonic()
    result = CliRunner().invoke(app, ["doctor", "--registry", str(registry), "--json"],
                                env={"MANYMODELS_ARTIFACTS": url})  # fmt: skip
    seconds = time.monotonic() - started
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert [p["kind"] for p in report["problems"]] == ["artifact_store_unreachable"], report
    message = report["problems"][0]["message"]
    total = report["checked"]["artifacts"]  # 12 models and the rows of each chunk
    assert url in message and f"{total} of {total} artifact(s) not checked" in message, message
    assert report["checked"]["versions"] == 12 and report["checked"]["runs"] == 1, report
    assert seconds < 15, seconds
