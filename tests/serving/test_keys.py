"""Rows on a partition's URL whose key columns name another partition (serving/keys.py
``refuse_other_keys``): refused on predict, forecast and actuals, compared with the key the URL
resolves to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pytest
from factories import linear_frame, open_client, spec_dict
from routerkit import KEY, SLASH_BRAND, SLASH_KEY, feature_rows

from manymodels.pipeline import train
from serving.settings import Settings


@pytest.fixture
def client(reader: Any) -> Any:
    """The module's one router on the sales registry (``reader``), for every test that takes
    ``client``: each only scores or is refused (no actuals accepted, so the one test's
    ``live_rows == 0`` still shows its refused actuals wrote nothing), so none changes what
    the next sees (a router and a registry copy per test were ~1 s each, 10 times)."""
    return reader


def predict(client: Any, key: str, rows: list[dict[str, Any]], **params: Any) -> Any:
    return client.post(f"/v1/partitions/{key}/predict", json={"rows": rows}, params=params)


def test_rows_naming_another_partition_than_the_url_are_422(client: Any) -> None:
    """The URL's model would answer a row whose key columns name another partition (a global
    model bound to the URL's key would not even see them): refused, naming row and column.
    Key columns that agree with the URL — as the batch endpoint would read them — are fine."""
    (row,) = feature_rows(1)
    other = predict(client, KEY, [{**row, "store": 2, "brand": "tropicana"}, {**row, "store": 3}])
    assert other.status_code == 422, other.text
    (error,) = other.json()["detail"]
    assert error["loc"] == ["body", "rows", 1, "store"] and error["type"] == "key_mismatch"
    assert f"'store' is 3, but the URL names partition '{KEY}'" in error["msg"]
    same = predict(client, KEY, [{**row, "store": 2.0, "brand": "tropicana"}])
    assert same.status_code == 200, same.text
    assert same.json()["predictions"] == predict(client, KEY, [row]).json()["predictions"]
    slash = predict(client, SLASH_KEY, [{**row, "brand": SLASH_BRAND}])
    assert slash.status_code == 200, slash.text
    missing = predict(client, KEY, [{**row, "brand": None}])
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"][-1] == "brand"
    future = client.post(
        f"/v1/partitions/{KEY}/forecast",
        json={"horizon": 1, "future": [{**row, "brand": "minute_maid"}]},
    )
    assert future.status_code == 422, future.text
    assert future.json()["detail"][0]["loc"] == ["body", "future", 0, "brand"]
    actual = {"week": "2024-01-01", **row, "units": 10.0, "brand": "minute_maid"}
    actuals = client.post(f"/v1/partitions/{KEY}/actuals", json={"rows": [actual]})
    assert actuals.status_code == 422, actuals.text
    assert actuals.json()["detail"][0]["msg"].startswith("'brand' is \"minute_maid\", but")
    assert client.get("/v1/monitor", params={"key": KEY}).json()["partitions"][0]["live_rows"] == 0


@pytest.mark.parametrize(
    ("url_key", "row_key", "status"),
    [
        ("store=2.0,brand=tropicana", {"store": 2}, 200),  # the URL's number as training wrote it
        ("__fallback__", {"store": 2}, 200),  # the fallback's key names no column
        ("store=99,brand=nope", {"store": 99}, 200),  # unknown: the fallback answers
        ("store=99,brand=nope", {"store": 98}, 422),
        ("brand=tropicana,store=2", {"brand": "tropicana"}, 200),  # reordered
        ("garbage", {"store": 2}, 200),  # not a key: the fallback answers, as without it
    ],
)
def test_key_columns_are_compared_with_the_key_the_url_resolves_to(
    client: Any, url_key: str, row_key: dict[str, Any], status: int
) -> None:
    (row,) = feature_rows(1)
    r = predict(client, url_key, [{**row, **row_key}])
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json()["predictions"] == predict(client, url_key, [row]).json()["predictions"]


def test_only_the_columns_a_key_names_are_compared() -> None:
    """A registry may hold specs keyed differently: a ``store=1`` partition's rows may carry
    a ``brand`` it does not name."""
    from manymodels.exceptions import InvalidRows
    from serving.keys import refuse_other_keys

    served = {"store=1", "store=2"}.__contains__
    refuse_other_keys([{"store": 1, "brand": "x", "price": 1.0}], "store=1", served)
    with pytest.raises(InvalidRows, match="'store' is 2, but the URL names partition 'store=1'"):
        refuse_other_keys([{"price": 1.0}, {"store": 2}], "store=1", served)


def test_an_unknown_key_with_a_version_is_a_404_whatever_its_rows_say(client: Any) -> None:
    (row,) = feature_rows(1)
    r = predict(client, "store=99,brand=nope", [{**row, "store": 98}], version=1)
    assert r.status_code == 404, r.text
    known = predict(client, KEY, [{**row, "store": 98}], version=1)
    assert known.status_code == 422 and known.json()["detail"][0]["type"] == "key_mismatch"


def test_an_unknown_keys_404_says_which_it_is(client: Any) -> None:
    """The 404 named only the key ("no partition 'shop=2' in production, …"): a misspelt
    column, spaces around '=', text that is no key and a key of the right columns without a
    model all read alike. Now it says which, with the key columns, as the CLI's do."""
    (row,) = feature_rows(1)
    form = "this registry's key columns are store, brand: a key reads 'store=…,brand=…'"
    said = {
        "shop=2": f"(it names 'shop'; {form})",
        "store=2": f"(it names 'store'; {form})",
        "store = 2,brand=tropicana": f"(write it without spaces around '=' and ','; {form})",
        "tropicana": f"(not a key; {form})",
        "store=99,brand=nope": "(a key of this registry's columns, store, brand, with no version",
    }
    for key, why in said.items():
        routes = [
            predict(client, key, [row], fallback="false"),
            client.post(f"/v1/partitions/{key}/forecast", json={"horizon": 1}),
            client.get(f"/v1/partitions/{key}/explain"),
        ]
        for r in routes:
            assert r.status_code == 404, r.text
            assert why in r.json()["detail"], (key, r.json())


def test_an_unknown_keys_404_says_which_it_is_for_a_version_or_alias(client: Any) -> None:
    """?version=N and ?alias=NAME of a key with no partition kept the bare "no partition
    'shop=2' in the registry" (the registry's own words, from loading the model or resolving
    the alias), where the production path's 404 says which it is since 8895374."""
    (row,) = feature_rows(1)
    form = "this registry's key columns are store, brand: a key reads 'store=…,brand=…'"
    for params in ({"version": 1}, {"alias": "candidate"}):
        for key, why in {
            "shop=2": f"(it names 'shop'; {form})",
            "store=99,brand=nope": "(a key of this registry's columns, store, brand,",
        }.items():
            r = predict(client, key, [row], **params)
            assert r.status_code == 404, r.text
            assert why in r.json()["detail"], (key, params, r.json())
    missing = predict(client, KEY, [row], version=999)  # a known partition's: its own words
    assert missing.status_code == 404 and "has no version 999" in missing.json()["detail"]


@pytest.fixture(scope="module")
def stamped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A router over partitions keyed by a timestamp and a boolean, trained from a DataFrame
    (``ts=2024-01-05T10:30:00,flag=false`` …)."""
    root: Path = tmp_path_factory.mktemp("stamped") / "registry"
    df = linear_frame(4)
    pid = df.pop("pid")
    df["ts"] = pd.Timestamp("2024-01-05 10:30") + pd.to_timedelta(pid % 2, unit="D")
    df["flag"] = pid >= 2
    train(spec_dict(partition_by=["ts", "flag"], features=["x0", "x1"]), df, root, backend="local")
    with open_client(Settings(registry=root)) as client:
        yield client


@pytest.mark.parametrize(
    "typed",
    [
        "ts=2024-01-05 10:30,flag=True",
        "ts=2024-01-05T10:30,flag=1",
        "ts=2024-01-05 10:30:00,flag=true",
        "flag=TRUE,ts=2024-01-05 10:30",
    ],
)
def test_a_timestamp_or_boolean_key_as_typed_reaches_its_partition(
    stamped: Any, typed: str
) -> None:
    """``ts=2024-01-05 10:30`` (the space a user types) and ``flag=True`` or ``1`` were 404s
    ("no version served") for the partition trained as ``ts=2024-01-05T10:30:00,flag=true``,
    on the URL and in a batch's rows; rows on the URL that spell its key the other way are
    its own, not another partition's (422)."""
    trained = "ts=2024-01-05T10:30:00,flag=true"
    row = {"x0": 0.5, "x1": -1.0}
    own = predict(stamped, quote(trained, safe="=,:"), [row], fallback="false").json()
    url = predict(stamped, quote(typed, safe="=,:"), [row], fallback="false")
    assert url.status_code == 200, url.text
    assert url.json()["partition"] == trained and url.json()["predictions"] == own["predictions"]
    named = dict(pair.split("=") for pair in typed.split(","))
    batch = stamped.post(
        "/v1/predict", json={"rows": [{**row, **named}]}, params={"fallback": "false"}
    )
    assert batch.status_code == 200, batch.text
    (answer,) = batch.json()["predictions"]
    assert answer["partition"] == trained and answer["prediction"] == own["predictions"][0]
    spelt = predict(stamped, quote(trained, safe="=,:"), [{**row, **named}])
    assert spelt.status_code == 200, spelt.text


def test_a_timestamp_of_another_time_is_still_no_partition(stamped: Any) -> None:
    row = {"x0": 0.5, "x1": -1.0}
    other = predict(stamped, "ts=2024-01-05%2010:31,flag=True", [row], fallback="false")
    assert other.status_code == 404, other.text
    wrong = predict(stamped, "ts=2024-01-05T10:30:00,flag=true", [{**row, "flag": "0"}])
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"][-1] == "flag"


@pytest.fixture(scope="module")
def punctuated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A router over partitions keyed by one column whose values hold ``=`` and ``,``."""
    root: Path = tmp_path_factory.mktemp("punctuated") / "registry"
    df = linear_frame(2)
    df["pid"] = df["pid"].map({0: "x=y", 1: "a,b"})
    train(spec_dict(features=["x0", "x1"]), df, root, backend="local")
    with open_client(Settings(registry=root)) as client:
        yield client


@pytest.mark.parametrize(
    ("typed", "value", "written"), [("x=y", "x=y", "pid=x%3Dy"), ("pid=a,b", "a,b", "pid=a%2Cb")]
)
def test_a_value_holding_equals_or_a_comma_is_told_how_to_write_it(
    punctuated: Any, typed: str, value: str, written: str
) -> None:
    """``x=y`` for the value ``x=y`` of a registry keyed by ``pid`` names the column ``x``,
    ``pid=a,b`` two pairs: the 404 said only what a key of this registry reads like. It now
    also gives the form that names the value, and that form (and the JSON row) reaches it.
    ``pid=a,b`` is misshapen (a part with no '='): the 422 of every route, with the hint."""
    row = {"x0": 0.5, "x1": -1.0}
    refused = predict(punctuated, quote(typed, safe="=,"), [row], fallback="false")
    assert refused.status_code == (422 if "," in typed else 404), refused.text
    detail = refused.json()["detail"]
    detail = detail if isinstance(detail, str) else detail[0]["msg"]
    hint = f"if '{value}' is a value of pid, write '{written}' (from Python or in a JSON body, "
    assert f'{hint}{{"pid": "{value}"}})' in detail, detail
    url = predict(punctuated, written, [row], fallback="false")  # its text, as given
    assert url.status_code == 200 and url.json()["partition"] == written, url.text
    body = punctuated.post("/v1/predict", json={"rows": [{**row, "pid": value}]})
    assert body.status_code == 200 and body.json()["predictions"][0]["partition"] == written


def test_a_row_naming_another_stored_partition_by_a_spelling_is_refused(tmp_path: Path) -> None:
    """A text key column holding both ``1`` and ``true`` (or a day and its midnight): a row
    whose ``code`` is ``"1"`` posted to ``code=true`` was answered by ``code=true``'s model,
    its ``1`` read as a spelling of ``true``; it names its own partition, and is a 422 (as
    before the spellings), while a spelling no partition holds still reaches the URL's."""
    root = tmp_path / "registry"
    df = linear_frame(4)
    codes = {0: "1", 1: "true", 2: "2024-01-05", 3: "2024-01-05 00:00:00"}
    df["code"] = df.pop("pid").map(codes)
    train(spec_dict(partition_by=["code"], features=["x0", "x1"]), df, root, backend="local")
    row = {"x0": 0.5, "x1": -1.0}
    with open_client(Settings(registry=root)) as client:
        for url, other in [("code=true", "1"), ("code=2024-01-05%2000:00:00", "2024-01-05")]:
            wrong = predict(client, url, [{**row, "code": other}])
            assert wrong.status_code == 422, (url, wrong.text)
            assert wrong.json()["detail"][0]["type"] == "key_mismatch", wrong.text
        spelt = predict(client, "code=true", [{**row, "code": "True"}])  # no partition "True"
        assert spelt.status_code == 200, spelt.text
