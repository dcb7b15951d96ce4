"""``serve --replicas``: what the command hands the replicas (``serving.serve_run``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from manymodels.registry import Registry
from serving.replaced import RegistryFileWatch
from serving.serve_run import for_replicas
from serving.settings import Settings


def test_replicas_watch_a_registry_named_by_its_symlink(
    registry_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --replicas 2 --registry cur`` (``cur -> reg-a``), run from the directory that
    holds ``cur``: the command resolved the path for the replicas, so each watched
    ``reg-a/registry.db`` and a swap of ``cur`` went unsaid (``/readyz`` 200 from reg-a), as
    the plain router had before 3ecbf37. Now the path stays the symlink, made absolute: a
    replica, whose working directory is not the command's, opens it and says the swap."""
    other = Path(shutil.copytree(registry_path, tmp_path / "reg-b"))
    current = tmp_path / "cur"
    current.symlink_to(registry_path, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    registry = for_replicas(Settings(registry=Path("cur"))).registry
    assert registry.is_absolute() and registry.is_symlink(), registry
    monkeypatch.chdir("/")  # a replica's working directory
    with Registry.open(registry) as reg:
        watch = RegistryFileWatch(reg.db_url, reg.root)  # as each replica's router does
        assert watch.follow() is None
        fresh = tmp_path / "cur.new"  # ln -sfn reg-b cur.new && mv -T cur.new cur
        fresh.symlink_to(other, target_is_directory=True)
        os.replace(fresh, current)
        why = watch.follow()
    assert why is not None and why.startswith(
        "the registry's database file registry.db was replaced since the router opened it"
    ), why


def test_replicas_open_a_relative_registry_db_and_artifacts_from_any_directory(
    registry_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --ray-serve --registry-db sqlite:///reg/registry.db --artifacts reg/artifacts``:
    the command made only ``--registry`` absolute for the replicas, so a replica in another
    working directory opened ``reg/registry.db`` there ("unable to open database file", or
    another registry's). Now both are absolute, and a replica opens the registry named."""
    shutil.copytree(registry_path, tmp_path / "reg")
    monkeypatch.chdir(tmp_path)
    given = Settings(
        registry=Path("reg"), registry_db="sqlite:///reg/registry.db", artifacts="reg/artifacts"
    )
    settings = for_replicas(given)
    monkeypatch.chdir("/")  # a replica's working directory
    with (
        Registry.open(
            settings.registry, db_url=settings.registry_db, artifacts=settings.artifacts
        ) as reg,
        Registry.open(registry_path) as original,
    ):
        assert reg.list_partitions() == original.list_partitions()
        key = original.list_partitions()[0].key
        assert reg.load_model(key).version == original.load_model(key).version  # its artifacts
    s3 = Settings(
        registry=Path("reg"),
        registry_db="postgresql+psycopg://u:p%40ss@db/reg",
        artifacts="s3://b/p",
    )
    assert for_replicas(s3).registry_db == s3.registry_db  # URLs as given
    assert for_replicas(s3).artifacts == s3.artifacts


def test_replicas_get_a_registry_under_home_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MANYMODELS_REGISTRY='~/reg'`` (or ``--registry '~/reg'``, quoted) with
    ``--ray-serve``: the plain router opens ``$HOME/reg``, the replicas were handed
    ``<cwd>/~/reg``, a registry no one trained."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    registry = for_replicas(Settings(registry=Path("~/reg"))).registry
    assert registry == tmp_path / "home" / "reg", registry
