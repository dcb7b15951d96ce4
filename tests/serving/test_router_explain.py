"""GET /v1/partitions/{key}/explain: the served version's scores and weights over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from routerkit import KEY, SLASH_KEY, TWO_VERSIONS, admin, expected, feature_rows


def _by_hand(why: dict[str, Any], row: dict[str, Any]) -> float:
    coef = {t["feature"]: t["value"] for t in why["terms"]}
    return float(why["intercept"][0] + sum(coef[f] * v for f, v in row.items()))


def test_explain_gives_coefficients_that_reproduce_the_served_prediction(
    client: Any, registry_path: Any
) -> None:
    r = client.get(f"/v1/partitions/{KEY}/explain")
    assert r.status_code == 200, r.text
    why = r.json()
    assert why["key"] == KEY and why["version"] == 1 and why["kind"] == "coefficients"
    assert why["metric"] and why["naive_score"] is not None and why["candidates"]
    row = feature_rows(1)[0]
    assert _by_hand(why, row) == pytest.approx(expected(registry_path, KEY, [row])[0])


def test_a_key_with_a_slash_and_an_explicit_version(client: Any, registry_path: Any) -> None:
    assert client.get(f"/v1/partitions/{SLASH_KEY}/explain").status_code == 200
    key = TWO_VERSIONS[0]
    v1, v2 = (client.get(f"/v1/partitions/{key}/explain", params={"version": v}) for v in (1, 2))
    assert (v1.json()["version"], v2.json()["version"]) == (1, 2)
    row = feature_rows(1)[0]
    assert _by_hand(v2.json(), row) == pytest.approx(expected(registry_path, key, [row], 2)[0])


def test_a_promotion_changes_what_is_explained(client: Any) -> None:
    key = TWO_VERSIONS[1]
    assert client.get(f"/v1/partitions/{key}/explain").json()["version"] == 1
    assert client.post(f"/v1/partitions/{key}/promote", json={"version": 2},
                       headers=admin()).status_code == 200  # fmt: skip
    assert client.get(f"/v1/partitions/{key}/explain").json()["version"] == 2


def test_unknown_key_or_version_is_a_404_never_the_fallback(client: Any) -> None:
    r = client.get("/v1/partitions/store=999,brand=nope/explain")
    assert r.status_code == 404 and "store=999" in r.json()["detail"]
    assert "fallback=false" not in r.json()["detail"]  # a parameter the client never sent
    r = client.get(f"/v1/partitions/{KEY}/explain", params={"version": 99})
    assert r.status_code == 404, r.text
    assert client.get(f"/v1/partitions/{KEY}/explain", params={"version": 0}).status_code == 422
    too_big = client.get(f"/v1/partitions/{KEY}/explain", params={"version": 2**63})
    assert too_big.status_code == 422, too_big.text  # was a 503: SQLite's INTEGER overflowed
