"""Training against an existing Ray cluster: a real two-node cluster started with `ray start`.

The cluster is ``tests/raycluster.py``'s (shared with ``benchmarks/cluster.py``): each node in its
own process group with a shared auth token, torn down by signal so no `ray stop` touches any
other Ray instance on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from raycluster import RayCluster, free_port

from manymodels.registry import Registry

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    cluster = RayCluster(tmp_path_factory.mktemp("ray-logs"), nodes=2, num_cpus=1)
    cluster.start()
    try:
        yield cluster.address, cluster.env
    finally:
        cluster.stop()


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
         "--ray-address", f"127.0.0.1:{free_port()}"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot start or reach the Ray cluster at 127.0.0.1:")
