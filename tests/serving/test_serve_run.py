"""``serve --replicas``: what the command hands the replicas (``serving.serve_run``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import make_url

from manymodels.registry import Registry
from serving.replaced import RegistryFileWatch
from serving.serve_errors import start_error
from serving.serve_run import PASSWORD_ENV, for_replicas, password_kept_out
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


@pytest.mark.slow  # imports Ray Serve (seconds on 2 cores), whose pydantic models warn
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://mm:s3cret%21pw@db.internal/reg?sslmode=require",
        "postgresql+psycopg://mm@db.internal/reg?sslmode=require&password=s3cret%21pw",
    ],
)
def test_the_deployment_serve_stores_holds_no_database_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """``serve --ray-serve --registry-db postgresql://mm:PASSWORD@…``: the replicas' settings,
    the URL with its password, were pickled into the deployment Serve stores on the cluster
    and shows (``serve`` commands, the dashboard, a replica's failure). Now the URL the
    replicas get names none; the password reaches them by ``PGPASSWORD``, which libpq reads:
    inherited from the command on an embedded Ray, the replicas' runtime environment on a
    cluster."""
    from ray import cloudpickle

    from serving.ray_serve import application

    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    settings, env = password_kept_out(for_replicas(Settings(registry=tmp_path, registry_db=url)))
    assert env == {PASSWORD_ENV: "s3cret!pw"}
    assert settings.registry_db == "postgresql+psycopg://mm@db.internal/reg?sslmode=require"
    for app in (application(settings, replicas=2), application(settings, replicas=2, env=env)):
        deployment = app._bound_deployment
        shipped = cloudpickle.dumps((deployment.func_or_class, deployment.init_args))
        assert b"s3cret" not in shipped  # what Serve stores and replicas unpickle
    config = application(settings, replicas=2, env=env)._bound_deployment.ray_actor_options
    assert config["runtime_env"]["env_vars"] == env  # a cluster's replicas get it there
    plain = Settings(registry=tmp_path, registry_db="postgresql+psycopg://mm@db/reg")
    assert password_kept_out(plain) == (plain, {})  # none given: nothing to carry


def test_the_replicas_url_keeps_the_connection_settings_that_are_no_password(
    tmp_path: Path,
) -> None:
    """``?sslpassword=`` (the passphrase of the client key ``sslkey``, which libpq reads from
    no variable) was dropped from the replicas' URL with the password, as every query key
    naming a password was, though only ``password`` rode in ``PGPASSWORD``: the replicas could
    not open the key, and no replica connected where the whole URL had. Only what
    ``PGPASSWORD`` carries is left out."""
    url = (
        "postgresql+psycopg://mm:s3cret@db.internal/reg"
        "?sslmode=verify-full&sslkey=/k/mm.key&sslpassword=keyphrase"
    )
    settings, env = password_kept_out(Settings(registry=tmp_path, registry_db=url))
    assert env == {PASSWORD_ENV: "s3cret"}
    shipped = make_url(settings.registry_db or "")
    assert shipped.password is None
    assert dict(shipped.query) == {
        "sslmode": "verify-full", "sslkey": "/k/mm.key", "sslpassword": "keyphrase"
    }  # fmt: skip


def test_serves_own_start_bound_says_what_to_try() -> None:
    """``serve.start``'s own bound on its proxy (``HTTP_PROXY_TIMEOUT``, hard-coded 60 s),
    raised as Ray 2.60 raises it: one line naming the bound, the loaded host and Serve's
    logs; an exception with an empty message still says what it was."""
    bound = TimeoutError("HTTP proxies not available after 60s.")
    assert start_error(bound, "/tmp/ray/session_1/logs") == (
        "TimeoutError: HTTP proxies not available after 60s. (on a loaded host Serve's "
        "processes start slowly: try again when it is quieter; Serve's logs: "
        "/tmp/ray/session_1/logs/serve/)"
    )
    assert start_error(ValueError(), None) == "ValueError: (no message) (Serve's logs: in Ray's)"
