"""Every predict answer names the column it predicts (``target``), from the answering version's
schema: after ``train --new-target`` skipped a partition (its new target all missing), the
registry serves versions of two targets side by side, and the router answered both with a bare
``prediction``: a client read a count of sales units and one of renamed ``sales_units`` (or a
price and a count) as one quantity. Real training, a real router under uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import SENSORS
from routerkit import KEY, SALES_SPEC, TOKEN, feature_rows, sales

from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings

LEFT = "store=1,brand=tropicana"  # the partition the --new-target run skipped
MOVED = "store=2,brand=tropicana"  # one it moved to the new target
UNKNOWN = "store=99,brand=tropicana"  # answered by the fallback


@pytest.fixture(scope="module")
def two_targets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sales registry with `units` renamed `sales_units` and trained `--new-target`, LEFT's
    new target all missing: LEFT keeps its model of `units`, the rest (and the fallback) now
    predict `sales_units`; the run completes."""
    root = tmp_path_factory.mktemp("two_targets") / "registry"
    df = sales()
    with Registry(root) as reg:
        assert train(SALES_SPEC, df, reg, backend="local").run.n_failed == 0
    renamed = df.rename(columns={"units": "sales_units"})
    renamed.loc[(renamed["store"] == 1) & (renamed["brand"] == "tropicana"), "sales_units"] = None
    with Registry(root) as reg:
        spec = {**SALES_SPEC, "target": "sales_units"}
        summary = train(spec, renamed, reg, backend="local", new_target=True)
        assert summary.run.status == "completed"
        production = reg.store.production_info([LEFT, MOVED, FALLBACK_KEY])
        assert production[LEFT].version == 1 and production[MOVED].version == 2
    return root


@pytest.fixture(scope="module")
def url(two_targets: Path) -> Iterator[str]:
    with running_server(Settings(registry=two_targets, admin_token=TOKEN)) as base:
        yield base


def _batch(url: str, keys: list[str], **params: Any) -> list[dict[str, Any]]:
    rows = []
    for key, row in zip(keys, feature_rows(len(keys)), strict=True):
        store, brand = (part.split("=")[1] for part in key.split(","))
        rows.append({"store": int(store), "brand": brand, **row})
    r = httpx.post(f"{url}/v1/predict", json={"rows": rows}, params=params, timeout=30)
    assert r.status_code == 200, r.text
    answers: list[dict[str, Any]] = r.json()["predictions"]
    return answers


def test_each_partition_answers_the_target_its_version_predicts(url: str) -> None:
    """The per-key route: LEFT's answer names `units`, MOVED's `sales_units`, an unknown key's
    the fallback's (`sales_units`: the run retrained it)."""
    for key, version, target in ((LEFT, 1, "units"), (MOVED, 2, "sales_units")):
        r = httpx.post(f"{url}/v1/partitions/{key}/predict", json={"rows": feature_rows(2)})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert (answer["version"], answer["target"]) == (version, target), answer
        assert list(answer)[:6] == [
            "partition", "served_by", "version", "fallback", "target", "predictions"
        ]  # fmt: skip
    fell = httpx.post(f"{url}/v1/partitions/{UNKNOWN}/predict", json={"rows": feature_rows(1)})
    assert fell.json()["fallback"] is True and fell.json()["target"] == "sales_units"


def test_a_batch_over_both_targets_names_each_rows(url: str) -> None:
    """`/v1/predict`, both ways it writes an answer: with an unknown key (the fallback) it goes
    the careful way (``batch.plan`` / ``score`` / ``encode``); once every model is in memory
    and every key in production, the plain way (``serving.plain``: the target written into
    each model's answer head at load). Each row names its own version's target."""
    careful = _batch(url, [LEFT, MOVED, UNKNOWN, LEFT])
    assert [(a["served_by"], a["target"]) for a in careful] == [
        (LEFT, "units"), (MOVED, "sales_units"), (FALLBACK_KEY, "sales_units"), (LEFT, "units"),
    ]  # fmt: skip
    plain = _batch(url, [MOVED, LEFT, MOVED])  # the models are held now
    assert [a["target"] for a in plain] == ["sales_units", "units", "sales_units"]
    one = _batch(url, [LEFT, LEFT])  # one model's rows: its head between the floats
    assert [a["target"] for a in one] == ["units", "units"]


def test_the_v2_route_names_the_target_in_its_parameters(url: str) -> None:
    """V2 keeps its output named `predict` (what the metadata lists and clients ask for by
    name); the response's and the metadata's `parameters` name the target."""
    inputs = [
        {"name": "price", "datatype": "FP64", "shape": [1], "data": [2.5]},
        {"name": "deal", "datatype": "INT64", "shape": [1], "data": [1]},
        {"name": "feat", "datatype": "INT64", "shape": [1], "data": [0]},
    ]
    for key, target in ((LEFT, "units"), (MOVED, "sales_units")):
        r = httpx.post(f"{url}/v2/models/{key}/infer", json={"inputs": inputs})
        assert r.status_code == 200, r.text
        assert r.json()["parameters"]["target"] == target
        assert [o["name"] for o in r.json()["outputs"]] == ["predict"]
        meta = httpx.get(f"{url}/v2/models/{key}").json()
        assert meta["parameters"]["target"] == target


def test_a_forecast_names_its_versions_target(url: str) -> None:
    for key, target in ((LEFT, "units"), (MOVED, "sales_units")):
        r = httpx.post(f"{url}/v1/partitions/{key}/forecast", json={"horizon": 2})
        assert r.status_code == 200, r.text
        assert r.json()["target"] == target


def test_one_targets_answers_carry_it_too(reading_server: str) -> None:
    """The plain sales registry: every answer, per key, batch and forecast, names `units`."""
    r = httpx.post(f"{reading_server}/v1/partitions/{KEY}/predict", json={"rows": feature_rows()})
    assert r.json()["target"] == "units"
    assert {a["target"] for a in _batch(reading_server, [KEY, UNKNOWN])} == {"units"}
    assert {a["target"] for a in _batch(reading_server, [KEY, KEY])} == {"units"}
    r = httpx.post(f"{reading_server}/v1/partitions/{KEY}/forecast", json={"horizon": 1})
    assert r.json()["target"] == "units"


def test_a_classifiers_answers_name_its_label_column(trained_classifier: Path) -> None:
    """A classification version's target is its label column."""
    with Registry.open(trained_classifier) as reg:
        key = next(p.key for p in reg.list_partitions() if p.key != FALLBACK_KEY)
    with running_server(Settings(registry=trained_classifier, admin_token=TOKEN)) as base:
        row = dict.fromkeys(SENSORS, 1.0)
        r = httpx.post(
            f"{base}/v1/partitions/{key}/predict",
            json={"rows": [row]},
            params={"probabilities": "true"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["target"] == "failure_within_24h"
        asset = key.split("=", 1)[1]
        batch = httpx.post(f"{base}/v1/predict", json={"rows": [{"asset": asset, **row}]})
        assert batch.status_code == 200, batch.text
        assert batch.json()["predictions"][0]["target"] == "failure_within_24h"
