"""``manymodels serve`` predicts on one native thread unless the user sized the pools.

Observed from outside, in a real router: an OpenMP runtime starts its pool's threads at the
first parallel region, so a router whose 1-row HistGradientBoosting predictions fan out over
the cores has more OS threads after them (``/proc/<pid>/task``); one on a single thread has
none more. The router is started without the pool-sizing variables (``unsized``): the tests'
own ``OMP_NUM_THREADS=1`` would hide the difference (and ``host_env`` keeps it in an xdist
worker, which inherits it from the controller).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from factories import wait_ready
from native_threads import NATIVE_THREAD_VARS
from routerkit import KEY, SALES_SPEC, feature_rows, sales

from manymodels.pipeline import train
from manymodels.registry import Registry

HGB = "sklearn.ensemble.HistGradientBoostingRegressor"

pytestmark = [
    pytest.mark.slow,  # a router started per test: ~7 s each on 2 busy cores
    pytest.mark.skipif(
        len(os.sched_getaffinity(0)) < 2, reason="one core: OpenMP starts no pool to see"
    ),
]


@pytest.fixture(scope="module")
def boosted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Store × brand sales, each partition a 20-tree HistGradientBoosting model."""
    root = tmp_path_factory.mktemp("boosted") / "registry"
    spec = {**SALES_SPEC, "candidates": [{"estimator": HGB, "params": {"max_iter": [20]}}]}
    with Registry(root) as reg:
        summary = train(spec, sales(), reg, backend="local", only={KEY})
        assert summary.run.n_failed == 0, summary.failures
    return root


def unsized() -> dict[str, str]:
    """This environment without a variable that sizes a native pool: a user who set none."""
    return {k: v for k, v in os.environ.items() if k not in NATIVE_THREAD_VARS}


def _threads(pid: int) -> set[str]:
    return {task.name for task in Path(f"/proc/{pid}/task").iterdir()}


@pytest.fixture
def serve(boosted: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``manymodels serve`` over ``boosted``, no pool sized by the user."""
    yield from _serve(boosted, tmp_path, unsized())


def _serve(
    root: Path, tmp_path: Path, env: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    from raycluster import free_port

    port = free_port()
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--registry", str(root),
           "--port", str(port), "--no-monitor", "--preload", "20"]  # fmt: skip
    with log.open("wb") as out, subprocess.Popen(cmd, stderr=out, env=env) as proc:
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, proc, log=log)
            yield url, proc
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _threads_added_by_predictions(url: str, pid: int) -> int:
    """OS threads the router started over five 1-row predictions of its preloaded model (ones
    that ended meanwhile, a start-up's, do not count)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        before = _threads(pid)
        for _ in range(5):
            answer = client.post(f"/v1/partitions/{KEY}/predict", json={"rows": feature_rows(1)})
            assert answer.status_code == 200, answer.text
        return len(_threads(pid) - before)


def test_serve_predicts_on_one_native_thread(
    serve: tuple[str, subprocess.Popen[bytes]],
) -> None:
    """The default: no OpenMP pool started by predictions (one thread more on 2 cores before)."""
    url, proc = serve
    assert _threads_added_by_predictions(url, proc.pid) == 0


def test_a_users_omp_num_threads_wins(boosted: Path, tmp_path: Path) -> None:
    """``OMP_NUM_THREADS=2`` set by the user: predictions fan out over two threads again."""
    env = {**unsized(), "OMP_NUM_THREADS": "2"}
    served = _serve(boosted, tmp_path, env)
    url, proc = next(served)
    try:
        assert _threads_added_by_predictions(url, proc.pid) == 1
    finally:
        served.close()
