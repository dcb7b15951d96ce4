"""A /v1 request body's member the route does not take is a 422 naming it, over real HTTP.

Pydantic ignores unknown members, so a misspelt or misplaced one changed what the router did
without a word: a promote's ``{"version": 2, "alias": "candidate"}`` moved production,
actuals' ``"verison"`` were counted against production's version, a forecast's ``"futur"``
carried the last features forward, a body's ``"fallback": false`` let the fallback answer.
A retrain's multipart upload takes one field, ``file``: ``-F mode=replace`` appended.
Every request here is refused before it writes, or only reads, so one router serves the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from routerkit import KEY, TWO_VERSIONS, admin, doubled_rows, feature_rows

TWO = TWO_VERSIONS[0]  # production v1, candidate v2 (manual promotion)


@pytest.fixture(scope="module")
def http(reading_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=reading_server, timeout=30) as client:
        yield client


def refused(r: httpx.Response, member: str) -> str:
    """The 422's message located at the member."""
    assert r.status_code == 422, r.text
    [error] = [e for e in r.json()["detail"] if e["loc"] == ["body", member]]
    assert error["type"] == "extra_forbidden"
    return str(error["msg"])


def production(http: httpx.Client, key: str) -> Any:
    return http.get(f"/v1/partitions/{key}").json()["aliases"]["production"]


def test_a_promote_naming_another_alias_moves_nothing(http: httpx.Client) -> None:
    body = {"version": 2, "alias": "candidate"}
    r = http.post(f"/v1/partitions/{TWO}/promote", json=body, headers=admin())
    msg = refused(r, "alias")
    assert "'alias', which this route does not take: it takes 'version', 'reason'" in msg
    assert production(http, TWO) == 1


def test_a_misspelt_member_is_told_the_one_meant(http: httpx.Client) -> None:
    r = http.post(f"/v1/partitions/{TWO}/rollback", json={"rason": "bad"}, headers=admin())
    assert "(did you mean 'reason'?): it takes 'reason'" in refused(r, "rason")  # optional body
    assert production(http, TWO) == 1

    step = feature_rows(1)[0]
    r = http.post(f"/v1/partitions/{KEY}/forecast", json={"horizon": 1, "futur": [step]})
    assert "(did you mean 'future'?): it takes 'horizon', 'future'" in refused(r, "futur")

    r = http.post("/v1/predict", json={"row": [{"store": 2, "brand": "tropicana", **step}]})
    assert "(did you mean 'rows'?)" in refused(r, "row")  # besides 'rows' missing


def test_actuals_for_a_misspelt_version_are_not_counted(http: httpx.Client) -> None:
    row = {"week": "2030-01-07", "units": 10.0, **feature_rows(1)[0]}
    r = http.post(f"/v1/partitions/{TWO}/actuals", json={"rows": [row], "verison": 2})
    assert "(did you mean 'version'?)" in refused(r, "verison")
    [page] = http.get("/v1/monitor", params={"key": TWO}).json()["partitions"]
    assert page["live_rows"] == 0


def test_a_query_parameter_sent_in_the_body_is_told_where_it_goes(http: httpx.Client) -> None:
    body = {"rows": feature_rows(1), "fallback": False}
    r = http.post("/v1/partitions/store=99,brand=nope/predict", json=body)
    assert "(a query parameter: send it as ?fallback=…): it takes 'rows'" in refused(r, "fallback")

    rows = [{"week": "2030-01-07", "units": 10.0, **feature_rows(1)[0]}]
    r = http.post(
        f"/v1/partitions/{KEY}/retrain", json={"rows": rows, "mode": "replace"}, headers=admin()
    )
    assert "(a query parameter: send it as ?mode=…)" in refused(r, "mode")
    assert http.get("/v1/jobs", headers=admin()).json()["jobs"] == []  # nothing queued


def test_an_upload_takes_its_file_alone(http: httpx.Client) -> None:
    csv = pd.DataFrame(doubled_rows(2, "tropicana", 30)).to_csv(index=False).encode()
    url = f"/v1/partitions/{KEY}/retrain"
    form = {"mode": "replace"}
    r = http.post(url, files={"file": ("rows.csv", csv)}, data=form, headers=admin())
    assert "(a query parameter: send it as ?mode=…): it takes 'file'" in refused(r, "mode")
    r = http.post(url, files={"fiel": ("rows.csv", csv)}, headers=admin())
    assert "(did you mean 'file'?)" in refused(r, "fiel")
    assert http.get("/v1/jobs", headers=admin()).json()["jobs"] == []  # nothing queued


def test_a_long_member_name_is_cut_as_an_echoed_value_is(http: httpx.Client) -> None:
    """A member's name is the client's text, as a value is: a forecast body holding one
    member of a 3 MB name was answered 6 MB (the name whole in ``loc`` and again in ``msg``),
    where a 3 MB value is echoed cut to ``ECHO_CHARS`` (body_errors._echoed)."""
    name = "v" * 3_000_000
    r = http.post(f"/v1/partitions/{KEY}/forecast", json={"horizon": 1, name: 1})
    assert r.status_code == 422 and len(r.content) < 5_000, len(r.content)
    [error] = r.json()["detail"]
    assert error["type"] == "extra_forbidden" and error["loc"] == ["body", "v" * 200 + "…"]
    assert f"the body holds {'v' * 200 + '…'!r}, which this route does not take" in error["msg"]


def test_a_batch_asked_for_a_version_in_its_body_is_told_where_to_ask(http: httpx.Client) -> None:
    """``?version=`` on /v1/predict is told to ask one partition's version on its own URL
    (``elsewhere``); the same ``"version"`` in the body was told only that the route takes
    'rows', so the client learnt neither why nor where."""
    rows = [{"store": 2, "brand": "tropicana", **feature_rows(1)[0]}]
    for name in ("version", "alias"):
        r = http.post("/v1/predict", json={"rows": rows, name: 2 if name == "version" else "x"})
        msg = refused(r, name)
        assert f"ask one partition's {name} at /v1/partitions/{{key}}/predict?{name}=…" in msg
        assert msg.endswith(": it takes 'rows'"), msg
