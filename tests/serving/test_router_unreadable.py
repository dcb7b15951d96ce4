"""An artifact file the router cannot read (a directory in its place, EIO, permissions) is a
500 like any model not served, and like them it names the partition and version: the store's
own message names only the artifact's sha256 and directory, so the body said neither which
partition failed nor which version (the OpenAPI 500 promises both)."""

from __future__ import annotations

from pathlib import Path

from routerkit import KEY, feature_rows, open_client

from manymodels.registry import Registry
from serving.settings import Settings


def test_an_unreadable_artifact_is_a_500_naming_partition_and_version(
    registry_path: Path,
) -> None:
    with Registry.open(registry_path) as reg:
        path = reg.artifacts.path(reg.get_version(KEY).artifact_sha256)  # type: ignore[attr-defined]
    path.unlink()
    path.mkdir()  # a directory in the way: reading it is an OSError, not a missing file
    with open_client(Settings(registry=registry_path)) as client:
        one = client.post(f"/v1/partitions/{KEY}/predict", json={"rows": feature_rows(1)})
    assert one.status_code == 500, one.text
    detail = one.json()["detail"]
    assert detail.startswith(f"the artifact of partition '{KEY}' version 1 cannot be read ("), (
        detail
    )
    assert "IsADirectoryError" in detail and detail.endswith("; model not served"), detail
