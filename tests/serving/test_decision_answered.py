"""Labels read back from the answer's own probabilities: a request asking for probabilities
and labels (a ``[decision]`` version, or ``?threshold=``) ran each model's rows through
``predict_proba`` twice, once for the answer and once for the labels (~30 % of a warm batch
over 3,000 users' classifier pipelines). One call now serves both, on ``/v1/predict``, the
one-partition route and V2, and the answer is the one labelled the old way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import DECIDED, ProbaCountingLogistic, pumps_spec
from routerkit import open_client

from manymodels.pipeline import train
from manymodels.samples import sensor_readings
from serving.settings import Settings

ASSETS = 3
FEATURES = ["temperature", "vibration"]


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """A pipeline (scaler + counting LogisticRegression) per pump, labelling at a threshold
    chosen by cost; and rows of every pump, interleaved, that the batch regroups."""
    root = tmp_path_factory.mktemp("answered") / "registry"
    data = sensor_readings(n_assets=ASSETS, readings=120)
    candidate = {"estimator": "factories.ProbaCountingLogistic", "scale": True}
    spec = pumps_spec(candidates=[candidate], decision=DECIDED)
    assert train(spec, data, root, backend="local").run.n_trained == ASSETS
    picked = data.groupby("asset").tail(4).sort_values("ts", kind="stable")
    rows = [
        {"asset": r["asset"], **{f: float(r[f]) for f in FEATURES}} for _, r in picked.iterrows()
    ]
    return root, rows


@pytest.fixture(scope="module")
def router(decided: tuple[Path, list[dict[str, Any]]]) -> Iterator[Any]:
    with open_client(Settings(registry=decided[0])) as client:
        yield client


def _calls(client: Any, path: str, body: dict[str, Any]) -> tuple[Any, list[int]]:
    """The answer to a warm request (asked once before, so loads are not counted) and the
    rows of each ``predict_proba`` it made."""
    assert client.post(path, json=body).status_code == 200
    ProbaCountingLogistic.calls.clear()
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    return r.json(), list(ProbaCountingLogistic.calls)


def _without_probabilities(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in a.items() if k != "probabilities"} for a in answers]


@pytest.mark.parametrize("query", ["", "&threshold=0.3"], ids=["decision", "asked"])
def test_a_batch_labels_from_its_probabilities_with_one_call_per_model(
    router: Any, decided: tuple[Path, list[dict[str, Any]]], query: str
) -> None:
    rows = decided[1]
    body, calls = _calls(router, f"/v1/predict?probabilities=true{query}", {"rows": rows})
    assert sorted(calls) == [4] * ASSETS  # one per model: two before (answer, then labels)
    answers = body["predictions"]
    # the same request labelled the old way: no probabilities, so by the model
    plain, plain_calls = _calls(router, f"/v1/predict?probabilities=false{query}", {"rows": rows})
    assert sorted(plain_calls) == [4] * ASSETS
    assert _without_probabilities(answers) == _without_probabilities(plain["predictions"])
    for a in answers:  # and each label is its own probability at its threshold
        assert a["label"] == (1 if a["probabilities"]["1"] >= a["threshold"] else 0)
    chosen = {a["threshold"] for a in plain["predictions"]}  # the versions' own, or asked
    assert {a["threshold"] for a in answers} == chosen and (not query or chosen == {0.3})


def test_one_partition_labels_from_its_probabilities(
    router: Any, decided: tuple[Path, list[dict[str, Any]]]
) -> None:
    rows = [{f: r[f] for f in FEATURES} for r in decided[1] if r["asset"] == "pump-001"]
    path = "/v1/partitions/asset=pump-001/predict"
    body, calls = _calls(router, f"{path}?probabilities=true&threshold=0.4", {"rows": rows})
    assert calls == [len(rows)]  # two before
    plain, _ = _calls(router, f"{path}?threshold=0.4", {"rows": rows})
    assert {k: v for k, v in body.items() if k != "probabilities"} == {
        k: v for k, v in plain.items() if k != "probabilities"
    }
    assert body["labels"] == [1 if p["1"] >= 0.4 else 0 for p in body["probabilities"]]


def test_v2_labels_from_its_probabilities(
    router: Any, decided: tuple[Path, list[dict[str, Any]]]
) -> None:
    rows = [{f: r[f] for f in FEATURES} for r in decided[1] if r["asset"] == "pump-002"]
    inputs = [
        {"name": f, "datatype": "FP64", "shape": [len(rows)], "data": [r[f] for r in rows]}
        for f in FEATURES
    ]
    path = "/v2/models/asset=pump-002/infer"
    asked = {"inputs": inputs, "outputs": [{"name": "predict_proba"}, {"name": "label"}]}
    body, calls = _calls(router, path, asked)
    assert calls == [len(rows)]  # two before
    out = {o["name"]: o for o in body["outputs"]}
    alone, _ = _calls(router, path, {"inputs": inputs, "outputs": [{"name": "label"}]})
    assert alone["outputs"] == [out["label"]]  # labelled by the model: the same answer
    proba = out["predict_proba"]["data"]
    t = out["label"]["parameters"]["threshold"]
    assert out["label"]["data"] == [1 if proba[2 * i + 1] >= t else 0 for i in range(len(rows))]
