"""A batch's rows of many partitions on one global LightGBM are scored in one call
(``serving.shared_models``), each row the same bits as its own partition's answer: on the
careful path (``batch.score``, while models load) and the plain one (all in memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from routerkit import open_client

from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.training.booster_input import booster_predict
from serving import shared_models
from serving.served import load_served
from serving.settings import Settings
from serving.shared_models import predicted_together

pytest.importorskip("lightgbm")

SHOPS = [f"s{k:02d}" for k in range(12)]


def panel(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for k, shop in enumerate(SHOPS):
        x = rng.normal(size=(30, 2))
        y = x @ [2.0, -1.0] + k + rng.normal(0, 0.1, 30)
        days = pd.date_range("2024-01-01", periods=30)
        frames.append(pd.DataFrame({"shop": shop, "day": days, "a": x[:, 0], "b": x[:, 1], "y": y}))
    return pd.concat(frames, ignore_index=True)


def spec(estimator: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "shops",
        "partition_by": ["shop"],
        "target": "y",
        "time_column": "day",
        "features": ["a", "b"],
        "validation": {"strategy": "last", "size": 5},
        "fallback": {"enabled": False},
        "selection": {"naive_candidate": False},
        "candidates": [{"estimator": estimator, "scope": "global", "params": params}],
    }


LGBM = ("lightgbm.LGBMRegressor", {"n_estimators": 20, "min_child_samples": 5, "verbose": -1})


@pytest.fixture(scope="module")
def on_lightgbm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shared") / "reg"
    train(spec(*LGBM), panel(), root, backend="local")
    return root


def rows_of(shops: list[str], seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [{"shop": s, "a": float(rng.normal()), "b": float(rng.normal())} for s in shops]


def test_a_batch_over_partitions_on_one_global_model_answers_as_each_partition_does(
    on_lightgbm: Path,
) -> None:
    shops = ["s03", *SHOPS, "s07", "s03", "s11", "s03"]  # repeats, apart from each other
    rows = rows_of(shops)
    batches = []
    with open_client(Settings(registry=on_lightgbm)) as client:
        for _ in range(2):  # loading (``batch.score``), then every model in memory (plain)
            r = client.post("/v1/predict", json={"rows": rows})
            assert r.status_code == 200, r.text
            answers = r.json()["predictions"]
            assert [a["partition"] for a in answers] == [f"shop={s}" for s in shops]
            batches.append([a["prediction"] for a in answers])
        own = []
        for row in rows:
            one = client.post(f"/v1/partitions/shop={row['shop']}/predict", json={"rows": [row]})
            assert one.status_code == 200, one.text
            own.append(one.json()["predictions"][0])
    assert batches[0] == own  # the same bits, row by row, on either path
    assert batches[1] == own
    assert len(set(own)) > len(SHOPS) // 2  # each row its own partition's key


def served_on(root: Path, shops: list[str]) -> tuple[np.ndarray, list[Any]]:
    with Registry(root) as reg:
        served = [
            load_served(reg, f"shop={s}", reg.get_version(f"shop={s}").version) for s in shops
        ]
    return np.array([[r["a"], r["b"]] for r in rows_of(shops)]), served


def test_one_call_predicts_every_partitions_rows_in_order(on_lightgbm: Path) -> None:
    X, served = served_on(on_lightgbm, [*SHOPS[:5], "s01", "s01"])
    rows = [[0, 6], [1, 5], [2], [3], [4]]  # s00 … s04, s01 with two more rows
    ((group, got),) = list(predicted_together(served[:5], X, rows))
    assert group == [0, 1, 2, 3, 4]
    own = [float(v) for m, r in zip(served, rows, strict=False) for v in m.predict(X[r])]
    assert got.tolist() == own


def test_a_global_model_the_booster_path_does_not_serve_is_left_to_each_partition(
    tmp_path: Path,
) -> None:
    root = tmp_path / "reg"
    train(spec("sklearn.linear_model.Ridge", {"alpha": 0.1}), panel(), root, backend="local")
    X, served = served_on(root, SHOPS[:4])
    assert list(predicted_together(served, X, [[0], [1], [2], [3]])) == []
    with open_client(Settings(registry=root)) as client:  # and the batch still answers
        r = client.post("/v1/predict", json={"rows": rows_of(SHOPS[:4])})
        assert r.status_code == 200, r.text


def test_partitions_with_a_categorical_feature_answer_as_the_frame_in_a_batch_or_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A global LightGBM over a text feature: its rows go in one matrix too (the category's
    code beside the key's), each the same bits as the frame LightGBM reads gives."""
    root = tmp_path / "reg"
    data = panel().assign(kind=lambda d: np.where(d["a"] > 0, "up", "down"))
    data["y"] += np.where(data["kind"] == "up", 3.0, 0.0)
    train({**spec(*LGBM), "features": ["a", "b", "kind"]}, data, root, backend="local")
    shops = ["s03", *SHOPS[:6], "s03"]
    rows = [
        {**r, "kind": kind}
        for r, kind in zip(rows_of(shops, 2), ["up", "down", "sideways", None] * 2, strict=True)
    ]  # a category the model never saw, and a missing one
    with Registry(root) as reg:
        model = reg.load_model("shop=s00").model.model  # the run's one GlobalModel
    frame = pd.DataFrame(rows)[["a", "b", "kind"]]
    expected = model.estimator.predict(model.frame(frame, [shops]))
    served = served_on(root, shops)[1]
    spans = [[i] for i in range(len(shops))]
    ((group, got),) = list(predicted_together(served, frame, spans))
    assert group == list(range(len(shops))) and got.tolist() == expected.tolist()
    calls: list[int] = []  # the one booster call per batch, counted as it passes through

    def counted(model: Any, X: Any, keys: Any) -> Any:
        calls.append(len(X))
        return booster_predict(model, X, keys)

    monkeypatch.setattr(shared_models, "booster_predict", counted)
    with open_client(Settings(registry=root)) as client:
        for _ in range(2):  # models loading, then in memory
            r = client.post("/v1/predict", json={"rows": rows})
            assert r.status_code == 200, r.text
            assert [a["prediction"] for a in r.json()["predictions"]] == expected.tolist()
        assert calls == [len(rows), len(rows)]  # every row of the batch in one call, twice
        for row, value in zip(rows, expected, strict=True):
            one = client.post(f"/v1/partitions/shop={row['shop']}/predict", json={"rows": [row]})
            assert one.status_code == 200, one.text
            assert one.json()["predictions"][0] == value
