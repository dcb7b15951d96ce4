"""The S3 artifact store's client settings (``manymodels.s3_client``): the defaults, and a user's
settings winning over them where s3fs and botocore users set them. What they do to a server that
stops or freezes: ``tests/test_artifacts_s3_outage.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from manymodels.s3_client import (
    ATTEMPTS,
    CONNECT_TIMEOUT_SECONDS,
    READ_TIMEOUT_SECONDS,
    configured,
    storage_options,
)

pytest.importorskip("s3fs")


@pytest.fixture(autouse=True)
def no_user_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import fsspec.config

    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    for protocol in ("s3", "s3a"):
        monkeypatch.delitem(fsspec.config.conf, protocol, raising=False)


def test_the_defaults_bound_each_attempt_and_their_number() -> None:
    options = storage_options("s3://bucket/prefix")
    assert options["config_kwargs"] == {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "read_timeout": READ_TIMEOUT_SECONDS,
        "retries": {"total_max_attempts": ATTEMPTS},
    }
    assert storage_options("memory://x") == {} and storage_options("gs://b/p") == {}


def test_fsspec_settings_win_key_by_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """``FSSPEC_S3_CONFIG_KWARGS`` (or a file in ``~/.config/fsspec``): what s3fs users set."""
    import fsspec.config

    given = {"read_timeout": 60, "retries": {"max_attempts": 9, "mode": "adaptive"}}
    monkeypatch.setitem(fsspec.config.conf, "s3", {"config_kwargs": given})
    assert storage_options("s3://bucket/prefix")["config_kwargs"] == {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS, **given,
    }  # fmt: skip


def test_aws_max_attempts_is_left_to_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``retries`` of ours would override ``AWS_MAX_ATTEMPTS`` (botocore gives a client's
    ``Config`` precedence over the environment)."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")
    assert "retries" not in storage_options("s3://bucket/prefix")["config_kwargs"]


def test_s3fs_own_retry_loop_is_off() -> None:
    """(Its PUTs without ``Expect: 100-continue``: shown by a write to a frozen server.)"""
    import fsspec
    import s3fs

    fs = configured(s3fs.S3FileSystem(skip_instance_cache=True, **storage_options("s3://b/p")))
    assert fs.retries == 1  # botocore's attempts only, not 5 of them
    memory = fsspec.filesystem("memory")
    assert configured(memory) is memory


def test_a_config_that_is_not_json_is_named_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``FSSPEC_S3_CONFIG_KWARGS`` with a brace missing, as docs/deployment.md §4's example
    typed by hand may be: fsspec keeps it as text, and ``train`` failed with "cannot list the
    artifacts in s3://…: 'str' object has no attribute 'copy'", nothing saying which setting.
    Now one line names it and what it should be, before anything is written. fsspec reads the
    variable once, when imported: read here by the function it calls then (``set_conf_env``),
    and the command run by its typer app in this process (a process costs ~3 s of imports)."""
    import fsspec.config
    from factories import sales_files, sales_toml
    from typer.testing import CliRunner

    from manymodels.cli import app

    spec, data, root = sales_files(tmp_path, sales_toml("s3-config"))
    monkeypatch.setitem(fsspec.config.conf, "s3", {})
    fsspec.config.set_conf_env(
        fsspec.config.conf, {"FSSPEC_S3_CONFIG_KWARGS": '{"connect_timeout": 10,'}
    )
    for name, value in (("AWS_ENDPOINT_URL", "http://127.0.0.1:9"), ("AWS_ACCESS_KEY_ID", "x"),
                        ("AWS_SECRET_ACCESS_KEY", "x")):  # fmt: skip
        monkeypatch.setenv(name, value)
    done = CliRunner().invoke(
        app, ["train", str(spec), str(data), "--registry", str(root),
              "--artifacts", "s3://models/prod", "--backend", "local"],
    )  # fmt: skip
    assert done.exit_code == 1, done.output
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line == (
        "error: cannot open the artifact store s3://models/prod: fsspec's s3 config_kwargs "
        "(FSSPEC_S3_CONFIG_KWARGS, or a file in ~/.config/fsspec/) is '{\"connect_timeout\": 10,', "
        "not a JSON object of botocore Config options (such as '{\"read_timeout\": 60}')"
    ), line
    assert not root.exists()  # no registry made over a store it cannot open
