"""HTTP conformance through the app (``TestClient``): every integer input is bounded (a 422,
never a 5xx), 405 answers name the methods the route has, and unreadable bodies get the
status the OpenAPI document declares."""

from __future__ import annotations

from typing import Any

import pytest
from routerkit import KEY, admin, feature_rows

from manymodels.cli.options import MAX_INT
from serving.schemas import MAX_VERSION

PREDICT = f"/v1/partitions/{KEY}/predict"

# (method, url, where the integer goes, its name, whether the route needs the admin token)
INTEGER_INPUTS = [
    ("POST", PREDICT, "query", "version", False),
    ("POST", f"/v1/partitions/{KEY}/promote", "body", "version", True),
    ("POST", f"/v1/partitions/{KEY}/forecast", "body", "horizon", False),
    ("GET", "/v1/partitions", "query", "limit", False),
    ("GET", "/v1/jobs", "query", "limit", True),
]


def send_integer(client: Any, method: str, url: str, where: str, name: str, value: int,
                 needs_admin: bool) -> Any:  # fmt: skip
    headers = admin() if needs_admin else {}
    if where == "query":
        body = {"rows": feature_rows(1)} if method == "POST" else None
        return client.request(method, url, params={name: str(value)}, json=body, headers=headers)
    return client.request(method, url, json={name: value}, headers=headers)


@pytest.mark.parametrize("value", [2**31, 2**63, 10**30, -(2**63) - 1])
@pytest.mark.parametrize(("method", "url", "where", "name", "needs_admin"), INTEGER_INPUTS)
def test_every_integer_input_out_of_range_is_a_422_naming_it(
    client: Any, method: str, url: str, where: str, name: str, needs_admin: bool, value: int
) -> None:
    r = send_integer(client, method, url, where, name, value, needs_admin)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == [where, name]


def test_the_largest_version_is_looked_up_not_refused(client: Any) -> None:
    """``MAX_VERSION`` itself reaches the registry: a plain 404, as for any missing version."""
    r = client.post(PREDICT, params={"version": MAX_VERSION}, json={"rows": feature_rows(1)})
    assert r.status_code == 404 and str(MAX_VERSION) in r.json()["detail"]
    r = client.post(f"/v1/partitions/{KEY}/promote", json={"version": MAX_VERSION}, headers=admin())
    assert r.status_code == 404, r.text


def test_versions_have_the_bound_the_cli_has() -> None:
    assert MAX_VERSION == MAX_INT
