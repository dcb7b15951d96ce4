"""Local paths reach only requests that carry the admin token: a run's data source in the
partition detail, and error messages naming the artifact directory. Others see each path's
last component."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from routerkit import KEY, SALES_SPEC, TOKEN, admin, feature_rows, open_client, sales

from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.redact import redact_source, redact_text
from serving.settings import Settings

WITHOUT_TOKEN = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]


@pytest.fixture(scope="module")
def trained_from_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry whose run trained on a CSV file in a directory nobody should learn of."""
    base = tmp_path_factory.mktemp("paths")
    data = base / "private-dir" / "sales.csv"
    data.parent.mkdir()
    sales().to_csv(data, index=False)
    with Registry(base / "registry") as reg:
        train(SALES_SPEC, data, reg, backend="local")
    return base


@pytest.mark.parametrize("headers", WITHOUT_TOKEN)
def test_a_data_source_path_is_its_file_name_without_the_token(
    trained_from_file: Path, headers: dict[str, str]
) -> None:
    settings = Settings(registry=trained_from_file / "registry", admin_token=TOKEN)
    with open_client(settings) as client:
        r = client.get(f"/v1/partitions/{KEY}", headers=headers)
    assert r.status_code == 200, r.text  # a public route: a wrong token is not a 401
    assert [run["data_source"] for run in r.json()["runs"]] == ["sales.csv"]
    assert "private-dir" not in r.text and str(trained_from_file) not in r.text


def test_a_data_source_path_is_shown_with_the_token(trained_from_file: Path) -> None:
    settings = Settings(registry=trained_from_file / "registry", admin_token=TOKEN)
    with open_client(settings) as client:
        r = client.get(f"/v1/partitions/{KEY}", headers=admin())
    assert r.status_code == 200, r.text
    csv = trained_from_file / "private-dir" / "sales.csv"
    assert [run["data_source"] for run in r.json()["runs"]] == [str(csv)]


def test_a_router_without_a_token_shows_nobody_paths(trained_from_file: Path) -> None:
    with open_client(Settings(registry=trained_from_file / "registry")) as client:
        r = client.get(f"/v1/partitions/{KEY}", headers=admin())
    assert [run["data_source"] for run in r.json()["runs"]] == ["sales.csv"]


@pytest.fixture
def unreadable_artifact(registry_path: Path) -> Iterator[Path]:
    """KEY's artifact replaced by a directory: reading it fails with the artifact directory
    in the message (a 500), unlike a missing or tampered file, which the router words itself."""
    with Registry.open(registry_path) as reg:
        path = reg.artifacts.path(reg.get_version(KEY).artifact_sha256)  # type: ignore[attr-defined]
    path.unlink()
    path.mkdir()
    yield registry_path
    shutil.rmtree(path)


@pytest.mark.parametrize("relative", [False, True])
def test_an_error_naming_the_artifact_directory_is_redacted_without_the_token(
    unreadable_artifact: Path, relative: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = unreadable_artifact
    if relative:  # `manymodels serve --registry mmregistry`: the message names a relative path
        monkeypatch.chdir(registry.parent)
        registry = Path(registry.name)
    with open_client(Settings(registry=registry, admin_token=TOKEN)) as client:
        url = f"/v1/partitions/{KEY}/predict"
        hidden = client.post(url, json={"rows": feature_rows(1)})
        shown = client.post(url, json={"rows": feature_rows(1)}, headers=admin())
    assert hidden.status_code == shown.status_code == 500, hidden.text
    artifacts = str(registry / "artifacts")
    assert artifacts in shown.json()["detail"]
    detail = hidden.json()["detail"]
    assert artifacts not in detail and str(unreadable_artifact) not in detail
    assert "artifacts" in detail  # the last component stays: the message still reads


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("/srv/data/2024/sales.csv", "sales.csv"),
        ("data/sales.parquet/", "sales.parquet"),
        ("C:\\Users\\me\\sales.csv", "sales.csv"),
        ("<DataFrame>", "<DataFrame>"),
        ("artifact:" + "ab" * 32, "artifact:" + "ab" * 32),
    ],
)
def test_data_sources_keep_their_last_component(source: str, shown: str) -> None:
    assert redact_source(source) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "cannot read artifact ab12 from /srv/mm/registry/artifacts: Is a directory",
            "cannot read artifact ab12 from artifacts: Is a directory",
        ),
        (
            "registry database unavailable: sqlite:////srv/mm/registry/registry.db.",
            "registry database unavailable: registry.db.",
        ),
        ("[Errno 13] Permission denied: '~/mm/x.tmp'", "[Errno 13] Permission denied: 'x.tmp'"),
    ],
)
def test_paths_in_messages_keep_their_last_component(text: str, shown: str) -> None:
    assert redact_text(text) == shown


def test_keys_values_and_fractions_are_not_paths() -> None:
    text = "no partition 'store=1,brand=a%2Fb' ('a/b'), 1/2 of rows, n/a"
    assert redact_text(text) == text
