"""Registries trained with the real pipeline (in-process backend), copied per test.

Training happens once per session; each test that may write (promote, tamper) gets its own
copy of the registry directory, so tests never see each other's changes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from factories import SENSORS, pumps_spec, users_spec
from routerkit import SALES_SPEC, TOKEN, TWO_VERSIONS, open_client, sales

from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import sensor_readings, user_activity
from serving.local import running_server
from serving.settings import Settings


def _train(spec: dict[str, Any], data: pd.DataFrame, root: Path, **kwargs: Any) -> None:
    with Registry(root) as reg:
        summary = train(spec, data, reg, backend="local", **kwargs)
        assert summary.run.n_failed == 0, summary.failures


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Store × brand sales: 10 partitions + fallback at v1; two partitions also have a v2
    'candidate' trained on doubled sales (manual promotion policy), so its predictions differ."""
    root = tmp_path_factory.mktemp("sales") / "registry"
    df = sales()
    _train(SALES_SPEC, df, root)
    manual = {**SALES_SPEC, "promotion": {"policy": "manual"}}
    _train(manual, df.assign(units=df["units"] * 2), root, only=set(TWO_VERSIONS))
    return root


@pytest.fixture(scope="session")
def trained_no_fallback(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nofallback") / "registry"
    _train({**SALES_SPEC, "fallback": {"enabled": False}}, sales(), root)
    return root


@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sensors") / "registry"
    spec = pumps_spec(
        features=SENSORS,
        metric="balanced_accuracy",
        candidates=[
            {
                "estimator": "sklearn.linear_model.LogisticRegression",
                "scale": True,
                "params": {"C": [1.0], "max_iter": [1000]},
            }
        ],
    )
    _train(spec, sensor_readings(n_assets=2, readings=60), root)
    return root


@pytest.fixture(scope="session")
def trained_categorical(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("users") / "registry"
    spec = users_spec(
        candidates=[
            {"estimator": "sklearn.linear_model.Ridge", "scale": True, "params": {"alpha": [1.0]}}
        ]
    )
    _train(spec, user_activity(n_users=3, days=30), root)
    return root


@pytest.fixture
def registry_path(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the sales registry: safe to promote in or tamper with."""
    return Path(shutil.copytree(trained, tmp_path / "registry"))


@pytest.fixture
def settings(registry_path: Path) -> Settings:
    return Settings(registry=registry_path, admin_token=TOKEN, refresh_seconds=0.2)


@pytest.fixture
def client(settings: Settings) -> Iterator[Any]:
    with open_client(settings) as c:
        yield c


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    with running_server(settings) as url:
        yield url


# ------------------------------------- one router per module, for the tests that only read
@pytest.fixture(scope="module")
def shared_registry(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the sales registry for a module's ``reader`` and ``reading_server``: only
    for tests that write nothing to it (scoring, refusals, metadata), so none changes what
    the next one sees; a test that promotes, retrains or counts from zero takes ``client``."""
    return Path(shutil.copytree(trained, tmp_path_factory.mktemp("shared") / "registry"))


@pytest.fixture(scope="module")
def reader(shared_registry: Path) -> Iterator[Any]:
    """``client``'s router (same settings) started once per module: the app's start-up and a
    registry copy cost ~1-3 s a test on a busy 2-core machine, for tests that only read."""
    settings = Settings(registry=shared_registry, admin_token=TOKEN, refresh_seconds=0.2)
    with open_client(settings) as c:
        yield c


@pytest.fixture(scope="module")
def reading_server(shared_registry: Path) -> Iterator[str]:
    """``server`` (real uvicorn, same settings) started once per module, as ``reader``."""
    settings = Settings(registry=shared_registry, admin_token=TOKEN, refresh_seconds=0.2)
    with running_server(settings) as url:
        yield url


# -------------------------------------------- Chromium, for the dashboard's browser tests
@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary; skipped when missing on a user's machine, a failure under CI."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    reason = "no Chromium on PATH (Debian: apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run the dashboard tests in a real browser")
    pytest.skip(reason)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: ``$MANYMODELS_SCREENSHOTS`` (kept by CI) or the test's tmp dir."""
    where = Path(os.environ.get("MANYMODELS_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where
