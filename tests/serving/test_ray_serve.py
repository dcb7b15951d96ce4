"""``manymodels serve --ray-serve --replicas 2``: the router on real Ray Serve, over real HTTP.

One embedded Ray and one Serve application per test (starting them takes 20-60 s on a busy
2-core machine), so the checks share it: every partition answers as the plain router does, the
two replicas both answer, keys stay on their replica by /v1 and V2 routes alike, each replica's
/metrics names it, its log lines (the access log) reach its Serve log file, a promotion through
one replica's admin API is served by both, and SIGTERM leaves no process behind. The start-up
refusals and failures (a port in use, a Serve proxy that cannot start, replicas that cannot
open the registry) each need their own command; a Serve shared by two commands is
``test_ray_serve_cluster.py``'s.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import RAY_OWN_BOUNDS, RAY_STARTS, loaded_bound, ray_serve_command
from proctree import TOKEN_NOTICE, alive, descendants, ray_processes, wait_gone
from raycluster import free_port
from routerkit import KEY, TOKEN, TWO_VERSIONS, admin, expected, feature_rows, open_client

from serving.ray_serve import PROXY_CALLBACK_ENV, REPLICA_HEADER, ReplicaTag, partition_of
from serving.serve_errors import replica_error
from serving.settings import Settings

BIN = Path(sys.executable).parent
REPLICA = REPLICA_HEADER.decode()


def test_partition_of_reads_scoring_routes_only() -> None:
    assert partition_of(b"/v1/partitions/store=2,brand=tropicana/predict") == (
        b"store=2,brand=tropicana"
    )
    assert partition_of(b"/v1/partitions/store=1,brand=a%2Fb/forecast") == b"store=1,brand=a%2Fb"
    assert partition_of(b"/v1/partitions/store=2/explain") == b"store=2"
    assert partition_of(b"/v1/partitions/store=2/predict/") == b"store=2"  # answered as without
    # every V2 route of a model loads it: the same key, the same replica
    assert partition_of(b"/v2/models/store=2,brand=a%2Fb/infer") == b"store=2,brand=a%2Fb"
    assert partition_of(b"/v2/models/store=2/versions/3/infer/") == b"store=2"
    assert partition_of(b"/v2/models/store=2/ready") == b"store=2"
    assert partition_of(b"/v2/models/store=2/versions/3") == b"store=2"
    for other in (b"/v1/predict", b"/v1/partitions/store=2", b"/v1/partitions//predict",
                  b"/v1/partitions/store=2/promote", b"/healthz", b"/v2/models/",
                  b"/v2/models//infer", b"/v2/health/ready", b"/v2"):  # fmt: skip
        assert partition_of(other) is None


def _v2_inputs(row: dict[str, Any]) -> dict[str, Any]:
    return {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [v]}
                       for n, v in row.items()]}  # fmt: skip


def test_a_replica_reports_only_keys_a_partition_model_answered(registry_path: Path) -> None:
    """Serve's multiplexer holds ``--cache-size`` keys per replica: a request refused (401;
    404 for a version it does not have, 422 for its rows) or answered by the fallback took a
    place and pushed a hot key to another replica."""
    remembered: list[str] = []

    async def remember(key: str) -> None:
        remembered.append(key)

    asked = {"id": ""}  # the model id the proxy gave the request (``PartitionAffinity``)
    settings = Settings(registry=registry_path, read_token="reader", refresh_seconds=0.2)
    client = open_client(settings)
    client.app.add_middleware(
        ReplicaTag, replica="r1", remember=remember, model_id=lambda: asked["id"]
    )
    reader = {"Authorization": "Bearer reader"}
    rows = {"rows": feature_rows(1)}

    def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> int:
        asked["id"] = (partition_of(path.split("?")[0].encode()) or b"").decode()
        r = client.post(path, json=body, headers=headers)
        assert r.headers[REPLICA] == "r1", r.headers
        return r.status_code

    with client:
        assert post(f"/v1/partitions/{KEY}/predict", rows, {}) == 401
        assert post("/v1/partitions/store=99,brand=nobody/predict", rows, reader) == 200
        assert post("/v2/models/store=98,brand=nobody/infer", _v2_inputs(rows["rows"][0]),
                    reader) == 200  # fmt: skip
        # resolved to a partition's model, then refused: no such version, a bad body
        assert post("/v1/partitions/store=97,brand=nobody/predict?version=1", rows,
                    reader) == 404  # fmt: skip
        assert post(f"/v1/partitions/{KEY}/predict?version=99", rows, reader) == 404
        assert post(f"/v1/partitions/{KEY}/predict", {"rows": [{"price": "x"}]}, reader) == 422
        assert remembered == []  # refused, then the fallback's, then refused again
        assert post(f"/v1/partitions/{KEY}/predict", rows, reader) == 200
        assert post(f"/v2/models/{TWO_VERSIONS[0]}/infer", _v2_inputs(rows["rows"][0]),
                    reader) == 200  # fmt: skip
        assert post("/v1/predict", rows, reader) == 422  # no key in the path: no model id
    assert remembered == [KEY, TWO_VERSIONS[0]]


def test_the_replicas_error_is_the_last_exception_in_serves_message() -> None:
    """What Serve says of a deployment whose replicas failed to start (as Ray 2.60 words it):
    its explanation, then the replica's traceback, the real error last."""
    message = (
        "The deployment failed to start 3 times in a row. This may be due to a problem with "
        "its constructor or initial health check failing. See controller logs for details. "
        "Error:\n\x1b[36mray::ServeReplica:manymodels:router.initialize_and_get_metadata()"
        '\x1b[39m (pid=4862, ip=192.0.2.2)\n  File "replica.py", line 1928, in initialize\n'
        "    raise RuntimeError(traceback.format_exc()) from None\n"
        "RuntimeError: Traceback (most recent call last):\n"
        '  File "serving/ray_serve.py", line 190, in build\n    Registry.open(\n'
        "manymodels.exceptions.NoRegistry: no registry at /srv/reg (train something first)\n"
        "a second line of its message"
    )
    assert replica_error(message) == "NoRegistry: no registry at /srv/reg (train something first)"
    assert replica_error("Deployment failed: no node fits") == "Deployment failed: no node fits"


@pytest.mark.slow  # ~6 s of imports (Ray Serve's among them) on 2 cores; far more when busy
def test_an_unreachable_cluster_is_one_error_line(registry_path: Path) -> None:
    port = free_port()  # nothing listens there
    cmd: list[str | Path] = [BIN / "manymodels", "serve", "--ray-serve", "--registry",
                             registry_path, "--ray-address", f"127.0.0.1:{port}"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=loaded_bound(120))
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 1, out.stderr
    assert len(errors) == 1, out.stderr
    assert errors[0].startswith(f"error: cannot start or reach the Ray cluster at 127.0.0.1:{port}")
    assert "Traceback" not in out.stderr


@pytest.mark.slow  # imports only: the port is refused before Ray starts
def test_a_port_in_use_is_one_error_line(registry_path: Path) -> None:
    """Serve's proxy binds with SO_REUSEPORT: it started beside the port's owner, and the
    kernel split the clients between the two."""
    with socket.socket() as taken:  # as another Serve proxy listens: SO_REUSEPORT
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cmd: list[str | Path] = [BIN / "manymodels", "serve", "--ray-serve", "--registry",
                                 registry_path, "--port", str(port)]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        bound = loaded_bound(120)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=bound, env=env)
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 1, out.stderr
    assert errors == [f"error: cannot listen on 127.0.0.1:{port}: address already in use"], (
        out.stderr
    )
    assert "Started Serve" not in out.stderr


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_replicas_that_cannot_open_the_registry_are_one_error_line(
    registry_path: Path, tmp_path: Path
) -> None:
    """The registry goes away after the command checked it, before the replicas open it (a
    database restarting during a deploy): Serve gave up after three tries with a page of
    traceback; the command says the replica's own error in one line."""
    cmd: list[str | Path] = [BIN / "manymodels", "serve", "--ray-serve", "--replicas", "1",
                             "--registry", registry_path, "--port", str(free_port())]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    log_path = tmp_path / "serve.log"
    tree: set[int] = set()  # every start's, a start Ray gave up on included
    for attempt in range(1, RAY_STARTS + 1):
        code, started = _registry_gone_once_checked(cmd, env, log_path, registry_path, tmp_path)
        tree |= started
        text = log_path.read_text()
        if attempt == RAY_STARTS or not any(words in text for words in RAY_OWN_BOUNDS):
            break
        (tmp_path / "gone").rename(registry_path)  # Ray's own miss, not the test's: again
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert code == 1, text[-3000:]
    assert errors == [
        "error: the router replicas could not start on the embedded Ray: "
        f"NoRegistry: no registry at {registry_path} (train something first)"
    ], text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert wait_gone(tree, timeout=loaded_bound(15)) == {}


def _registry_gone_once_checked(
    cmd: list[str | Path], env: dict[str, str], log_path: Path, registry_path: Path, tmp_path: Path
) -> tuple[int, set[int]]:
    """``cmd`` run until it exits, its registry moved away once the command has checked it:
    its exit status, and its process tree as seen while it ran."""
    with log_path.open("w") as log:
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            # its notes follow the registry check, and come seconds before Ray is up
            while "note:" not in log_path.read_text():
                assert server.poll() is None, log_path.read_text()
                time.sleep(0.05)
            registry_path.rename(tmp_path / "gone")
            return _until_exit(server, log_path)
        finally:
            if server.poll() is None:
                server.kill()


def _until_exit(server: subprocess.Popen[bytes], log_path: Path) -> tuple[int, set[int]]:
    """``server`` waited for until it exits by itself (killed past a bound): its exit status,
    and its process tree as seen while it ran."""
    tree: set[int] = set()
    deadline = time.monotonic() + loaded_bound(240)
    try:
        while server.poll() is None:
            tree |= descendants(server.pid)
            assert time.monotonic() < deadline, "still running: " + log_path.read_text()
            time.sleep(0.5)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return server.returncode, tree


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_a_serve_that_cannot_start_is_one_error_line(registry_path: Path, tmp_path: Path) -> None:
    """Serve's own start fails: its HTTP proxy dies as it starts, here on a proxy hook that
    does not import (a user's ``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH`` wins over ours), on
    a loaded host Serve's "HTTP proxies not available after 60s.". ``serve.start`` ran outside
    the command's refusals: a page of Ray's traceback, exit 1 from the interpreter."""
    cmd: list[str | Path] = [BIN / "manymodels", "serve", "--ray-serve", "--replicas", "1",
                             "--registry", registry_path, "--port", str(free_port())]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env[PROXY_CALLBACK_ENV] = "no_such_module_h70:middlewares"
    log_path = tmp_path / "serve.log"
    tree: set[int] = set()  # every start's, a start Ray gave up on included
    for attempt in range(1, RAY_STARTS + 1):
        with log_path.open("w") as log:
            server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            code, started = _until_exit(server, log_path)
        tree |= started
        text = log_path.read_text()
        # Ray's own miss on a loaded machine (not the proxy's death): again
        if attempt == RAY_STARTS or not any(words in text for words in RAY_OWN_BOUNDS):
            break
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert code == 1, text[-3000:]
    assert len(tree) >= 4, "Ray never started: " + text[-3000:]  # GCS, raylet, workers…
    assert len(errors) == 1, text[-3000:]
    assert re.fullmatch(
        "error: Ray Serve could not start on the embedded Ray: ValueError: The import path "
        "no_such_module_h70:middlewares cannot be imported: No module named "
        r"'no_such_module_h70' \(Serve's logs: /\S+/logs/serve/\)",
        errors[0],
    ), errors
    assert "Traceback" not in text, text[-3000:]
    assert "router replica(s) at" not in text, text[-3000:]
    assert wait_gone(tree, timeout=loaded_bound(15)) == {}


@pytest.fixture
def serve_url(
    registry_path: Path, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """The command as a user runs it; SIGTERM at the end, then nothing of it may be left."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd: list[str | Path] = [BIN / "manymodels", "serve", "--ray-serve", "--replicas", "2",
                             "--registry", registry_path, "--port", str(port),
                             "--refresh-seconds", "0.2", "--access-log"]  # fmt: skip
    env = {**os.environ, "MANYMODELS_ADMIN_TOKEN": TOKEN}
    env.pop("RAY_ADDRESS", None)
    with ray_serve_command(cmd, env=env, url=url, log_path=tmp_path / "serve.log") as command:
        assert len(ray_processes(command.tree)) >= 4, alive(command.tree)
        # Serve's processes run at the host's priority, not at Ray's nice 15 for workers
        workers = {p: c for p, c in ray_processes(command.tree).items() if c.startswith("ray::")}
        assert sum(c.startswith("ray::ServeReplica") for c in workers.values()) == 2, workers
        assert {p: _niceness(p) for p in workers} == dict.fromkeys(workers, 0), workers
        yield url, command.process, command.log_path
    text = command.log()
    assert command.code == 0, f"exit {command.code}: {text[-3000:]}"
    assert "stopping Ray Serve" in text, text[-3000:]
    assert command.left == {}, f"still running 15 s (loaded: more) after it exited: {command.left}"
    assert TOKEN_NOTICE not in text
    # Serve's note for a second serve.start (serve.run starts it again) said that options
    # "will not be applied" on a Ray that had just started
    assert "Connecting to existing Serve app" not in text, text[-3000:]


def _niceness(pid: int) -> int:
    """The nice value of process ``pid`` (Linux's ``/proc``; ``stat``'s 19th field)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _predict(
    http: httpx.Client, url: str, key: str, rows: list[dict[str, Any]]
) -> tuple[dict[str, Any], str]:
    r = http.post(f"{url}/v1/partitions/{key}/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    return r.json(), r.headers[REPLICA]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_two_replicas_answer_every_partition_and_follow_a_promotion(
    serve_url: tuple[str, subprocess.Popen[bytes], Path], server: str, registry_path: Path
) -> None:
    url, _, log_path = serve_url
    # one client for the ~150 requests: httpx.post builds a client (an SSL context: the CA
    # bundle parsed, 30 ms-0.2 s of CPU) per call. Serve's proxy picks a replica per request,
    # not per connection, so a kept-alive connection changes no routing checked below.
    with httpx.Client(timeout=loaded_bound(30)) as http:
        _two_replicas_checks(http, url, log_path, server, registry_path)


def _two_replicas_checks(
    http: httpx.Client, url: str, log_path: Path, server: str, registry_path: Path
) -> None:
    rows = feature_rows()
    page = http.get(f"{server}/v1/partitions", params={"limit": 1000}).json()
    keys = [item["partition"] for item in page["partitions"] if item["partition"] != "__fallback__"]
    assert len(keys) >= 10
    # its start-up line names the dashboard, as the plain router's does; the replicas serve it
    assert f"(docs: {url}/docs, dashboard: {url}/ui)" in log_path.read_text()
    assert http.get(f"{url}/ui").status_code == 200
    replicas: set[str] = set()
    for key in keys:  # every partition, as the plain router (uvicorn, same registry) answers
        plain = http.post(f"{server}/v1/partitions/{key}/predict", json={"rows": rows}).json()
        answer, replica = _predict(http, url, key, rows)
        replicas.add(replica)
        assert answer["version"] == plain["version"] and not answer["fallback"], answer
        assert answer["predictions"] == pytest.approx(plain["predictions"], rel=1e-12)
    assert len(replicas) == 2, replicas  # new keys go to the replica with the fewest

    # affinity: a key's later requests go to the replica that reported it loaded (ids reach
    # the proxy within ~0.1 s); random routing would put ~1/2 of them on the other replica
    time.sleep(1.0)
    stayed = 0
    for key in keys:
        seen = [_predict(http, url, key, rows[:1])[1] for _ in range(5)]
        stayed += max(seen.count(r) for r in set(seen))
    assert stayed >= 0.9 * 5 * len(keys), stayed
    # V2 infer of the same partitions goes to the same replica (it loads the same model)
    same = 0
    for key in keys:
        home = _predict(http, url, key, rows[:1])[1]
        for _ in range(3):
            r = http.post(f"{url}/v2/models/{key}/infer", json=_v2_inputs(rows[0]))
            assert r.status_code == 200, r.text
            same += r.headers[REPLICA] == home
    assert same >= 0.9 * 3 * len(keys), same

    # each replica's /metrics names it on every series (through the proxy, one or the other)
    named: dict[str, str] = {}
    for _ in range(40):
        r = http.get(f"{url}/metrics")
        samples = [line for line in r.text.splitlines() if line and not line.startswith("#")]
        assert samples and all(f'replica="{r.headers[REPLICA]}"' in s for s in samples), r.text
        named[r.headers[REPLICA]] = r.text
        if len(named) == 2:
            break
    assert set(named) == replicas, named.keys()

    # --access-log: each replica's lines are in its Serve log file, which the command names
    (where,) = re.findall(r"replica logs in (\S+)", log_path.read_text())
    deadline = time.monotonic() + loaded_bound(30)
    while True:  # written by a background thread
        logged = "".join(p.read_text() for p in Path(where).parent.glob(Path(where).name))
        if logged.count('"event": "router ready"') == 2 and '"route": "/v2/models/' in logged:
            break
        assert time.monotonic() < deadline, logged[-3000:]
        time.sleep(0.5)
    assert '"path": "/v1/partitions/' in logged and '"status": 200' in logged, logged[-3000:]

    key = TWO_VERSIONS[0]
    r = http.post(f"{url}/v1/partitions/{key}/promote", json={"version": 2}, headers=admin())
    assert r.status_code == 200 and r.json()["to_version"] == 2, r.text
    promoted = expected(registry_path, key, rows[:1], version=2)
    store, brand = (part.split("=", 1)[1] for part in key.split(","))
    batch = [{"store": int(store), "brand": brand, **rows[0]}]
    served_by: dict[str, int] = {}
    deadline = time.monotonic() + loaded_bound(60)
    # /v1/predict carries no partition in its path: Serve spreads it over both replicas
    while len(served_by) < 2 and time.monotonic() < deadline:
        r = http.post(f"{url}/v1/predict", json={"rows": batch})
        assert r.status_code == 200, r.text
        (answer,) = r.json()["predictions"]
        if answer["version"] == 2:  # the other replica may take one refresh to see it
            assert answer["prediction"] == pytest.approx(promoted[0], rel=1e-12)
            served_by[r.headers[REPLICA]] = answer["version"]
    assert set(served_by) == replicas, served_by
    answer, _ = _predict(http, url, key, rows[:1])
    assert answer["version"] == 2 and answer["predictions"] == pytest.approx(promoted)
