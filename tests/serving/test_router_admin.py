"""Admin endpoints (promote, rollback) and browsing, through ``TestClient``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from routerkit import KEY, SLASH_KEY, TWO_VERSIONS, admin, feature_rows, open_client

from manymodels.registry import Registry
from serving.settings import Settings

CANDIDATE = TWO_VERSIONS[0]


def version_served(client: Any, key: str) -> int:
    r = client.post(f"/v1/partitions/{key}/predict", json={"rows": feature_rows(1)})
    assert r.status_code == 200, r.text
    return int(r.json()["version"])


def test_admin_disabled_without_a_token(registry_path: Path) -> None:
    with open_client(Settings(registry=registry_path)) as client:
        for headers in ({}, admin()):
            r = client.post(
                f"/v1/partitions/{CANDIDATE}/promote", json={"version": 2}, headers=headers
            )
            assert r.status_code == 403
            assert "disabled" in r.json()["detail"]
        assert client.post(f"/v1/partitions/{CANDIDATE}/rollback").status_code == 403


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}, {"Authorization": ""}],
)
def test_wrong_or_missing_token_is_401(client: Any, headers: dict[str, str]) -> None:
    r = client.post(f"/v1/partitions/{CANDIDATE}/promote", json={"version": 2}, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert version_served(client, CANDIDATE) == 1


def test_promote_is_served_at_once_and_recorded(client: Any, registry_path: Path) -> None:
    assert version_served(client, CANDIDATE) == 1
    r = client.post(
        f"/v1/partitions/{CANDIDATE}/promote",
        json={"version": 2, "reason": "better MAE"},
        headers=admin(),
    )
    assert r.status_code == 200, r.text
    move = r.json()
    assert (move["from_version"], move["to_version"], move["reason"]) == (1, 2, "better MAE")
    assert version_served(client, CANDIDATE) == 2
    with Registry.open(registry_path) as reg:
        assert reg.get_version(CANDIDATE).version == 2
    again = client.post(f"/v1/partitions/{CANDIDATE}/promote", json={"version": 2}, headers=admin())
    assert again.status_code == 200 and again.json()["at"] == move["at"]  # idempotent


def test_promoting_the_version_served_says_nothing_moved(client: Any) -> None:
    """Answered with the move that first put it there ("from_version": null, "first
    version") and logged as a promotion, as if production had just moved."""
    first = client.post(f"/v1/partitions/{KEY}/promote", json={"version": 1}, headers=admin())
    assert first.status_code == 200, first.text
    assert first.json()["moved"] is False and first.json()["to_version"] == 1
    moved = client.post(f"/v1/partitions/{CANDIDATE}/promote", json={"version": 2}, headers=admin())
    assert moved.json()["moved"] is True and moved.json()["from_version"] == 1


def test_rollback_returns_to_the_previous_version(client: Any) -> None:
    r = client.post(f"/v1/partitions/{CANDIDATE}/rollback", headers=admin())
    assert r.status_code == 409  # never moved since its first version
    client.post(f"/v1/partitions/{CANDIDATE}/promote", json={"version": 2}, headers=admin())
    r = client.post(f"/v1/partitions/{CANDIDATE}/rollback", headers=admin())
    assert r.status_code == 200, r.text
    assert (r.json()["from_version"], r.json()["to_version"]) == (2, 1)
    assert version_served(client, CANDIDATE) == 1


def test_admin_errors_are_json(client: Any) -> None:
    unknown = client.post(
        "/v1/partitions/store=9,brand=x/promote", json={"version": 1}, headers=admin()
    )
    assert unknown.status_code == 404 and "store=9,brand=x" in unknown.json()["detail"]
    no_version = client.post(f"/v1/partitions/{KEY}/promote", json={"version": 7}, headers=admin())
    assert no_version.status_code == 404
    bad_body = client.post(f"/v1/partitions/{KEY}/promote", json={"version": 0}, headers=admin())
    assert bad_body.status_code == 422


def test_list_partitions_pages_by_key(client: Any) -> None:
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 4} | ({"after": after} if after else {})
        page = client.get("/v1/partitions", params=params).json()
        seen += [p["partition"] for p in page["partitions"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 11  # 10 + fallback
    assert KEY in seen and SLASH_KEY in seen


def test_partition_detail_has_versions_and_lineage(client: Any) -> None:
    client.post(f"/v1/partitions/{CANDIDATE}/promote", json={"version": 2}, headers=admin())
    r = client.get(f"/v1/partitions/{CANDIDATE}")
    assert r.status_code == 200, r.text
    d = r.json()
    assert [v["version"] for v in d["versions"]] == [2, 1]
    assert d["aliases"]["production"] == 2 and d["serving"]["version"] == 2
    assert len(d["runs"]) == 2 and {v["run_id"] for v in d["versions"]} == {
        run["run_id"] for run in d["runs"]
    }
    assert all(v["data_fingerprint"] and v["artifact_sha256"] for v in d["versions"])
    assert [m["reason"] for m in d["alias_history"] if m["alias"] == "production"] == [
        "first version",
        "promoted via the router",
    ]
    slash = client.get(f"/v1/partitions/{SLASH_KEY}")
    assert (
        slash.status_code == 200 and slash.json()["key_values"]["brand"] == "dominick's/own label"
    )
    missing = client.get("/v1/partitions/store=9,brand=x")
    assert missing.status_code == 404 and "store=9,brand=x" in missing.json()["detail"]


def test_openapi_documents_the_routes(client: Any) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/partitions/{key}/predict",
        "/v1/predict",
        "/v1/partitions",
        "/v1/partitions/{key}",
        "/v1/partitions/{key}/promote",
        "/v1/partitions/{key}/rollback",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(paths)
    assert client.get("/docs").status_code == 200
