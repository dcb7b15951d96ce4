"""Scoring through the app (``TestClient``): keys, fallback, batches, validation errors.

Tests that only read share one router per module (``reader``, ``reading_server``: conftest);
a test that counts from zero, or needs other settings or registry, starts its own."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from routerkit import (
    KEY,
    SLASH_BRAND,
    SLASH_KEY,
    TOKEN,
    TWO_VERSIONS,
    expected,
    feature_rows,
    open_client,
)

from manymodels.registry import Registry
from serving.settings import Settings


def predict(client: Any, key: str, rows: list[dict[str, Any]], **params: Any) -> Any:
    return client.post(f"/v1/partitions/{key}/predict", json={"rows": rows}, params=params)


def test_one_partition_matches_the_registry_model(reader: Any, shared_registry: Path) -> None:
    rows = feature_rows(5)
    r = predict(reader, KEY, rows)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["partition"], body["served_by"], body["version"]) == (KEY, KEY, 1)
    assert body["fallback"] is False
    assert body["predictions"] == pytest.approx(expected(shared_registry, KEY, rows))


@pytest.mark.parametrize(
    "spelling",
    [
        SLASH_KEY,  # canonical, '/' sent as %2F
        "brand=dominick%27s%2Fown%20label,store=1",  # reordered
        quote("store=1,brand=dominick's/own label", safe="=,"),  # encoded by a generic client
    ],
)
def test_key_spellings_reach_the_same_partition(
    reader: Any, shared_registry: Path, spelling: str
) -> None:
    rows = feature_rows(2)
    body = predict(reader, spelling, rows).json()
    assert body["partition"] == SLASH_KEY and body["fallback"] is False
    assert body["predictions"] == pytest.approx(expected(shared_registry, SLASH_KEY, rows))


@pytest.mark.parametrize("spelling", ["store=2.0,brand=tropicana", "brand=tropicana,store=2.00"])
def test_a_number_written_as_a_decimal_reaches_its_partition(
    reader: Any, shared_registry: Path, spelling: str
) -> None:
    rows = feature_rows(2)
    body = predict(reader, spelling, rows).json()
    assert (body["partition"], body["served_by"], body["fallback"]) == (KEY, KEY, False)
    assert body["predictions"] == pytest.approx(expected(shared_registry, KEY, rows))
    # the partition's other routes follow the same spelling (GET answered 404)
    assert reader.get(f"/v1/partitions/{spelling}").json()["partition"] == KEY
    assert reader.get(f"/v1/partitions/{spelling}/explain").status_code == 200
    # … and a batch row names it as the per-key route does: canonical
    row = {**dict(part.split("=") for part in spelling.split(",")), **rows[0]}  # "2.0" as text
    (answer,) = reader.post("/v1/predict", json={"rows": [row]}).json()["predictions"]
    assert (answer["partition"], answer["served_by"], answer["fallback"]) == (KEY, KEY, False)


@pytest.mark.parametrize(
    "key",
    [
        "store=999,brand=tropicana",  # well-formed, never trained
        "store=1,brand=minute_maid",  # too few rows: skipped in training
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",  # ../../etc/passwd
        "store=..%2F..%2Fetc,brand=x",
        "not-a-key",
    ],
)
def test_unknown_keys_are_served_by_the_fallback(
    reader: Any, shared_registry: Path, key: str
) -> None:
    rows = feature_rows(3)
    r = predict(reader, key, rows)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["fallback"] is True and body["served_by"] == "__fallback__"
    assert body["partition"] != "__fallback__"  # what was asked for, not who answered
    assert body["predictions"] == pytest.approx(expected(shared_registry, "__fallback__", rows))


@pytest.mark.parametrize(
    ("key", "given", "named"),
    [
        ("stor=2,brand=x", ["stor", "brand"], "columns 'stor' and 'brand'"),
        ("store=2", ["store"], "column 'store'"),  # a column short of the spec's two
        ("brand=x,store=2,aisle=4", ["brand", "store", "aisle"],
         "columns 'brand', 'store' and 'aisle'"),
    ],
)  # fmt: skip
def test_a_key_of_no_specs_columns_is_a_422_not_the_fallbacks_answer(
    reader: Any, key: str, given: list[str], named: str
) -> None:
    """A key whose columns are no spec's (a misspelt column, one missing) was answered by the
    fallback model, a 200 that hid the client's mistake; now a 422 names the columns given and
    those the registry keys by, with a did-you-mean for a misspelt one. Nothing is scored.
    The names are quoted, as the hint and the 404's parenthesis quote them: they read "names
    the columns stor, brand, which …", a list that ran into the sentence around it."""
    fallback_rows = metric(reader, "manymodels_fallback_rows_total")
    r = predict(reader, key, feature_rows(2))
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["path", "key"] and error["type"] == "key_columns", error
    assert (error["given"], error["expected"]) == (given, [["store", "brand"]])
    hint = "; did you mean 'store' for 'stor'?" if "stor=" in key else ""
    assert error["msg"] == (
        f"the key '{key}' names the {named}, which no model in this registry is keyed by: "
        f"its keys name 'store' and 'brand'{hint}"
    )
    v2 = reader.get(f"/v2/models/{key}")  # V2 says the same
    assert v2.status_code == 400 and error["msg"] in v2.json()["error"], v2.text
    assert metric(reader, "manymodels_fallback_rows_total") == fallback_rows
    # the spec's columns, in any order, without a partition: the fallback's, as before
    r = predict(reader, "brand=x,store=2", feature_rows(2))
    assert r.status_code == 200 and r.json()["served_by"] == "__fallback__", r.text


TWICE = "names the column {!r} twice: a key names each of 'store' and 'brand' once"
STRAY = "has an empty part (a stray ','): a key reads 'store=…,brand=…'"
NO_EQUALS = (
    "has a part with no '=' ('{}'): a key reads 'store=…,brand=…' (a ',' in a value is sent as %2C)"
)
NO_NAME = "has a part with no column name ('{}'): a key reads 'store=…,brand=…'"


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("store=2,brand=tropicana,store=3", TWICE.format("store")),
        ("brand=x,store=2,brand=y", TWICE.format("brand")),
        ("store=2,brand=tropicana,", STRAY),
        (",store=2,brand=tropicana", STRAY),
        ("store=2,,brand=tropicana", STRAY),
        ("store=2,brand", NO_EQUALS.format("brand")),
        ("store=2,brand=minute,maid", NO_EQUALS.format("maid")),  # a value's ',' unencoded
        ("=2", NO_NAME.format("=2")),
        ("store=2,=tropicana", NO_NAME.format("=tropicana")),
        ("store=2,brand=tropicana,=2", NO_NAME.format("=2")),
    ],
)
def test_a_key_misshapen_is_a_422_not_the_fallbacks_answer(
    reader: Any, key: str, said: str
) -> None:
    """A key naming one column twice (which store: 2 or 3?), with an empty part (a ',' too
    many) or a part lacking its '=' or its column name (``store=2,brand``, ``=2``) was
    answered by the fallback model, a 200 for a partition the registry serves with its own
    model, the client's mistake hidden as a misspelt column's was before 4287b14: now a 422
    at the path's key saying what is wrong, as V2 says it too. Nothing is scored."""
    fallback_rows = metric(reader, "manymodels_fallback_rows_total")
    r = predict(reader, key, feature_rows(2))
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["path", "key"] and error["type"] == "key_columns", error
    assert error["msg"] == f"the key '{key}' {said}"
    v2 = reader.get(f"/v2/models/{key}")
    assert v2.status_code == 400 and error["msg"] in v2.json()["error"], v2.text
    assert metric(reader, "manymodels_fallback_rows_total") == fallback_rows
    assert predict(reader, "store=2,brand=tropicana", feature_rows(2)).status_code == 200


def test_a_key_percent_encoded_whole_is_a_422_naming_it_as_sent(reader: Any) -> None:
    """``store%3D2%2Cbrand%3Dtropicana`` (``quote(key, safe="")``: a client encoding the key's
    '=' and ',' too) was answered by the fallback model, a 200 for a partition the registry
    serves with its own model. Now a 422 at the path's key naming the key to send; nothing
    is scored."""
    fallback_rows = metric(reader, "manymodels_fallback_rows_total")
    sent = "store%3D2%2Cbrand%3Dtropicana"
    r = predict(reader, sent, feature_rows(2))
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["path", "key"] and error["type"] == "key_columns", error
    assert error["msg"] == (
        f"the key '{sent}' is percent-encoded whole, its '=' and ',' too: send it as "
        "'store=2,brand=tropicana' (the values are encoded, not the '=' and ',' between them)"
    )
    assert error["key"] == "store=2,brand=tropicana"
    assert metric(reader, "manymodels_fallback_rows_total") == fallback_rows
    r = predict(reader, "store%3D2", feature_rows(1))  # no key of the registry's columns
    assert r.status_code == 200 and r.json()["served_by"] == "__fallback__", r.text


@pytest.mark.parametrize(
    ("sent", "escapes"),
    [("store=2,brand=%FF", "%FF"), ("store=%C3,brand=x", "%C3"), ("%FF", "%FF")],
)
def test_a_key_whose_escapes_are_no_utf8_is_a_422_not_the_fallbacks_answer(
    reading_server: str, sent: str, escapes: str
) -> None:
    """``brand=%FF`` (no UTF-8) was read as U+FFFD and answered by the fallback model, a 200
    for a value the client never sent (``"partition": "store=2,brand=%EF%BF%BD"``); now a 422
    at the path's key naming the escapes, over real HTTP, and V2 says the same."""
    r = httpx.post(f"{reading_server}/v1/partitions/{sent}/predict", json={"rows": feature_rows(1)})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["path", "key"] and error["type"] == "key_columns", error
    assert error["msg"] == (
        f"the key '{sent}' holds '{escapes}', which is no UTF-8 text: percent-encode a key's "
        "values as UTF-8 ('ü' is %C3%BC)"
    )
    v2 = httpx.get(f"{reading_server}/v2/models/{sent}")
    assert v2.status_code == 400 and error["msg"] in v2.json()["error"], v2.text
    r = httpx.post(
        f"{reading_server}/v1/partitions/store=2,brand=%C3%BC/predict",
        json={"rows": feature_rows(1)},
    )
    assert r.status_code == 200 and r.json()["served_by"] == "__fallback__", r.text


def test_unknown_key_without_fallback_is_404(trained_no_fallback: Path) -> None:
    settings = Settings(registry=trained_no_fallback)
    with open_client(settings) as client:
        r = predict(client, "store=999,brand=x", feature_rows(1))
        assert r.status_code == 404
        assert "store=999,brand=x" in r.json()["detail"]
        batch = [{"store": 1, "brand": "tropicana", **feature_rows(1)[0]}]
        batch.append({"store": 77, "brand": "x", **feature_rows(1)[0]})
        r = client.post("/v1/predict", json={"rows": batch})
        assert r.status_code == 404 and "store=77,brand=x" in r.json()["detail"]


MISSPELT = "store=3,brand=minute maid"  # the partition is store=3,brand=minute_maid


def metric(client: Any, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_fallback_false_makes_a_misspelt_key_a_404_naming_it(reader: Any) -> None:
    rows = feature_rows(2)
    assert predict(reader, MISSPELT, rows).json()["served_by"] == "__fallback__"  # default
    for params in ({"fallback": "false"}, {"fallback": "false", "alias": "production"}):
        r = predict(reader, MISSPELT, rows, **params)
        assert r.status_code == 404, r.text
        assert "'store=3,brand=minute%20maid'" in r.json()["detail"]
        assert "fallback=false" in r.json()["detail"]
    known = predict(reader, "store=3,brand=minute_maid", rows, fallback="false")
    assert known.status_code == 200 and known.json()["fallback"] is False
    asked = predict(reader, "__fallback__", rows, fallback="false")  # asked for, not fallen to
    assert asked.status_code == 200 and asked.json()["served_by"] == "__fallback__"


def test_fallback_false_on_a_batch_is_one_404_and_scores_nothing(client: Any) -> None:
    feats = feature_rows(4)
    rows = [
        {"store": 2, "brand": "tropicana", **feats[0]},
        {"store": 3, "brand": "minute maid", **feats[1]},
        {"store": 77, "brand": "tropicana", **feats[2]},
        {"store": 3, "brand": "minute maid", **feats[3]},
    ]
    r = client.post("/v1/predict", json={"rows": rows}, params={"fallback": False})
    assert r.status_code == 404, r.text
    detail = r.json()["detail"]
    assert "'store=3,brand=minute%20maid', 'store=77,brand=tropicana'" in detail  # row order
    assert "fallback=false" in detail
    assert metric(client, "manymodels_predicted_rows_total") == 0
    ok = client.post("/v1/predict", json={"rows": rows[:1]}, params={"fallback": False})
    assert ok.status_code == 200 and ok.json()["predictions"][0]["fallback"] is False


def test_fallback_answers_are_counted_in_metrics(client: Any) -> None:
    assert metric(client, "manymodels_fallback_uses_total") == 0
    predict(client, MISSPELT, feature_rows(3))  # 1 partition, 3 rows by the fallback
    feats = feature_rows(4)
    batch = [
        {"store": 2, "brand": "tropicana", **feats[0]},  # its own model
        {"store": 77, "brand": "x", **feats[1]},
        {"store": 78, "brand": "x", **feats[2]},
        {"store": 77, "brand": "x", **feats[3]},
    ]
    assert client.post("/v1/predict", json={"rows": batch}).status_code == 200
    predict(client, "__fallback__", feature_rows(1))  # asked for by name: not a fallback
    predict(client, MISSPELT, feature_rows(1), fallback="false")  # a 404: nothing answered
    assert metric(client, "manymodels_fallback_uses_total") == 3
    assert metric(client, "manymodels_fallback_rows_total") == 6
    assert metric(client, "manymodels_predicted_rows_total") == 8
    assert "manymodels_fallback_uses_total{" not in client.get("/metrics").text  # no labels


def test_a_specific_version_or_alias(reader: Any, shared_registry: Path) -> None:
    key = TWO_VERSIONS[0]
    rows = feature_rows(3)
    v1 = predict(reader, key, rows).json()
    v2 = predict(reader, key, rows, version=2).json()
    cand = predict(reader, key, rows, alias="candidate").json()
    assert v1["version"] == 1 and v2["version"] == 2 and cand["version"] == 2
    assert v2["predictions"] == pytest.approx(expected(shared_registry, key, rows, version=2))
    assert v2["predictions"] != pytest.approx(v1["predictions"])
    assert predict(reader, key, rows, version=9).status_code == 404
    assert predict(reader, key, rows, alias="nope").status_code == 404
    assert predict(reader, "store=999,brand=x", rows, version=1).status_code == 404
    assert predict(reader, key, rows, version=1, alias="candidate").status_code == 422


def test_many_partitions_in_one_batch_keep_row_order(reader: Any, shared_registry: Path) -> None:
    keys = [
        ({"store": 2, "brand": "tropicana"}, KEY),
        ({"store": 1, "brand": SLASH_BRAND}, SLASH_KEY),
        ({"store": 99, "brand": "tropicana"}, None),  # unknown: fallback
        ({"store": "3", "brand": "minute_maid"}, "store=3,brand=minute_maid"),
    ]
    feats = feature_rows(12)
    rows = [{**keys[i % 4][0], **feats[i]} for i in range(12)]
    r = reader.post("/v1/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    answers = r.json()["predictions"]
    assert len(answers) == 12
    for i, answer in enumerate(answers):
        _, key = keys[i % 4]
        truth = expected(shared_registry, key or "__fallback__", [feats[i]])[0]
        assert answer["prediction"] == pytest.approx(truth)
        assert answer["fallback"] is (key is None)
        assert answer["partition"] == (key or "store=99,brand=tropicana")
        assert answer["served_by"] == (key or "__fallback__")
        assert answer["version"] == 1


def test_forecast_names_who_answered_like_predictions(reader: Any) -> None:
    r = reader.post(f"/v1/partitions/{KEY}/forecast", json={"horizon": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["partition"], body["served_by"], body["version"]) == (KEY, KEY, 1)
    assert body["fallback"] is False and len(body["forecast"]) == 2


def test_bad_rows_are_422_naming_the_column(reader: Any) -> None:
    missing = predict(reader, KEY, [{"price": 2.0, "deal": 1}])
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "rows", 0, "feat"]
    wrong = predict(reader, KEY, [{"price": "two", "deal": 1, "feat": 0}])
    assert wrong.status_code == 422
    assert "price" in wrong.json()["detail"][0]["msg"]
    empty = predict(reader, KEY, [])
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body", "rows"]
    no_rows = reader.post(f"/v1/partitions/{KEY}/predict", json={"data": []})
    assert no_rows.status_code == 422
    not_json = reader.post(
        f"/v1/partitions/{KEY}/predict", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # numpy's
def test_a_value_a_model_refuses_is_a_422_on_the_batch_endpoint_too(tmp_path: Path) -> None:
    """A tree scores float32: 1e39 is past its range, and scikit-learn refuses the row. Once
    the model is in memory the batch takes its plain path, which must refuse as the careful
    one does (a 422 naming the partition), never a 500."""
    from manymodels.pipeline import train
    from manymodels.samples import synthetic

    root = tmp_path / "reg"
    spec = {
        "name": "trees",
        "partition_by": ["pid"],
        "target": "y",
        "features": ["x0", "x1"],
        "candidates": [{"estimator": "sklearn.tree.DecisionTreeRegressor"}],
        "selection": {"naive_candidate": False},
        "fallback": {"enabled": False},
    }
    train(spec, synthetic(2, 30, n_features=2), root, backend="local")
    with open_client(Settings(registry=root)) as c:
        for rows in ([{"pid": 1, "x0": 1e39, "x1": 0.0}], [{"pid": p, "x0": 1e39, "x1": 0.0}
                                                            for p in (0, 1)]):  # fmt: skip
            for _ in range(2):  # the model loading, then in memory
                r = c.post("/v1/predict", json={"rows": rows})
                assert r.status_code == 422, r.text
                assert "could not score the rows" in r.json()["detail"]
        assert c.post("/v1/predict", json={"rows": [{"pid": 1, "x0": 1.0, "x1": 0.0}]}).is_success


def test_batch_rows_need_their_key_columns(reader: Any) -> None:
    rows = [{"store": 2, "brand": "tropicana", **feature_rows(1)[0]}, {"store": 2, "price": 1.0}]
    r = reader.post("/v1/predict", json={"rows": rows})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "rows", 1, "brand"]


def test_a_batch_row_with_a_misspelt_key_column_is_told_the_column_it_meant(reader: Any) -> None:
    """A row of ``/v1/predict`` naming ``stor`` for the key column ``store`` was told only
    "key column 'store' is missing", where ``/v1/partitions/stor=2,…`` says "did you mean
    'store' for 'stor'?": the batch's 422 now says the same of each such row."""
    rows = [{"stor": 2, "brand": "tropicana", **feature_rows(1)[0]}, {"Brand": "x", "store": 1}]
    r = reader.post("/v1/predict", json={"rows": rows})
    assert r.status_code == 422, r.text
    first, second = r.json()["detail"]
    assert first["loc"] == ["body", "rows", 0, "store"]
    assert second["loc"] == ["body", "rows", 1, "brand"]
    assert first["msg"].endswith("; did you mean 'store' for 'stor'?"), first
    assert second["msg"].endswith("; did you mean 'brand' for 'Brand'?"), second
    # a row that has no column close to the missing one is told no more than before
    r = reader.post("/v1/predict", json={"rows": [{"store": 2, "price": 1.0}]})
    assert r.json()["detail"][0]["msg"] == "key column 'brand' is missing (rows carry store, brand)"


def test_batch_row_limit(registry_path: Path) -> None:
    settings = Settings(registry=registry_path, max_batch_rows=3)
    with open_client(settings) as client:
        assert predict(client, KEY, feature_rows(3)).status_code == 200
        r = predict(client, KEY, feature_rows(4))
        assert r.status_code == 422 and "limit of 3" in r.json()["detail"][0]["msg"]


def test_classifier_returns_classes_and_probabilities(trained_classifier: Path) -> None:
    row = {
        "temperature": 71.0,
        "vibration": 2.2,
        "pressure": 2.3,
        "rpm": 1880.0,
        "hours_since_service": 12.0,
    }
    with Registry.open(trained_classifier) as reg:
        key = next(p.key for p in reg.list_partitions() if p.key != "__fallback__")
        model = reg.load_model(key).model
    X = np.array([list(row.values())])
    with open_client(Settings(registry=trained_classifier)) as client:
        body = predict(client, key, [row], probabilities="true").json()
        assert body["predictions"] == model.predict(X).tolist()
        (proba,) = body["probabilities"]
        assert set(proba) == {str(c) for c in model.classes_}
        assert sum(proba.values()) == pytest.approx(1.0)
        batch = client.post(
            "/v1/predict",
            params={"probabilities": True},
            json={"rows": [{"asset": key[6:], **row}]},
        ).json()["predictions"][0]
        assert batch["prediction"] == body["predictions"][0] and batch["probabilities"] == proba


def test_threshold_labels_binary_classifiers_only(reader: Any, trained_classifier: Path) -> None:
    """Without a spec's [decision] rule no label is answered unless asked (?threshold=); at
    0.5 the labels are LogisticRegression's own predictions. A regression cannot be labelled."""
    row = {"temperature": 71.0, "vibration": 2.2, "pressure": 2.3, "rpm": 1880.0,
           "hours_since_service": 12.0}  # fmt: skip
    with Registry.open(trained_classifier) as reg:
        key = next(p.key for p in reg.list_partitions() if p.key != "__fallback__")
        model = reg.load_model(key).model
    with open_client(Settings(registry=trained_classifier)) as classifier:
        plain = predict(classifier, key, [row]).json()
        assert plain["labels"] is None and plain["threshold"] is None
        asked = predict(classifier, key, [row], threshold=0.5).json()
        assert asked["threshold"] == 0.5
        assert asked["labels"] == model.predict(np.array([list(row.values())])).tolist()
    regression = predict(reader, KEY, feature_rows(1), threshold=0.5)
    assert regression.status_code == 422
    assert "not a classifier" in str(regression.json()["detail"])


def test_categorical_features_score_as_a_dataframe(trained_categorical: Path) -> None:
    row = {"plan": "pro", "sessions": 3, "pages": 14, "notifications": 2, "weekend": 0}
    with Registry.open(trained_categorical) as reg:
        loaded = reg.load_model("user_id=u0001")
    assert loaded.version.feature_schema["input"] == "dataframe"
    with open_client(Settings(registry=trained_categorical)) as client:
        r = predict(client, "user_id=u0001", [row])
        assert r.status_code == 200, r.text
        import pandas as pd

        truth = loaded.model.predict(pd.DataFrame([row]))
        assert r.json()["predictions"] == pytest.approx(truth.tolist())
        bad = predict(client, "user_id=u0001", [{**row, "plan": 3}])
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "plan"


@pytest.mark.parametrize("inline", [True, False, None])
def test_a_cache_miss_loads_on_the_event_loop_only_when_told_or_local(
    registry_path: Path, inline: bool | None
) -> None:
    """A miss is loaded inline (local registry, or ``inline_loads=True``) or in a worker
    thread (``inline_loads=False``); both give the registry model's answer."""
    threads: list[str] = []
    with open_client(Settings(registry=registry_path, inline_loads=inline)) as client:
        service = client.app.state.service
        load = service.cache.loader

        def spy(key: str, version: int) -> Any:
            threads.append(threading.current_thread().name)
            return load(key, version)

        service.cache.loader = spy
        rows = feature_rows(2)
        body = predict(client, KEY, rows).json()
        assert body["predictions"] == pytest.approx(expected(registry_path, KEY, rows))
        predict(client, KEY, rows)  # a hit: no second load
    assert len(threads) == 1
    assert threads[0].startswith("AnyIO worker") == (inline is False), threads


def test_after_a_slow_load_misses_go_to_threads_until_loads_are_quick_again(
    registry_path: Path,
) -> None:
    """With a cache of one model and two keys taken in turn, every request is a miss."""
    keys = [KEY, SLASH_KEY]
    threads: list[str] = []
    with open_client(Settings(registry=registry_path, cache_size=1)) as client:
        service = client.app.state.service
        service.coefficients.max_size = 0  # no evicted model answers from its coefficients
        load, read = service.cache.loader, service.registry.artifacts.get

        def spy(key: str, version: int) -> Any:
            threads.append(threading.current_thread().name)
            return load(key, version)

        def slow_first_read(digest: str) -> bytes:  # a big model, or a disk that stalled once
            if len(threads) == 1:
                time.sleep(0.05)
            return read(digest)

        service.cache.loader = spy
        service.registry.artifacts.get = slow_first_read
        for i in range(100):  # until a miss loads inline again (~10 quick loads), at most 100
            assert predict(client, keys[i % 2], feature_rows(1)).status_code == 200
            if i >= 2 and not threads[-1].startswith("AnyIO worker"):
                break
    in_thread = [name.startswith("AnyIO worker") for name in threads]
    assert len(in_thread) == i + 1  # every request was a miss
    assert not in_thread[0]  # quick so far: inline
    assert in_thread[1]  # the slow load sends the next miss to a thread
    assert not in_thread[-1], in_thread  # quick loads since: inline again


def _daily_registry(root: Path, **spec: Any) -> Path:
    """Two partitions of 40 days (2024-01-01 to 2024-02-09) and a fallback, deriving ``spec``'s
    calendar parts and lags from their time column ``t``."""
    import pandas as pd
    from factories import linear_frame, spec_dict

    from manymodels.pipeline import train

    df = linear_frame(2, 40)
    df["t"] = list(pd.date_range("2024-01-01", periods=40, freq="D")) * 2
    train(spec_dict(**spec), df, root, backend="local")
    return root


def test_a_key_without_a_model_gives_its_time_for_the_fallbacks_calendar_parts(
    tmp_path: Path,
) -> None:
    """With ``calendar`` in the spec, a row for a key the fallback answers could not give its
    time instead of the calendar parts, as a partition's row does: a 422 "feature
    't_day_of_week' is missing" for every new key, on /v1 as on V2. A date that is not ISO
    8601, which training refuses, is a 422 naming it (it was read month first, a 200)."""
    root = _daily_registry(tmp_path / "reg", calendar=["day_of_week"])
    row = {"t": "2024-04-11", "x0": 0.5, "x1": -1.0}
    with Registry.open(root) as reg:
        want = reg.load_model("__fallback__").predict([{**row, "t_day_of_week": 3}]).tolist()
    with open_client(Settings(registry=root)) as client:
        one = predict(client, "pid=99", [row])
        assert one.status_code == 200, one.text
        assert (one.json()["served_by"], one.json()["predictions"]) == ("__fallback__", want)
        batch = client.post("/v1/predict", json={"rows": [{"pid": 0, **row}, {"pid": 99, **row}]})
        assert batch.status_code == 200, batch.text
        assert batch.json()["predictions"][1]["prediction"] == want[0]
        tensors = [{"name": n, "datatype": d, "shape": [1], "data": [row[n]]}
                   for n, d in (("t", "BYTES"), ("x0", "FP64"), ("x1", "FP64"))]  # fmt: skip
        v2 = client.post("/v2/models/pid=99/infer", json={"inputs": tensors})
        assert v2.status_code == 200, v2.text
        assert v2.json()["outputs"][0]["data"] == want
        for key in ("pid=0", "pid=99"):
            bad = predict(client, key, [{**row, "t": "04/11/2024"}])
            assert bad.status_code == 422, bad.text
            assert "'04/11/2024' is not an ISO 8601 date" in bad.json()["detail"][0]["msg"]


def test_a_fallback_row_in_a_batch_is_not_given_a_partitions_lags(tmp_path: Path) -> None:
    """A batch row of a key the fallback answers, giving its time and not its lag, was scored
    with the lag of the partition whose rows it shared an input with (that partition's
    history): a 200 made of another series' target. The fallback has no series: 422."""
    root = _daily_registry(tmp_path / "reg", calendar=["day_of_week"], lags=[1])
    full = {"t": "2024-02-10", "x0": 0.5, "x1": -1.0, "t_day_of_week": 5, "y_lag1": 1.0}
    new = {"pid": 99, "t": "2024-02-10", "x0": 0.5, "x1": -1.0}
    with open_client(Settings(registry=root)) as client:
        r = client.post("/v1/predict", json={"rows": [{"pid": 0, **full}, new]})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "rows", 1, "y_lag1"]


# every route that takes a key and never serves the fallback: method, path after the key,
# a body (the rows filled in), and whether it asks for the admin token
NO_FALLBACK_ROUTES = [
    ("GET", "", None, False),
    ("GET", "/explain", None, False),
    ("POST", "/predict?fallback=false", "rows", False),
    ("POST", "/actuals", "actuals", False),
    ("POST", "/forecast", {"horizon": 2}, False),
    ("POST", "/promote", {"version": 1}, True),
    ("POST", "/rollback", {}, True),
    ("POST", "/retrain", "actuals", True),
]


@pytest.mark.parametrize("sent", ["store=2,brand", "=2", "store=2,brand=%FF", "store=2,,brand=x"])
def test_a_key_misshapen_is_the_same_422_on_every_route(reading_server: str, sent: str) -> None:
    """The routes that never serve the fallback (a partition's page, explain, predict with
    ``fallback=false``, actuals, forecast, promote, rollback, retrain) answered a misshapen
    key with a 404 ("no partition … in the registry"), where the fallback's routes answered
    a 422 saying what is wrong with it. Now each answers that 422, the same body, over real
    HTTP. A key with an empty value (``brand=``) is a key: training writes a partition so
    for an empty text value, and it is a 404 there as any key of no partition."""
    rows = feature_rows(1)
    bodies = {"rows": {"rows": rows}, "actuals": {"rows": [{**rows[0], "units": 1.0}]}}
    said = httpx.post(f"{reading_server}/v1/partitions/{sent}/predict", json={"rows": rows})
    assert said.status_code == 422, said.text
    for method, path, body, admin in NO_FALLBACK_ROUTES:
        r = httpx.request(
            method,
            f"{reading_server}/v1/partitions/{sent}{path}",
            json=bodies.get(body, body) if isinstance(body, str) else body,
            headers={"Authorization": f"Bearer {TOKEN}"} if admin else {},
        )
        assert (r.status_code, r.json()) == (422, said.json()), (path, r.text)
    empty = httpx.get(f"{reading_server}/v1/partitions/store=2,brand=")
    assert empty.status_code == 404 and "no partition 'store=2,brand='" in empty.text, empty.text


def test_a_lag_models_row_without_a_time_is_a_422_naming_the_time(tmp_path: Path) -> None:
    """Over real HTTP: a row that gives no time (left out, or null) for a lag model was a 422
    "feature 'y_lag1' is missing" (or "'t' None is not one of the periods"), never naming
    what it lacked. The 422's JSON names the row and the time column now, on both routes."""
    from serving.local import running_server

    root = _daily_registry(tmp_path / "reg", lags=[1, 2])
    row = {"x0": 0.5, "x1": -1.0}
    with running_server(Settings(registry=root)) as url:
        sent = [
            (f"{url}/v1/partitions/pid=0/predict", [{"t": "2024-02-10", **row}, row], 1),
            (f"{url}/v1/partitions/pid=0/predict", [{"t": None, **row}], 0),
            (f"{url}/v1/predict", [{"pid": 1, "t": "2024-02-10", **row}, {"pid": 0, **row}], 1),
        ]
        for at, rows, bad in sent:
            r = httpx.post(at, json={"rows": rows}, timeout=60)
            assert r.status_code == 422, r.text
            assert r.json()["detail"] == [
                {
                    "loc": ["body", "rows", bad, "t"],
                    "msg": "the row has no 't', and its 'y_lag1', 'y_lag2' are computed from "
                    "it: send its 't', or these features",
                    "type": "value_error",
                }
            ]
