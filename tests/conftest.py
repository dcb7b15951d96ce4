"""Shared fixtures for the core tests: sample paths, small specs, and one real Ray session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DATA_SAMPLES = Path(__file__).resolve().parents[1] / "data-samples"


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
