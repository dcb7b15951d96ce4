"""serving.jsonbody: the routes read bodies with pydantic-core's parser and accept and refuse
exactly what ``json.loads`` accepts and refuses, but a string that is not text (a lone
surrogate): refused, on every route with a JSON body, with a 4xx."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from routerkit import KEY, admin, open_client

from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import synthetic
from serving.jsonbody import LONE_SURROGATE, parse
from serving.settings import Settings
from serving.v2_schemas import WANTED

ACCEPTED = [
    b'{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1e400}',
    b'{"a": 123456789012345678901234567890, "b": -0.0, "c": 5e-324}',
    b'{"a": 1, "a": 2}',
    b'{"a": "\\ud83d\\ude00"}',  # a surrogate pair: text (an emoji)
    codecs.BOM_UTF8 + b'{"a": 1}',
    '{"a": "é"}'.encode("utf-16"),
    b' {"x": [1.0000000000000002, 0.1]}\n',
]
REFUSED = [b'{"a": "x\ny"}', b"[1,]", b"{'a': 1}", b"01", b'{"a": 1} x', b"nan", b"[" * 3000]


@pytest.mark.parametrize("body", ACCEPTED)
def test_a_body_reads_as_json_loads_reads_it(body: bytes) -> None:
    assert repr(parse(body)) == repr(json.loads(body))


@pytest.mark.parametrize("body", REFUSED)
def test_a_body_json_loads_refuses_is_refused_with_its_error(body: bytes) -> None:
    with pytest.raises((json.JSONDecodeError, RecursionError)) as expected:
        json.loads(body)
    with pytest.raises(expected.type):
        parse(body)


SPEC = {
    "name": "jsonbody",
    "partition_by": ["pid"],
    "target": "y",
    "features": ["x0", "x1"],
    "candidates": [{"estimator": "sklearn.linear_model.Ridge"}],
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root: Path = tmp_path_factory.mktemp("jsonbody") / "registry"
    with Registry(root) as reg:
        train(SPEC, synthetic(2, 30, n_features=2, seed=1), reg, backend="local")
    with open_client(Settings(registry=root)) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "row"),
    [
        ("/v1/predict", {"pid": 1, "x0": 0.5, "x1": -1.0}),
        ("/v1/partitions/pid=1/predict", {"x0": 0.5, "x1": -1.0}),
    ],
)
def test_the_routes_answer_as_for_the_same_json_in_any_encoding(
    client: Any, path: str, row: dict[str, Any]
) -> None:
    """The same rows as UTF-8, with a byte-order mark, or as UTF-16 (which only the standard
    library reads) give the same answer; a broken body is the usual 422 ``json_invalid``."""
    text = json.dumps({"rows": [row, row]})
    headers = {"content-type": "application/json"}
    answers = [
        client.post(path, content=body, headers=headers)
        for body in (text.encode(), codecs.BOM_UTF8 + text.encode(), text.encode("utf-16"))
    ]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    broken = client.post(path, content=text[:-1].encode(), headers=headers)
    assert broken.status_code == 422
    assert broken.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("body", [b'{"a": "\\ud800"}', b'{"rows": [{"\\udfff": 1}]}'])
def test_a_lone_surrogate_is_refused_as_no_text(body: bytes) -> None:
    json.loads(body)  # the standard library reads it …
    with pytest.raises(json.JSONDecodeError, match="lone surrogate") as refused:
        parse(body)  # … into a string no database, log or answer can encode
    assert refused.value.msg == LONE_SURROGATE


def test_every_route_with_a_json_body_answers_a_lone_surrogate_with_a_4xx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from routerkit import TOKEN, admin

    monkeypatch.setenv("MANYMODELS_ADMIN_TOKEN", TOKEN)
    root = tmp_path / "registry"
    train(SPEC, synthetic(2, 30, n_features=2, seed=1), root, backend="local")
    train(SPEC, synthetic(2, 30, n_features=2, seed=2), root, backend="local")
    lone = '"\\ud800"'
    posts = {
        "/v1/predict": f'{{"rows": [{{"pid": {lone}, "x0": 1, "x1": 2}}]}}',
        "/v1/partitions/pid=1/predict": f'{{"rows": {lone}}}',
        "/v1/partitions/pid=1/forecast": f'{{"horizon": {lone}}}',
        "/v1/partitions/pid=1/rollback": f'{{"reason": {lone}}}',
        "/v1/partitions/pid=1/promote": f'{{"version": 1, "reason": {lone}}}',
        "/v1/partitions/pid=1/actuals": f'{{"rows": [{{"x0": {lone}}}]}}',
        "/v2/models/pid=1/infer": (
            f'{{"id": {lone}, "inputs": [{{"name": "x0", "shape": [1], "datatype": "FP64", '
            '"data": [1.0]}, {"name": "x1", "shape": [1], "datatype": "FP64", "data": [2.0]}]}'
        ),
    }
    headers = {"content-type": "application/json", **admin()}
    with open_client(Settings(registry=root)) as c:
        for path, body in posts.items():
            r = c.post(path, content=body.encode(), headers=headers)
            assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
            assert "lone surrogate" in r.text, (path, r.text)  # JSON, saying why
        assert c.get("/v1/partitions/pid=1").json()["aliases"]["production"] == 2  # unmoved


def test_a_body_that_is_not_json_nor_utf8_is_a_422_on_every_json_route(client: Any) -> None:
    """A file posted to a JSON route without its content type (curl --data-binary sends a
    form's), its bytes not UTF-8 (a Parquet or gzip file, a Latin-1 CSV): the 422 echoed the
    body's bytes as text, their decoding failed and the client got a 500. Now the 422 says
    what was expected, the bytes left out; a JSON body's error is as before."""
    paths = ["/v1/predict", "/v1/partitions/pid=1/predict", "/v1/partitions/pid=1/forecast",
             "/v1/partitions/pid=1/actuals"]  # fmt: skip
    for path in paths:
        for content_type in ("text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x"):  # fmt: skip
            body = b"--x\r\n\xe9t\xe9\xff" if "multipart" in content_type else b"PAR1\xff\xfe\x00"
            r = client.post(path, content=body, headers={"content-type": content_type})
            assert r.status_code == 422, (path, content_type, r.status_code, r.text)
            (error,) = r.json()["detail"]
            assert error["loc"] == ["body"] and "input" not in error, error
            assert f"sent as {content_type!r}, not as JSON" in error["msg"], error
            assert "Content-Type: application/json" in error["msg"], error


def test_json_posted_without_its_content_type_says_which_header_to_send(client: Any) -> None:
    """``curl -d '{"rows": […]}'`` (a form's content type) or a client that sends none: the
    422 read "Input should be a valid dictionary or object to extract fields from", naming
    neither the header nor the fix, though the body was good JSON."""
    body = json.dumps({"rows": [{"x0": 0.5, "x1": -1.0}]}).encode()
    for headers in ({"content-type": "application/x-www-form-urlencoded"}, {}):
        r = client.post("/v1/partitions/pid=1/predict", content=body, headers=headers)
        assert r.status_code == 422, r.text
        (error,) = r.json()["detail"]
        sent = headers.get("content-type")
        assert error["msg"].startswith(
            f"the body was sent {f'as {sent!r}' if sent else 'without a Content-Type'}, not as JSON"
        ), error
    ok = client.post("/v1/partitions/pid=1/predict", content=body,
                     headers={"content-type": "application/json"})  # fmt: skip
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/predict", "'rows'"),
        ("/v1/partitions/pid=1/predict", "'rows'"),
        ("/v1/partitions/pid=1/forecast", "'horizon'"),
    ],
)
def test_a_post_without_a_body_says_a_json_object_is_wanted_and_its_fields(
    client: Any, path: str, field: str
) -> None:
    """``curl -X POST …/predict`` with no ``-d`` was FastAPI's bare "Field required" at
    ``["body"]``: nothing said a JSON object was expected, nor which fields it needs."""
    r = client.post(path)
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body"] and error["type"] == "missing", error
    assert error["msg"] == (
        f"the request has no body: send a JSON object holding {field}, with the header "
        "Content-Type: application/json (its fields: /docs)"
    )
    r = client.post(path, json={})  # a body without the field: FastAPI's message, as before
    assert r.json()["detail"][0]["loc"] == ["body", field.strip("'")], r.text


@pytest.mark.parametrize("sent", ["application/json", "application/json; charset=utf-8"])
def test_a_post_without_a_body_but_with_jsons_content_type_is_not_told_to_send_it(
    client: Any, sent: str
) -> None:
    """A request that sent ``Content-Type: application/json`` and no body was told to send
    that header: only the body is missing, and only the body is named."""
    r = client.post("/v1/partitions/pid=1/predict", headers={"content-type": sent})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["msg"] == (
        "the request has no body: send a JSON object holding 'rows' (its fields: /docs)"
    )
    r = client.post("/v1/predict", headers={"content-type": "text/plain"})  # wrong: named
    assert "with the header Content-Type: application/json" in r.json()["detail"][0]["msg"]


def test_a_422_echoes_a_big_input_cut_short_or_not_at_all(client: Any) -> None:
    """FastAPI's 422 echoes the bad input; for a missing field that is the whole object that
    lacks it: a 5 MB forecast body without its ``horizon`` was answered with 5 MB, a promote
    with a 5 MB ``reason`` and no version with 10 MB. Now a string is echoed cut to 200
    characters and an input of more than 100 values not at all (``loc`` says where); a small
    one as before."""
    rows = [{"t": 1, "x0": 1.0, "pad": "x" * 1000} for _ in range(5000)]
    r = client.post("/v1/partitions/pid=1/forecast", json={"future": rows})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "horizon"] and "input" not in error, str(error)[:300]
    assert len(r.content) < 1000
    r = client.post("/v1/partitions/pid=1/forecast", json={"horizon": "x" * 5_000_000})
    (error,) = r.json()["detail"]
    assert error["input"] == "x" * 200 + "…" and len(r.content) < 1000, str(error)[:300]
    r = client.post("/v1/partitions/pid=1/forecast", json={"horizon": "soon", "future": []})
    (error,) = r.json()["detail"]
    assert error["input"] == "soon"  # as before
    r = client.post("/v1/partitions/pid=1/forecast", json={"future": []})
    (error,) = r.json()["detail"]
    assert error["input"] == {"future": []}  # as before


def test_infinity_beside_minus_infinity_is_a_422_under_warnings_as_errors(client: Any) -> None:
    """Rows holding ``Infinity`` and ``-Infinity``: scikit-learn's finiteness check sums them,
    numpy warns "invalid value encountered in reduce", and under ``-W error`` (as this suite
    runs) that warning was a 500 of every scoring route (and the next request on the
    connection was reset). Then the model's refusal ("could not score the rows: Input X
    contains infinity"); now each cell named before any model sees it, in the words of a
    number too large for a float (JSON's 1e400 reads as the same inf)."""
    body = '{"rows": [{"pid": 1, "x0": Infinity, "x1": -Infinity}]}'
    headers = {"content-type": "application/json"}
    for path in ("/v1/partitions/pid=1/predict", "/v1/predict"):
        r = client.post(path, content=body, headers=headers)
        assert r.status_code == 422, (path, r.text)
        said = [(d["loc"][-1], d["msg"]) for d in r.json()["detail"]]
        assert said == [
            ("x0", "feature 'x0' is too large a number (inf): it does not fit a float"),
            ("x1", "feature 'x1' is too large a number (-inf): it does not fit a float"),
        ], (path, r.text)


def test_a_422_of_fastapis_own_lists_the_first_problems_and_counts_the_rest(client: Any) -> None:
    """FastAPI's validation gives one error per bad row: 20,000 rows of ``5`` (no object)
    were answered with 2 MB, and 20,000 retrain rows whose target was a list with 9 MB, from
    a body of a few hundred KB. Now the first ``MAX_REPORTED`` (20) are listed and the rest
    counted, as a request's own cell errors are (``InvalidRows``)."""
    r = client.post("/v1/partitions/pid=1/predict", json={"rows": [5] * 20_000})
    assert r.status_code == 422, r.text[:300]
    detail = r.json()["detail"]
    assert len(detail) == 21 and len(r.content) < 5_000, (len(detail), len(r.content))
    assert detail[0]["loc"] == ["body", "rows", 0] and detail[0]["input"] == 5
    assert detail[-1] == {
        "loc": ["body"],
        "msg": "19980 more problem(s) not listed",
        "type": "too_many_errors",
    }
    r = client.post("/v1/partitions/pid=1/predict", json={"rows": [5] * 20})
    assert len(r.json()["detail"]) == 20  # as many as listed: no count


def test_an_integer_past_pythons_digit_limit_is_a_422_in_our_words(client: Any) -> None:
    """A row holding an integer of 5,000 digits: ``json.loads`` raised Python's own
    ``ValueError``, whose 422 told the client to call ``sys.set_int_max_str_digits()`` — advice
    for the server. Now the 422 says what the number is and what to send."""
    huge = b"1" * 5000
    v2 = b'{"inputs": [{"name": "x0", "shape": [1], "datatype": "FP64", "data": [' + huge + b"]}]}"
    posts = {
        "/v1/partitions/pid=1/predict": b'{"rows": [{"x0": ' + huge + b', "x1": 0.5}]}',
        "/v1/predict": b'{"rows": [{"pid": 1, "x0": ' + huge + b', "x1": 0.5}]}',
        "/v2/models/pid=1/infer": v2,
    }
    headers = {"content-type": "application/json"}
    for path, body in posts.items():
        r = client.post(path, content=body, headers=headers)
        assert 400 <= r.status_code < 500, (path, r.text)
        assert "a number of more than 4,300 digits" in r.text, (path, r.text)
        assert "set_int_max_str_digits" not in r.text, (path, r.text)


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"   ", "is empty (only whitespace)"),
        (b"\r\n", "is empty (only whitespace)"),
        (codecs.BOM_UTF8, "is empty (only a byte-order mark)"),  # an empty file, with BOM
        (codecs.BOM_UTF16_LE, "is empty (only a byte-order mark)"),
        (b"null", "is null, not a JSON object"),
        (b"[]", "is a list, not a JSON object"),
        (b"5", "is a number, not a JSON object"),
    ],
)
def test_a_body_of_whitespace_null_or_a_list_says_a_json_object_is_wanted(
    client: Any, body: bytes, what: str
) -> None:
    """A body of only whitespace was FastAPI's bare "JSON decode error" at ``["body", 3]``;
    ``null`` or ``[]`` pydantic's "Input should be a valid dictionary or object to extract
    fields from": neither said what the route wants. Now the no-body message, saying what the
    body is; V2 infer's 400 likewise, and a good body is answered as before."""
    headers = {"content-type": "application/json"}
    for path, field in (("/v1/predict", "'rows'"), ("/v1/partitions/pid=1/forecast", "'horizon'")):
        r = client.post(path, content=body, headers=headers)
        assert r.status_code == 422, r.text
        (error,) = r.json()["detail"]
        assert error["loc"] == ["body"] and "input" not in error, error
        assert error["msg"] == (
            f"the request body {what}: send a JSON object holding {field} (its fields: /docs)"
        )
    r = client.post("/v2/models/pid=1/infer", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json() == {"error": f"the request body {what}: {WANTED}"}
    ok = client.post("/v1/partitions/pid=1/predict", json={"rows": [{"x0": 0.5, "x1": -1.0}]})
    assert ok.status_code == 200, ok.text


def test_a_body_cut_short_is_told_where_its_json_breaks_as_any_unreadable_body(
    server: str,
) -> None:
    """Over real HTTP, ``{"instances": [`` (a body cut short) was FastAPI's bare "JSON decode
    error" at ``["body", 15]``, echoing an ``"input": {}`` it never read, where a body that is
    not UTF-8 is told "the request body cannot be read: …" at ``["body"]``. Now every JSON
    route says it the same way, with what the parser expected and where; V2 as before."""
    headers = {"content-type": "application/json", **admin()}
    paths = ["/v1/predict", f"/v1/partitions/{KEY}/predict", f"/v1/partitions/{KEY}/forecast",
             f"/v1/partitions/{KEY}/actuals", f"/v1/partitions/{KEY}/promote"]  # fmt: skip
    with httpx.Client(base_url=server, timeout=60) as http:
        for path in paths:
            r = http.post(path, content=b'{"instances": [', headers=headers)
            assert r.status_code == 422, (path, r.text)
            assert r.json() == {
                "detail": [
                    {
                        "type": "json_invalid",
                        "loc": ["body"],
                        "msg": "the request body cannot be read: it is not valid JSON: "
                        "expecting value at line 1, column 16",
                    }
                ]
            }, path
        r = http.post(path, content=b'{"rows": [\n  {"a": 1}\n  {"a": 2}]}', headers=headers)
        assert r.json()["detail"][0]["msg"] == (
            "the request body cannot be read: it is not valid JSON: expecting ',' delimiter "
            "at line 3, column 3"
        ), r.text
        r = http.post(f"/v2/models/{KEY}/infer", content=b'{"inputs": [', headers=headers)
        assert r.status_code == 400 and "Expecting value" in r.json()["error"], r.text
