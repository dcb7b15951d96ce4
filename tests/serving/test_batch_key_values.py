"""POST /v1/predict: a key value that can name no partition — a JSON boolean, a number past
a float's range (``1e400`` parses as inf) — is the client's mistake, a 422 naming the key column
and the value, not a row the fallback answers as if its partition were merely unknown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from routerkit import SALES_SPEC, feature_rows, open_client, sales

from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.settings import Settings

ROW = {**feature_rows(1)[0], "brand": "tropicana"}


@pytest.mark.parametrize("query", ["", "?fallback=false"])
@pytest.mark.parametrize(
    ("raw", "shown"), [("true", "true"), ("false", "false"), ("1e400", "Infinity"),
                       ("-1e400", "-Infinity")],
)  # fmt: skip
def test_a_boolean_or_infinite_key_value_is_a_422_naming_the_column(
    reader: Any, raw: str, shown: str, query: str
) -> None:
    """With ``?fallback=false`` too: such a row was the generic 404 "no partition
    'store=true,…' in production", where the fallback's rows said what was wrong with it;
    a key value that can match no partition is the client's mistake either way."""
    good = {**ROW, "store": 2}
    body = json.dumps({"rows": [good, {**ROW, "store": "PLACEHOLDER"}]})
    body = body.replace('"PLACEHOLDER"', raw)  # 1e400 as the client wrote it, not as inf
    r = reader.post(
        f"/v1/predict{query}", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["body", "rows", 1, "store"]
    assert f"key column 'store' is {shown}" in problem["msg"]


@pytest.mark.parametrize(("text", "raw"), [("true", "true"), ("inf", "1e400")])
def test_a_boolean_after_the_same_key_as_text_is_refused_too(
    reader: Any, text: str, raw: str
) -> None:
    """Text "true" and a boolean true are one key (store=true): only the group's first row
    was asked, so the boolean behind the text was served by the fallback, and refused only
    when it came first."""
    body = json.dumps({"rows": [{**ROW, "store": text}, {**ROW, "store": "PLACEHOLDER"}]})
    body = body.replace('"PLACEHOLDER"', raw)
    r = reader.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["body", "rows", 1, "store"]


def test_a_number_or_text_key_of_no_partition_is_still_the_fallbacks(reader: Any) -> None:
    """… or, with ``?fallback=false``, still the 404 naming the unknown keys."""
    rows = [{**ROW, "store": 999}, {**ROW, "store": "nowhere"}, {**ROW, "store": 2.5}]
    r = reader.post("/v1/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    assert [p["served_by"] for p in r.json()["predictions"]] == ["__fallback__"] * 3
    r = reader.post("/v1/predict?fallback=false", json={"rows": rows})
    assert r.status_code == 404, r.text
    assert "no partition 'store=999,brand=tropicana'" in r.json()["detail"], r.text


def test_a_registry_trained_on_a_boolean_key_column_serves_its_boolean_keys(
    tmp_path: Path,
) -> None:
    """Training writes a boolean key value as ``true``/``false`` (``flag=true``): there a JSON
    boolean names a partition, and its model answers, not a 422."""
    df = sales()
    df = df[df["store"].isin(sorted(df["store"].unique())[:2])]
    df = df.assign(store=df["store"] == df["store"].min())  # two stores: True and False
    root = tmp_path / "registry"
    with Registry(root) as reg:
        assert train(SALES_SPEC, df, reg, backend="local").run.n_failed == 0
    brand = df["brand"].iloc[0]
    with open_client(Settings(registry=root)) as client:
        rows = [{**ROW, "brand": brand, "store": True}, {**ROW, "brand": brand, "store": False}]
        r = client.post("/v1/predict", json={"rows": rows})
        assert r.status_code == 200, r.text
        got = [p["served_by"] for p in r.json()["predictions"]]
        named = quote(brand, safe="")
        assert got == [f"store=true,brand={named}", f"store=false,brand={named}"]
        strict = client.post("/v1/predict?fallback=false", json={"rows": rows})
        assert strict.status_code == 200, strict.text
        assert [p["served_by"] for p in strict.json()["predictions"]] == got
        nowhere = [{**ROW, "brand": "nowhere", "store": True}]
        for query in ("", "?fallback=false"):  # no such brand: not a partition
            unknown = client.post(f"/v1/predict{query}", json={"rows": nowhere})
            assert unknown.status_code == 422, unknown.text
