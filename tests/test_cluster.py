"""Training against an existing Ray cluster: a real two-node cluster started with `ray start`.

The cluster runs in its own process group with a shared auth token (Ray ≥ 2.59 requires one for
clusters started by `ray start`), and is torn down by signal so no `ray stop` touches any other
Ray instance on the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from manymodels.registry import Registry

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    logs = tmp_path_factory.mktemp("ray-logs")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=150000000"]
    procs: list[subprocess.Popen[bytes]] = []
    head_log, worker_log = (logs / "head.log").open("wb"), (logs / "worker.log").open("wb")
    try:
        head = subprocess.Popen(
            [BIN / "ray", "start", "--head", f"--port={port}", "--include-dashboard=false",
             "--disable-usage-stats", "--block", *common],
            env=env, start_new_session=True,
            stdout=head_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append(head)
        _wait_for_nodes(address, env, 1)
        worker = subprocess.Popen(
            [BIN / "ray", "start", f"--address={address}", "--block", *common],
            env=env, start_new_session=True,
            stdout=worker_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append(worker)
        _wait_for_nodes(address, env, 2)
        yield address, env
    finally:
        for p in reversed(procs):
            _stop(p)
        head_log.close()
        worker_log.close()


def _wait_for_nodes(address: str, env: dict[str, str], n: int, timeout: float = 90) -> None:
    probe = (
        "import ray,sys; ray.init(address=sys.argv[1], log_to_driver=False);"
        "print(sum(1 for x in ray.nodes() if x['Alive']))"
    )
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        res = subprocess.run(
            [sys.executable, "-c", probe, address], env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        last = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr[-500:]
        if res.returncode == 0 and last.isdigit() and int(last) >= n:
            return
        time.sleep(1)
    raise AssertionError(f"Ray cluster at {address} never had {n} nodes: {last}")


def test_train_on_existing_two_node_cluster(
    cluster: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, env = cluster
    registry = tmp_path / "reg"
    res = subprocess.run(
        [BIN / "manymodels", "train", ROOT / "data-samples/store_sales.toml",
         ROOT / "data-samples/store_sales.csv", "--registry", registry,
         "--ray-address", address, "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    run = json.loads(res.stdout)["run"]
    assert run["status"] == "completed"
    assert (run["n_trained"], run["n_skipped"], run["n_failed"]) == (34, 2, 0)
    with Registry.open(registry) as reg:
        # every trained partition (plus the fallback) has a loadable, verified production model
        assert reg.count_partitions() == 35
        loaded = reg.load_model("store=1,brand=tropicana")
        assert loaded.version.run_id == run["run_id"]


def test_ray_address_via_environment(cluster: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    address, env = cluster
    res = subprocess.run(
        [BIN / "manymodels", "train", ROOT / "data-samples/user_activity.toml",
         ROOT / "data-samples/user_activity.csv", "--registry", tmp_path / "reg", "--json"],
        env={**env, "RAY_ADDRESS": address}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    run = json.loads(res.stdout)["run"]
    assert run["n_trained"] == run["n_partitions"] > 0


def test_unreachable_cluster_is_one_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    res = subprocess.run(
        [BIN / "manymodels", "train", ROOT / "data-samples/store_sales.toml",
         ROOT / "data-samples/store_sales.csv", "--registry", tmp_path / "reg",
         "--ray-address", f"127.0.0.1:{_free_port()}"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot start or reach the Ray cluster at 127.0.0.1:")
