"""Shared fixtures for the core tests: sample paths, small specs, and one real Ray session.

Tests marked ``slow`` (several processes, kill trials, benchmarks' smoke runs, real clusters)
run in CI (``CI=true``, as ``.ci/run`` sets it) or with ``--run-slow``; a plain ``pytest``
skips them, saying so, so that the default run stays a few minutes on two cores.

Every native thread pool (OpenMP, BLAS) gets one thread, here and in the processes tests start
(``native_threads``): set before any test module loads numpy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from native_threads import limit_native_threads

limit_native_threads()

DATA_SAMPLES = Path(__file__).resolve().parents[1] / "data-samples"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run the tests marked slow (CI=true runs them too)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    asked = "slow" in (config.getoption("markexpr") or "")  # pytest -m slow
    if asked or config.getoption("--run-slow") or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason="slow: runs in CI (CI=true) or with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """One embedded Ray instance (2 CPUs) for every test that goes through real Ray.

    ``address="local"`` always starts a fresh instance: without it ``ray.init`` silently joins
    any cluster someone started on this machine with ``ray start``.
    """
    import ray

    if ray.is_initialized():  # started by someone else: use it, leave it running
        yield ray
        return
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=300 * 1024**2,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return DATA_SAMPLES
