"""The scoring routes' query options (serving/routes/options.py): read without FastAPI's
per-parameter machinery, yet documented, validated and answered as FastAPI would."""

from __future__ import annotations

from typing import Any

import pytest
from routerkit import KEY, feature_rows

PREDICT = f"/v1/partitions/{KEY}/predict"
BATCH = "/v1/predict"
SCORE_OPTIONS = {"probabilities", "fallback", "threshold", "levels"}


@pytest.fixture
def client(reader: Any) -> Any:
    """The module's one router (``reader``), for every test here: each only scores, reads
    metadata or is refused, so none changes what the next sees (a router and a registry copy
    per test were ~1 s each, 20 times)."""
    return reader


def _parameters(client: Any, path: str) -> dict[str, dict[str, Any]]:
    op = client.get("/openapi.json").json()["paths"][path]["post"]
    return {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}


def test_the_openapi_document_lists_each_option_with_its_bounds(client: Any) -> None:
    per_key = _parameters(client, "/v1/partitions/{key}/predict")
    assert set(per_key) == SCORE_OPTIONS | {"version", "alias"}
    assert set(_parameters(client, BATCH)) == SCORE_OPTIONS
    assert not any(p["required"] for p in per_key.values())
    version = per_key["version"]["schema"]["anyOf"][0]
    assert version["type"] == "integer" and version["minimum"] == 1
    threshold = per_key["threshold"]["schema"]["anyOf"][0]
    assert (threshold["minimum"], threshold["maximum"]) == (0, 1)
    assert "fallback" in per_key["fallback"]["description"].lower()


@pytest.mark.parametrize("url", [PREDICT, BATCH])
@pytest.mark.parametrize(
    ("name", "value"),
    [("threshold", "2"), ("threshold", "x"), ("probabilities", "maybe"), ("levels", "9" * 201)],
)
def test_a_bad_option_is_a_422_naming_it(client: Any, url: str, name: str, value: str) -> None:
    rows = feature_rows(1) if url == PREDICT else [{"store": 1, "brand": "x", **feature_rows(1)[0]}]
    r = client.post(url, params={name: value}, json={"rows": rows})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["query", name], error


@pytest.mark.parametrize(("name", "value"), [("version", "0"), ("alias", "no spaces")])
def test_a_bad_version_or_alias_is_a_422_naming_it(client: Any, name: str, value: str) -> None:
    r = client.post(PREDICT, params={name: value}, json={"rows": feature_rows(1)})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", name]


def test_options_given_as_their_defaults_answer_as_none_given(client: Any) -> None:
    body = {"rows": feature_rows(3)}
    plain = client.post(PREDICT, json=body)
    spelt = client.post(PREDICT, params={"probabilities": "false", "fallback": "true"}, json=body)
    assert plain.status_code == spelt.status_code == 200, (plain.text, spelt.text)
    assert plain.json() == spelt.json()


def test_options_are_read_from_the_query_string(client: Any) -> None:
    """``?fallback=false`` turns an unknown key into a 404; without it the fallback answers."""
    unknown = PREDICT.replace(KEY, "store=999,brand=nope")
    assert client.post(unknown, json={"rows": feature_rows(1)}).status_code == 200
    refused = client.post(unknown, params={"fallback": "0"}, json={"rows": feature_rows(1)})
    assert refused.status_code == 404, refused.text


@pytest.mark.parametrize("url", [PREDICT, BATCH])
def test_an_option_given_twice_is_a_422_naming_it(client: Any, url: str) -> None:
    """``?fallback=false&fallback=true`` cannot say which was meant: not the last one taken."""
    rows = feature_rows(1) if url == PREDICT else [{"store": 1, "brand": "x", **feature_rows(1)[0]}]
    r = client.post(url, params=[("fallback", "false"), ("fallback", "true")], json={"rows": rows})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["query", "fallback"] and "given 2 times" in error["msg"]
    other = client.post(url, params=[("utm", "a"), ("utm", "b")], json={"rows": rows})
    assert other.status_code == 422, other.text  # not an option: refused (serving.query)
    assert [e["loc"] for e in other.json()["detail"]] == [["query", "utm"]]


@pytest.mark.parametrize(
    ("path", "name", "values"),
    [
        (f"/v1/partitions/{KEY}/explain", "version", ["1", "1"]),
        ("/v1/monitor", "sort", ["drift", "age"]),
        ("/v1/monitor", "limit", ["1", "2"]),
        ("/v1/partitions", "limit", ["1", "2"]),
        ("/v1/runs", "limit", ["1", "2"]),
    ],
)
def test_a_reading_routes_option_given_twice_is_a_422(
    client: Any, path: str, name: str, values: list[str]
) -> None:
    """FastAPI's declared parameters took a repeated one's last value (``?sort=drift&sort=age``
    sorted by age); a list parameter (``/v1/failures?status=…``) may still repeat."""
    r = client.get(path, params=[(name, v) for v in values])
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["query", name] and "given 2 times" in error["msg"]
    assert client.get(path, params=[(name, values[0])]).is_success
    other = client.get(path, params=[(name, values[0]), ("utm", "a"), ("utm", "b")])
    assert other.status_code == 422, other.text  # not an option: refused (serving.query)
    listed = client.get("/v1/failures", params=[("status", "failed"), ("status", "skipped")])
    assert listed.status_code == 200, listed.text
