"""Keys whose values hold a URL's own characters, over real HTTP: each reaches its own
partition on every per-key route, /v1 and V2 alike, and answers as /v1/predict does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from factories import linear_frame, open_client, spec_dict

from manymodels.keys import encode_key
from manymodels.pipeline import train
from serving.local import running_server
from serving.settings import Settings

# beside "a", "b" and "c": values ending like a route ("/explain", "/ready", "/versions/1"),
# and the characters a URL parser treats apart ('?', '#', '\', a tab, a newline)
NAMES = [
    "a",
    "a/explain",
    "a/predict",
    "b",
    "b/ready",
    "c",
    "c/versions/1",
    "q?x#y\\z\tw",
    "line\nbreak",
    "pct%2Fname",  # a value holding the text %2F (sent as %252F)
]
ROW = {"x0": 0.5, "x1": -1.0}
TOKEN = "key-paths-admin"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("keypaths") / "registry"
    df = linear_frame(len(NAMES), 30)
    df["pid"] = df["pid"].map(dict(enumerate(NAMES)))
    train(spec_dict(), df, root, backend="local")
    with running_server(Settings(registry=root, admin_token=TOKEN)) as base:
        yield base


def _v1(server: str, key: str) -> float:
    r = httpx.post(f"{server}/v1/predict", json={"rows": [{"pid": dict(NAMES_BY_KEY)[key], **ROW}]})
    assert r.status_code == 200, r.text
    (answer,) = r.json()["predictions"]
    assert answer["served_by"] == key and answer["fallback"] is False, answer
    return float(answer["prediction"])


NAMES_BY_KEY = [(encode_key([name], ["pid"]), name) for name in NAMES]


@pytest.mark.parametrize("key", [k for k, _ in NAMES_BY_KEY])
def test_every_per_key_route_reaches_its_own_partition(server: str, key: str) -> None:
    """``pid=a%2Fexplain`` answered partition ``pid=a``'s explanation; a value's ``?``, ``#``,
    ``\\`` or tab sent V2 requests to the fallback or to a 400; a newline matched no route."""
    expected = _v1(server, key)
    detail = httpx.get(f"{server}/v1/partitions/{key}")
    assert detail.status_code == 200 and detail.json()["partition"] == key, detail.text
    explained = httpx.get(f"{server}/v1/partitions/{key}/explain")
    assert explained.status_code == 200 and explained.json()["key"] == key, explained.text
    one = httpx.post(f"{server}/v1/partitions/{key}/predict", json={"rows": [ROW]})
    assert one.status_code == 200 and one.json()["partition"] == key, one.text
    assert one.json()["fallback"] is False and one.json()["predictions"] == [expected]
    meta = httpx.get(f"{server}/v2/models/{key}")
    assert meta.status_code == 200 and meta.json()["name"] == key, meta.text
    assert httpx.get(f"{server}/v2/models/{key}/ready").status_code == 200
    inputs = [
        {"name": name, "datatype": "FP64", "shape": [1], "data": [value]}
        for name, value in ROW.items()
    ]
    body = {"inputs": inputs, "parameters": {"fallback": False}}
    for path in (f"/v2/models/{key}/infer", f"/v2/models/{key}/versions/1/infer"):
        r = httpx.post(f"{server}{path}", json=body)
        assert r.status_code == 200, (path, r.text)
        assert r.json()["model_name"] == key and r.json()["parameters"]["served_by"] == key
        assert r.json()["outputs"][0]["data"] == [expected]


def test_a_key_value_with_a_slash_is_not_a_route_of_its_prefix(server: str) -> None:
    """A literal ``/`` still separates: ``pid=a/explain`` unencoded is partition ``a``'s
    explanation, and a V2 name with one is refused, saying how to write it."""
    r = httpx.get(f"{server}/v1/partitions/pid=a/explain")
    assert r.status_code == 200 and r.json()["key"] == "pid=a"
    refused = httpx.get(f"{server}/v2/models/pid=c/versions/1/x")
    assert refused.status_code == 400 and "percent-encode a '/'" in refused.json()["error"]


def test_a_get_of_an_action_is_a_405_not_a_missing_partition(server: str) -> None:
    """``curl …/pid=a/predict`` without ``-X POST`` said "no partition 'pid=a%2Fpredict'"."""
    for action in ("predict", "forecast", "retrain", "promote", "rollback", "actuals"):
        for tail in ("", "/"):
            r = httpx.get(f"{server}/v1/partitions/pid=a/{action}{tail}")
            assert r.status_code == 405 and r.headers["allow"] == "POST", (action, r.text)
            assert r.json() == {"detail": f"/{action} takes POST, not GET"}


def test_a_trailing_slash_after_an_action_is_not_part_of_the_key(server: str) -> None:
    """``POST …/predict/`` was a 405 ``Allow: GET`` (the detail route took ``…/predict/`` as
    the key); over real HTTP, with keys whose values end like a route, each answers as
    without the slash. A value's own trailing ``/`` (``%2F``) stays the value's."""
    inputs = [
        {"name": name, "datatype": "FP64", "shape": [1], "data": [value]}
        for name, value in ROW.items()
    ]
    for key, _ in NAMES_BY_KEY:
        expected = _v1(server, key)
        one = httpx.post(f"{server}/v1/partitions/{key}/predict/", json={"rows": [ROW]})
        assert one.status_code == 200 and one.json()["partition"] == key, (key, one.text)
        assert one.json()["predictions"] == [expected]
        r = httpx.post(f"{server}/v2/models/{key}/infer/", json={"inputs": inputs})
        assert r.status_code == 200 and r.json()["model_name"] == key, (key, r.text)
        assert r.json()["parameters"]["fallback"] is False
        explained = httpx.get(f"{server}/v1/partitions/{key}/explain/")
        assert explained.status_code == 200 and explained.json()["key"] == key, explained.text
    r = httpx.get(f"{server}/v1/partitions/{encode_key(['a/'], ['pid'])}/explain/")
    assert r.status_code == 404, r.text
    said = "(a key of this registry's columns, pid, with no version served)"
    assert r.json() == {"detail": f"no partition 'pid=a%2F' in production {said}"}


def test_a_request_routed_by_its_encoded_key_is_counted_under_its_route(server: str) -> None:
    """Routed from a copy of the request's scope, a key's ``%2F`` left the route unknown to
    the metrics and the access log: every such request was counted "unmatched"."""
    key = encode_key(["a/explain"], ["pid"])
    route = "/v1/partitions/{key:path}/predict"
    name = f'manymodels_http_requests_total{{method="POST",route="{route}",status="200"}}'

    def count() -> float:
        for line in httpx.get(f"{server}/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0

    before = count()
    assert httpx.post(f"{server}/v1/partitions/{key}/predict", json={"rows": [ROW]}).is_success
    assert count() == before + 1


def test_a_bare_value_of_the_one_key_column_reaches_its_partition(server: str) -> None:
    """In a registry keyed by one column, ``…/partitions/b/predict`` is partition ``pid=b``,
    as ``manymodels models show b`` and ``load_model("b")`` read it: the router answered it
    with the fallback model (a 200 for a partition it serves). Text that is no partition's
    value stays the fallback's, as a V2 client's model name does."""
    expected = _v1(server, "pid=b")
    one = httpx.post(f"{server}/v1/partitions/b/predict", json={"rows": [ROW]})
    assert one.status_code == 200, one.text
    assert (one.json()["partition"], one.json()["served_by"]) == ("pid=b", "pid=b")
    assert one.json()["fallback"] is False and one.json()["predictions"] == [expected]
    assert httpx.get(f"{server}/v1/partitions/b").json()["partition"] == "pid=b"
    inputs = [
        {"name": name, "datatype": "FP64", "shape": [1], "data": [value]}
        for name, value in ROW.items()
    ]
    v2 = httpx.post(f"{server}/v2/models/b/infer", json={"inputs": inputs}).json()
    assert (v2["model_name"], v2["parameters"]["served_by"]) == ("pid=b", "pid=b")
    assert v2["outputs"][0]["data"] == [expected]
    other = httpx.post(f"{server}/v1/partitions/mymodel/predict", json={"rows": [ROW]})
    assert other.status_code == 200, other.text
    assert (other.json()["partition"], other.json()["served_by"]) == ("mymodel", "__fallback__")


def test_a_bare_value_names_its_partition_where_nothing_falls_back(server: str) -> None:
    """A retired partition's bare value: ``…/c/retire`` answered 200, then ``…/c/rollback``
    (its way back) and ``…/c/predict?version=1`` were 404s calling ``c`` "not a key", though
    ``manymodels rollback c`` reads it as ``pid=c``. ``mymodel`` still answers by fallback."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    retired = httpx.post(f"{server}/v1/partitions/c/retire", json={}, headers=auth)
    assert retired.status_code == 200 and retired.json()["partition"] == "pid=c", retired.text
    try:
        one = httpx.post(f"{server}/v1/partitions/c/predict?version=1", json={"rows": [ROW]})
        assert one.status_code == 200, one.text
        assert (one.json()["partition"], one.json()["fallback"]) == ("pid=c", False)
        refused = httpx.post(
            f"{server}/v1/partitions/c/predict?fallback=false", json={"rows": [ROW]}
        )
        assert refused.status_code == 404, refused.text  # it said 'c' is "not a key"
        assert "'pid=c'" in refused.json()["detail"], refused.text
        assert "retired from v1" in refused.json()["detail"], refused.text
        detail = httpx.get(f"{server}/v1/partitions/c")  # was a 404: "not a key"
        assert detail.status_code == 200 and detail.json()["partition"] == "pid=c", detail.text
        none = httpx.post(f"{server}/v1/partitions/zz/predict?version=1", json={"rows": [ROW]})
        assert none.status_code == 404 and "pid=zz" in none.json()["detail"], none.text
    finally:  # the module's server serves it again, whatever failed above
        back = httpx.post(f"{server}/v1/partitions/c/rollback", headers=auth)
    assert back.status_code == 200, back.text
    assert (back.json()["partition"], back.json()["to_version"]) == ("pid=c", 1)
    other = httpx.post(f"{server}/v1/partitions/mymodel/predict", json={"rows": [ROW]})
    assert other.json()["served_by"] == "__fallback__", other.text


def test_a_bare_number_written_as_a_float_is_its_trained_partition(tmp_path: Path) -> None:
    """``/v1/partitions/2.0/predict`` of a registry keyed by an integer ``pid`` was the
    fallback's (a 200) while ``pid=2.0`` is partition ``pid=2``, as training wrote it."""
    root = tmp_path / "registry"
    train(spec_dict(), linear_frame(3, 30), root, backend="local")
    with open_client(Settings(registry=root)) as client:
        for text in ("2", "2.0", "pid=2.0"):
            r = client.post(f"/v1/partitions/{text}/predict", json={"rows": [ROW]})
            assert r.status_code == 200 and r.json()["served_by"] == "pid=2", (text, r.text)
