"""``manymodels serve --ray-serve --ray-address`` on a real ``ray start`` cluster that other
commands share (``tests/raycluster.py``, the proxy hook set where ``ray start`` runs, as
docs/deployment.md says).

Ray Serve has one HTTP address per cluster, fixed when Serve starts, and ``serve.run`` replaces
an application of the same name: a second command took over the first one's clients (and
deleted its application when stopped), and one given another ``--port`` printed an address
nothing listened on. Each is now refused in one line, the first command serving on untouched.
One cluster and one deployed router for all the checks (each start takes 20-60 s here).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from factories import ray_serve_command
from raycluster import RayCluster, free_port

from serving.ray_serve import PROXY_CALLBACK, PROXY_CALLBACK_ENV, REPLICA_HEADER

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

BIN = Path(sys.executable).parent
REPLICA = REPLICA_HEADER.decode()


@pytest.fixture
def cluster() -> Iterator[RayCluster]:
    root = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))  # short: Ray's socket paths
    rc = RayCluster(root, nodes=1, num_cpus=3, temp_dirs=True,
                    extra_env={PROXY_CALLBACK_ENV: PROXY_CALLBACK})  # fmt: skip
    rc.start()
    try:
        yield rc
    finally:
        rc.stop()
        shutil.rmtree(root, ignore_errors=True)


def _command(cluster: RayCluster, registry: Path, port: int) -> list[str | Path]:
    return [BIN / "manymodels", "serve", "--ray-serve", "--replicas", "1", "--ray-address",
            cluster.address, "--registry", registry, "--port", str(port)]  # fmt: skip


def _refused(cluster: RayCluster, registry: Path, port: int) -> str:
    """The one error line of a command that must refuse to deploy."""
    env = {k: v for k, v in cluster.env.items() if k != "RAY_ADDRESS"}
    out = subprocess.run(_command(cluster, registry, port), capture_output=True, text=True,
                         timeout=180, env=env)  # fmt: skip
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 1, out.stderr[-3000:]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    return errors[0]


def _replica(url: str) -> str:
    r = httpx.get(f"{url}/readyz", timeout=10)
    assert r.status_code == 200, r.text
    return r.headers[REPLICA]


def test_commands_sharing_a_cluster_never_take_over_or_mislead(
    cluster: RayCluster, registry_path: Path, tmp_path: Path
) -> None:
    port, other = free_port(), free_port()
    where = f"the Ray cluster at {cluster.address}"
    # no Serve on the cluster yet: its proxy will bind on this (head) node, beside the owner
    with socket.socket() as taken:  # as another Serve proxy listens: SO_REUSEPORT
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert _refused(cluster, registry_path, busy) == (
            f"error: cannot listen on 127.0.0.1:{busy}: address already in use"
        )

    env = {k: v for k, v in cluster.env.items() if k != "RAY_ADDRESS"}
    url = f"http://127.0.0.1:{port}"
    with ray_serve_command(_command(cluster, registry_path, port), env=env, url=url,
                           log_path=tmp_path / "first.log", stop_timeout=120) as first:  # fmt: skip
        replica = _replica(url)

        # the same port: a second application named manymodels would replace the first
        assert _refused(cluster, registry_path, port).startswith(
            f"error: a Ray Serve application named 'manymodels' already runs on {where} "
            "(RUNNING; another `manymodels serve --ray-serve`?)"
        )
        assert first.process.poll() is None and _replica(url) == replica  # untouched

        # another port: Serve keeps the address it started with
        assert _refused(cluster, registry_path, other) == (
            f"error: Ray Serve already runs on {where} and listens on {url}, not "
            f"127.0.0.1:{other} (Serve's address is set when it starts): pass --host "
            f"127.0.0.1 --port {port}, or shut Serve down there first"
        )
        assert _replica(url) == replica
    text = first.log()
    assert first.code == 0, text[-3000:]
    assert "Connecting to existing Serve app" not in text, text[-3000:]
    # its own application deleted; Serve stays up for the cluster's other users
    assert httpx.get(f"{url}/readyz", timeout=10).status_code == 404
