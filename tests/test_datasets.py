"""Reading a Parquet dataset (``manymodels.datasets``): what its reader says when it cannot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from factories import spec_dict

import manymodels
from manymodels.exceptions import DataError


def test_a_dataset_url_without_credentials_is_one_data_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The remote client's own errors (botocore's ``NoCredentialsError``, not an ``OSError``)
    escaped ``open_dataset``: ``manymodels train spec.toml s3://bucket/sales/`` without AWS
    credentials printed a 60-line traceback. Now a ``DataError`` naming the URL (the CLI's one
    ``error:`` line), and no registry is made."""
    pytest.importorskip("s3fs")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import fsspec

    fsspec.filesystem("s3").clear_instance_cache()  # no client made with the credentials
    url = "s3://bucket/sales/"
    said = f"^{re.escape(url)}: cannot read a Parquet dataset \\(.*credentials"
    with pytest.raises(DataError, match=said):
        manymodels.train(spec_dict(), url, tmp_path / "reg", backend="local")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url", ["memory://h32-lake/sales-typo/", "memory://h32-lake/part-9.parquet"]
)
def test_a_dataset_url_that_names_nothing_says_not_found(tmp_path: Path, url: str) -> None:
    """docs/deployment.md §6's ``train spec.toml s3://lake/sales/`` with the prefix mistyped:
    the store's ``FileNotFoundError`` says the path alone, so the line was
    "s3://lake/sales-typo/: cannot read a Parquet dataset (lake/sales-typo)", the path twice
    and no word of what is wrong (tried on a real SeaweedFS server; fsspec's memory store raises
    the same). Now it says the data is not found, as a local path's "data file not found"."""
    import fsspec

    fsspec.filesystem("memory").pipe("h32-lake/sales/part-0.parquet", b"PAR1")  # the real one
    with pytest.raises(DataError, match=f"^{re.escape(url)}: data not found "):
        manymodels.train(spec_dict(), url, tmp_path / "reg", backend="local")
    assert list(tmp_path.iterdir()) == []
