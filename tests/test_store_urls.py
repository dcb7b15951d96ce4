"""An artifact store's URL read as RFC 3986 and RFC 8089 read it: a scheme in any case, and a
``file`` URL's host (``localhost`` is this machine; another is no directory here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from manymodels.artifact_stores import FsspecArtifactStore
from manymodels.artifacts import LocalArtifactStore, open_store
from manymodels.exceptions import ArtifactError


def test_a_file_url_naming_localhost_is_that_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`file://localhost/tmp/x` was the relative directory `./localhost/tmp/x`."""
    monkeypatch.chdir(tmp_path)
    where = tmp_path / "models"
    for url in (f"file://localhost{where}", f"file://LocalHost{where}", f"FILE://{where}"):
        store = open_store(url)
        assert isinstance(store, LocalArtifactStore) and store.url == str(where), url
    assert list(tmp_path.iterdir()) == []  # no ./localhost, no ./FILE:
    with pytest.raises(ArtifactError, match="names no path"):
        open_store("file://localhost")


def test_a_file_url_naming_another_host_is_refused_in_one_line(
    tmp_path: Path, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`file://otherhost/x` trained into `./otherhost/x` on whichever machine ran it: now
    one `error:` line, and nothing is made."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    monkeypatch.chdir(tmp_path)
    args = ["train", str(samples_dir / "store_sales.toml"), str(samples_dir / "store_sales.csv")]
    url = "file://otherhost/srv/models"
    result = CliRunner().invoke(app, [*args, "--registry", "reg", "--artifacts", url])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines == [
        f"error: artifact store URL '{url}' names the host 'otherhost': a file URL names a path "
        "on this machine (file:///srv/models or file://localhost/srv/models); mount the other "
        "machine's directory, or give its URL (sftp://, s3://…)"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "opened"),
    [("S3://bucket/models", "s3://bucket/models"), ("Memory://models", "memory://models")],
)
def test_a_schemes_case_does_not_matter(url: str, opened: str) -> None:
    """`S3://bucket/models` was refused as "unknown scheme 'S3://'": schemes are
    case-insensitive (RFC 3986)."""
    store = open_store(url)
    assert isinstance(store, FsspecArtifactStore) and store.url == opened
    with pytest.raises(ArtifactError, match="names no bucket"):
        open_store("S3:///models")  # an unset $BUCKET, whatever the case
