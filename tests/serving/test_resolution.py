"""Which model answers a key (``serving.resolution``) in a registry holding partitions of two
specs keyed by other columns, as registries trained before ``require_same_keys`` can."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from factories import linear_frame, spec_dict
from routerkit import KEY, feature_rows, open_client

from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.settings import Settings

SHOP = "region=north,shop=1"  # the second spec's partition
SHOP_ROWS = [{"x0": 1.0, "x1": 2.0}]


@pytest.fixture(scope="module")
def two_specs(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sales registry (store, brand) with a second spec's partitions keyed by region and
    shop trained in beside them: the registry's recorded key columns are set to the second
    spec's for its run (``require_same_keys`` refuses it otherwise, as it did not before) and
    put back after."""
    root = Path(shutil.copytree(trained, tmp_path_factory.mktemp("two-keyings") / "registry"))
    shops = linear_frame(2, 30).rename(columns={"pid": "shop"}).assign(region="north")
    spec = spec_dict(name="shops", partition_by=["region", "shop"], fallback={"enabled": False})
    with Registry(root) as reg:
        held = reg.store.get_meta("partition_by")
        reg.store.set_meta("partition_by", json.dumps(spec["partition_by"]))
        summary = train(spec, shops, reg, backend="local")
        reg.store.set_meta("partition_by", held)
    assert summary.run.n_trained == 2 and summary.run.n_failed == 0, summary.failures
    return root


@pytest.fixture(scope="module")
def client(two_specs: Path) -> Iterator[Any]:
    with open_client(Settings(registry=two_specs)) as c:
        yield c


@pytest.mark.parametrize(
    ("spelling", "key", "rows"),
    [
        ("shop=1,region=north", SHOP, SHOP_ROWS),
        ("brand=tropicana,store=2", KEY, feature_rows(1)),
    ],
)
def test_a_reordered_key_of_either_spec_reaches_its_partition(
    client: Any, spelling: str, key: str, rows: list[dict[str, Any]]
) -> None:
    """Columns given out of order were put in the order of the first spec's keys (the
    router's ``partition_by``), so a reordered key of the other spec named no partition and
    went to the fallback (a 422 here: its features are not the fallback's)."""
    r = client.post(f"/v1/partitions/{spelling}/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["partition"], body["served_by"], body["fallback"]) == (key, key, False)
    direct = client.post(f"/v1/partitions/{key}/predict", json={"rows": rows}).json()
    assert body["predictions"] == direct["predictions"]
    assert client.get(f"/v1/partitions/{spelling}").json()["partition"] == key


def test_a_key_of_the_other_specs_columns_without_a_partition_says_so(client: Any) -> None:
    """Its 404 said the key names other columns than the registry's (the first spec's)."""
    r = client.post(
        "/v1/partitions/shop=9,region=south/predict",
        json={"rows": SHOP_ROWS},
        params={"fallback": "false"},
    )
    assert r.status_code == 404, r.text
    detail = r.json()["detail"]
    assert "(a key of this registry's columns, region, shop, with no version served)" in detail


def test_a_key_of_neither_specs_columns_names_both(client: Any) -> None:
    r = client.post("/v1/partitions/shop=1/predict", json={"rows": SHOP_ROWS})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["expected"] == [["region", "shop"], ["store", "brand"]]
    assert error["msg"] == (
        "the key 'shop=1' names the column 'shop', which no model in this registry is keyed "
        "by: its keys name 'region' and 'shop', or 'store' and 'brand'"
    )


def test_a_key_naming_two_specs_partitions_in_other_spellings_is_a_422(tmp_path: Path) -> None:
    """Spec a's DataFrame of days (``pid=2024-01-05T00:00:00``) beside spec b's table of the
    same days as text (``pid=2024-01-05%2000:00:00``): ``pid=2024-01-05`` is no partition as
    written, and both in other spellings. Before: the router answered with a's model, the
    first spelling it tried. Now it is a 422 naming both, on a route with the fallback and
    one without; the keys as written are their own."""
    days, texts = linear_frame(2, 30), linear_frame(2, 30)
    days["pid"] = days["pid"].map({0: pd.Timestamp("2024-01-05"), 1: pd.Timestamp("2024-01-06")})
    texts["pid"] = texts["pid"].map({0: "2024-01-05 00:00:00", 1: "2024-01-06 00:00:00"})
    train(spec_dict(name="a"), days, tmp_path / "reg", backend="local")
    train(spec_dict(name="b"), texts, tmp_path / "reg", backend="local")
    a, b = "pid=2024-01-05T00:00:00", "pid=2024-01-05%2000:00:00"
    with open_client(Settings(registry=tmp_path / "reg")) as client:
        for key in (a, b):
            got = client.get(f"/v1/partitions/{key}")
            assert got.status_code == 200 and got.json()["partition"] == key, got.text
        for method, path in (("GET", ""), ("POST", "/predict")):
            r = client.request(method, f"/v1/partitions/pid=2024-01-05{path}",
                               json={"rows": SHOP_ROWS})  # fmt: skip
            assert r.status_code == 422, r.text
            (problem,) = r.json()["detail"]
            assert problem["candidates"] == [a, b], problem
            assert "ambiguous" in problem["msg"] and problem["loc"] == ["path", "key"]
