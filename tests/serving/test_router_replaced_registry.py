"""A registry file replaced under a running router (a backup copied over ``registry.db``, a
``mv new.db registry.db``): SQLite kept the old file open, and the router served the old
file's models forever without a word (``serving.replaced``)."""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from routerkit import TWO_VERSIONS, feature_rows

from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings

# slow (CI; the default run's 10 minutes): a registry replaced under a running router
pytestmark = pytest.mark.slow


def served_version(base: str, key: str) -> int:
    r = httpx.post(f"{base}/v1/partitions/{key}/predict", json={"rows": feature_rows(2)})
    assert r.status_code == 200, r.text
    return int(r.json()["version"])


def test_a_registry_file_replaced_under_the_router_is_said_in_readiness(
    registry_path: Path, tmp_path: Path
) -> None:
    """The router still serves what it opened (a restart serves the new file), but no longer
    silently: ``/readyz`` answers 503 saying to restart it, ``/v2/health/ready`` 400, until
    the file it opened is back at its path."""
    key = TWO_VERSIONS[0]
    other = Path(shutil.copytree(registry_path, tmp_path / "other"))
    with Registry(other) as reg:
        reg.promote(key, 2)
    db, aside, new = registry_path / "registry.db", tmp_path / "aside.db", tmp_path / "new.db"
    os.link(other / "registry.db", new)
    settings = Settings(registry=registry_path, refresh_seconds=0.1)
    with running_server(settings) as base:
        assert httpx.get(f"{base}/readyz").status_code == 200
        os.link(db, aside)  # the opened file, to put back
        os.replace(other / "registry.db", db)
        ready = wait_for_status(f"{base}/readyz", 503)
        assert ready.json() == {
            "detail": "the registry's database file registry.db was replaced since the router "
            "opened it: it answers only from the old file, on the database connections it has "
            "open, and refuses what needs another; restart the router to serve the new file"
        }
        assert "Retry-After" not in ready.headers  # it does not end by itself
        assert httpx.get(f"{base}/v2/health/ready").status_code == 400
        assert served_version(base, key) == 1  # what it opened, as before
        assert production_versions(base, key) <= {1, "refused"}  # not a mix of both files
        (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
        os.replace(tmp_path / "junk.db", db)  # its ping may fail: the file is still the cause
        assert wait_for_status(f"{base}/readyz", 503).json() == ready.json()
        os.replace(aside, db)
        assert wait_for_status(f"{base}/readyz", 200).json()["status"] == "ready"
        os.replace(db, aside)
        gone = wait_for_status(f"{base}/readyz", 503).json()["detail"]
        assert gone.startswith("the registry's database file registry.db was moved or deleted")
    os.replace(new, db)
    with running_server(settings) as base:  # a restart serves the new file, as it says
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert served_version(base, key) == 2


def production_versions(base: str, key: str, n: int = 24) -> set[int | str]:
    """``n`` concurrent ``GET /v1/partitions/<key>``: the production versions they read from
    the database, and ``"refused"`` for each 503 saying the file is not the one opened. So
    many at once take more connections than the pool had open: the pool opened new ones,
    which read the new file (5 of 12 did), beside the old ones."""

    def read(_: int) -> int | str:
        r = httpx.get(f"{base}/v1/partitions/{key}", timeout=30)
        if r.status_code == 503:
            assert r.json()["detail"].startswith(
                "the registry's database file registry.db was replaced, moved or deleted since "
                "the router opened it"
            ), r.text
            return "refused"
        assert r.status_code == 200, r.text
        return int(r.json()["aliases"]["production"])

    with ThreadPoolExecutor(n) as pool:
        return set(pool.map(read, range(n)))


def wait_for_status(url: str, status: int, timeout: float = 10.0) -> httpx.Response:
    """``GET url`` until it answers ``status`` (a refresh or two), or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while (r := httpx.get(url)).status_code != status and time.monotonic() < deadline:
        time.sleep(0.05)
    return r


def test_a_registry_swapped_in_by_its_symlink_is_said_in_readiness(
    registry_path: Path, tmp_path: Path
) -> None:
    """``--registry cur`` where ``cur -> reg-a``, then ``ln -sfn reg-b cur`` (the atomic swap
    of a deploy): the router opened ``reg-a/registry.db`` by its resolved path, which did not
    change, so ``/readyz`` said 200 while it served reg-a's models. The path watched is the one
    named, so the swap is a replaced file, and swapping back makes it ready again."""
    key = TWO_VERSIONS[0]
    other = Path(shutil.copytree(registry_path, tmp_path / "reg-b"))
    with Registry(other) as reg:
        reg.promote(key, 2)
    current = tmp_path / "cur"
    current.symlink_to(registry_path, target_is_directory=True)
    with running_server(Settings(registry=current, refresh_seconds=0.1)) as base:
        assert httpx.get(f"{base}/readyz").status_code == 200
        swap(current, other)
        ready = wait_for_status(f"{base}/readyz", 503)
        assert ready.json()["detail"].startswith(
            "the registry's database file registry.db was replaced since the router opened it"
        )
        assert httpx.get(f"{base}/v2/health/ready").status_code == 400
        assert served_version(base, key) == 1  # reg-a's, as it says
        swap(current, registry_path)
        assert wait_for_status(f"{base}/readyz", 200).json()["status"] == "ready"
    with running_server(Settings(registry=current, refresh_seconds=0.1)) as base:
        assert httpx.get(f"{base}/readyz").status_code == 200  # a registry by a symlink: ready


def swap(link: Path, target: Path) -> None:
    """Point the symlink ``link`` at ``target`` in one rename, as ``ln -sfn`` then ``mv -T``."""
    fresh = link.with_name(link.name + ".new")
    fresh.symlink_to(target, target_is_directory=True)
    os.replace(fresh, link)


def test_after_a_symlink_swap_the_router_loads_models_from_the_registry_it_opened(
    registry_path: Path, tmp_path: Path
) -> None:
    """The router answers from the database it opened (``reg-a``'s) after ``ln -sfn reg-b
    cur``, and so must its models come from reg-a's artifacts: it read them through ``cur``
    and answered 409 "the artifact … is missing from the artifact store" for every model not
    yet loaded, where reg-b (a registry of its own store) lacked it."""
    key = TWO_VERSIONS[0]
    other = tmp_path / "reg-b"
    (other / "artifacts").mkdir(parents=True)
    shutil.copy(registry_path / "registry.db", other / "registry.db")  # its store is empty
    current = tmp_path / "cur"
    current.symlink_to(registry_path, target_is_directory=True)
    with running_server(Settings(registry=current, refresh_seconds=0.1)) as base:
        swap(current, other)
        wait_for_status(f"{base}/readyz", 503)
        assert served_version(base, key) == 1  # not loaded before the swap: read from reg-a
