"""LoadedModel: one way to score a version from Python, whatever the spec built.

``reg.load_model(key).predict(frame_or_rows)`` takes a DataFrame or a list of dicts for every
estimator and spec (numpy-fitted, scaled pipelines, categorical features fitted on a frame,
classifiers, the fallback), checks it as the router checks a request — the same messages —
and gives what the estimator gives for the input it was fitted on, with no warning (warnings
are errors in this suite, so scikit-learn's "X has feature names" would fail here).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import SENSORS, open_client, pumps_spec, users_spec

from manymodels.exceptions import DataError, InvalidRows
from manymodels.feature_schema import FeatureSchema
from manymodels.features import assemble, feature_kinds
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import sensor_readings, store_sales, user_activity
from serving.settings import Settings

SPECS: dict[str, tuple[dict[str, Any], Any]] = {
    "ridge, numpy": (
        {
            "name": "sales",
            "partition_by": ["store", "brand"],
            "target": "units",
            "time_column": "week",
            "features": ["price", "deal", "feat"],
            "candidates": [{"estimator": "sklearn.linear_model.Ridge"}],
        },
        lambda: store_sales(n_stores=2, weeks=40),
    ),
    "scaled trees and ridge": (
        {
            "name": "sales2",
            "partition_by": ["store", "brand"],
            "target": "units",
            "time_column": "week",
            "features": ["price", "deal", "feat"],
            "candidates": [
                {"estimator": "sklearn.linear_model.Ridge", "scale": True},
                {"estimator": "sklearn.tree.DecisionTreeRegressor", "params": {"max_depth": [3]}},
            ],
        },
        lambda: store_sales(n_stores=2, weeks=40),
    ),
    "categorical, dataframe": (
        users_spec(),
        lambda: user_activity(n_users=3, days=30),
    ),
    "classifier": (
        pumps_spec(
            features=SENSORS,
            metric="balanced_accuracy",
            candidates=[
                {
                    "estimator": "sklearn.linear_model.LogisticRegression",
                    "scale": True,
                    "params": {"max_iter": [1000]},
                }
            ],
        ),
        lambda: sensor_readings(n_assets=2, readings=60),
    ),
}


@pytest.fixture(scope="module", params=list(SPECS))
def trained(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Registry, pd.DataFrame, dict[str, Any]]]:
    spec, data = SPECS[request.param]
    df = data()
    root = tmp_path_factory.mktemp("loaded") / "registry"
    with Registry(root) as reg:
        summary = train(spec, df, reg, backend="local")
        assert summary.run.n_trained >= 2, summary.failures
        yield reg, df, spec


def _as_fitted(schema: FeatureSchema, df: pd.DataFrame) -> Any:
    """The input the estimator was fitted on, built by hand from the frame's columns."""
    kinds = feature_kinds(schema)
    values = np.column_stack(
        [df[n].to_numpy(np.float64) if num else np.zeros(len(df)) for n, num in kinds]
    )
    text = {j: df[n].astype(object).tolist() for j, (n, num) in enumerate(kinds) if not num}
    return assemble(schema, values, text)


def test_a_frame_and_a_list_of_dicts_give_what_the_estimator_gives(
    trained: tuple[Registry, pd.DataFrame, dict[str, Any]],
) -> None:
    reg, df, spec = trained
    for key in [p.key for p in reg.list_partitions()][:3]:
        loaded = reg.load_model(key)
        schema = loaded.version.schema
        rows = df.head(7)  # any rows with the features (and other columns) will do
        want = loaded.model.predict(_as_fitted(schema, rows))
        assert list(loaded.features) == list(spec["features"])
        np.testing.assert_array_equal(loaded.predict(rows), want)
        records = rows[spec["features"]].to_dict("records")
        np.testing.assert_array_equal(loaded.predict(records), want)
        one = loaded.model.predict(_as_fitted(schema, rows.head(1)))  # BLAS: 1 row ≠ 7 rows
        np.testing.assert_array_equal(loaded.predict(records[0]), one)
        if spec.get("task") == "classification":
            proba = loaded.predict_proba(records)
            assert proba.shape == (7, len(loaded.model.classes_))
            np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        else:
            with pytest.raises(AttributeError, match="has no predict_proba"):
                loaded.predict_proba(records)


def test_a_row_of_the_frame_is_one_row(
    trained: tuple[Registry, pd.DataFrame, dict[str, Any]],
) -> None:
    """``loaded.predict(df.iloc[0])`` was "a model scores a pandas DataFrame or a list of
    dicts, not Series", where ``load_model`` takes such a row for a key; a column of the
    frame (``df["price"]``) is refused saying how to give a frame."""
    reg, df, spec = trained
    loaded = reg.load_model(reg.list_partitions()[0].key)
    row = df.iloc[3]
    want = loaded.predict(df.iloc[[3]])
    np.testing.assert_array_equal(loaded.predict(row), want)
    if spec.get("task") == "classification":
        np.testing.assert_array_equal(loaded.predict_proba(row), loaded.predict_proba(df.iloc[[3]]))
    with pytest.raises(DataError, match=r"^a Series is read as one row \(df.iloc\[i\]\), and"):
        loaded.predict(df[spec["features"][0]])


def test_no_rows_are_no_predictions(
    trained: tuple[Registry, pd.DataFrame, dict[str, Any]],
) -> None:
    """An empty frame (a filter that matched nothing) or ``[]`` was a DataError: "could not
    score the rows: Found array with 0 sample(s) … while a minimum of 1 is required", where
    ``mm.score`` answers an empty table with an empty one."""
    reg, df, spec = trained
    loaded = reg.load_model(reg.list_partitions()[0].key)
    want = loaded.model.predict(_as_fitted(loaded.version.schema, df.head(2)))
    for rows in (df.head(0), [], df.head(0)[spec["features"]]):
        got = loaded.predict(rows)
        assert got.shape == (0,) and got.dtype == want.dtype
        if spec.get("task") == "classification":
            assert loaded.predict_proba(rows).shape == (0, len(loaded.classes))
    with pytest.raises(InvalidRows):  # an empty frame still needs the features' columns
        loaded.predict(df.head(0).drop(columns=spec["features"][0]))


def test_the_fallback_scores_the_same_way(
    trained: tuple[Registry, pd.DataFrame, dict[str, Any]],
) -> None:
    reg, df, _spec = trained
    assert reg.has_fallback()  # every spec above trains one (the default)
    loaded = reg.load_model("__fallback__")
    rows = df.head(4)
    want = loaded.model.predict(_as_fitted(loaded.version.schema, rows))
    np.testing.assert_array_equal(loaded.predict(rows), want)


def test_a_bad_cell_is_the_routers_422_message(tmp_path: Path) -> None:
    """The same rows sent to the router and to ``LoadedModel.predict``: the same problems."""
    spec, data = SPECS["ridge, numpy"]
    df = data()
    root = tmp_path / "registry"
    with Registry(root) as reg:
        train(spec, df, reg, backend="local")
        key = reg.list_partitions()[0].key
        loaded = reg.load_model(key)
    rows = [
        {"price": 2.0, "deal": 1, "feat": 0},
        {"price": "cheap", "deal": 1, "feat": 0},
        {"price": 2.0, "feat": 0},
    ]
    with pytest.raises(InvalidRows) as raised:
        loaded.predict(rows)
    with open_client(Settings(registry=root)) as client:
        r = client.post(f"/v1/partitions/{key}/predict", json={"rows": rows})
    assert r.status_code == 422
    assert [e["msg"] for e in r.json()["detail"]] == [e["msg"] for e in raised.value.errors]
    assert str(raised.value) == (  # counted as a table's rows, not a request's: from 1
        "data row 2 (counting from 1): feature 'price' must be a number, not text 'cheap' "
        "(and 1 more problem)"
    )
    # a frame whose column does not fit is checked cell by cell, for the same messages
    with pytest.raises(InvalidRows) as from_frame:
        loaded.predict(pd.DataFrame(rows[:2]))
    assert [e["msg"] for e in from_frame.value.errors] == [raised.value.errors[0]["msg"]]
    with pytest.raises(InvalidRows, match="feature 'deal' is missing"):
        loaded.predict(pd.DataFrame({"price": [1.0], "feat": [0]}))


def test_a_duration_cell_is_named_a_duration(tmp_path: Path) -> None:
    """Before: "feature 'price' must be a number, not Timedelta Timedelta('0 days 00:00:02')",
    the type's name said twice."""
    spec, data = SPECS["ridge, numpy"]
    with Registry(tmp_path / "registry") as reg:
        train(spec, data(), reg, backend="local")
        loaded = reg.load_model(reg.list_partitions()[0].key)
    rows = pd.DataFrame({"price": pd.to_timedelta([2], unit="s"), "deal": [1], "feat": [0]})
    with pytest.raises(InvalidRows) as raised:
        loaded.predict(rows)
    assert str(raised.value) == (
        "data row 1 (counting from 1): feature 'price' must be a number, not a duration "
        "Timedelta('0 days 00:00:02')"
    )


@pytest.mark.parametrize("data", ["price=2", 3.5, [1, 2], None])
def test_what_is_neither_a_frame_nor_rows_is_a_data_error(tmp_path: Path, data: Any) -> None:
    spec, make = SPECS["ridge, numpy"]
    with Registry(tmp_path / "r") as reg:
        train(spec, make(), reg, backend="local")
        loaded = reg.load_model(reg.list_partitions()[0].key)
    with pytest.raises(DataError, match="DataFrame"), warnings.catch_warnings():
        loaded.predict(data)


def test_a_frame_naming_a_column_twice_is_a_data_error(tmp_path: Path) -> None:
    """pandas answered ``df["price"]`` with a frame, which failed far inside with a bare
    AttributeError ('DataFrame' object has no attribute 'dtype')."""
    spec, make = SPECS["ridge, numpy"]
    with Registry(tmp_path / "r") as reg:
        train(spec, make(), reg, backend="local")
        loaded = reg.load_model(reg.list_partitions()[0].key)
    twice = pd.DataFrame([[2.1, 1, 0, 2.2]], columns=["price", "deal", "feat", "price"])
    with pytest.raises(DataError, match=r"^rows: column 'price' is named twice$"):
        loaded.predict(twice)


def test_numpy_numbers_in_rows_are_numbers(tmp_path: Path) -> None:
    """Rows built from numpy arrays carry np.float64 / np.int64 / np.bool_ values."""
    spec, make = SPECS["ridge, numpy"]
    with Registry(tmp_path / "r") as reg:
        train(spec, make(), reg, backend="local")
        loaded = reg.load_model(reg.list_partitions()[0].key)
    plain = loaded.predict([{"price": 2.5, "deal": 1, "feat": 0}])
    typed = loaded.predict(
        [{"price": np.float64(2.5), "deal": np.int64(1), "feat": np.bool_(False)}]
    )
    np.testing.assert_array_equal(typed, plain)
    np.testing.assert_array_equal(
        loaded.predict([{"price": np.float32(2.5), "deal": 1, "feat": 0}]), plain
    )


def test_probabilities_have_a_column_for_every_class_of_the_table(tmp_path: Path) -> None:
    """Partition q's rows hold two of the table's three classes: its model answered two
    columns, so column 0 was 'dog' for q and 'cat' for p. Now both answer the table's
    classes, 0 for one the partition never held — in Python and over HTTP."""
    rng = np.random.default_rng(0)
    n = 40
    frame = pd.DataFrame({"pid": ["p"] * n + ["q"] * n, "t": list(range(n)) * 2,
                          "x": rng.normal(size=2 * n)})  # fmt: skip
    frame["label"] = ["cat", "dog", "emu", "dog"] * (n // 4) + ["dog", "emu"] * (n // 2)
    spec = {
        "name": "animals", "task": "classification", "partition_by": ["pid"],
        "target": "label", "time_column": "t", "features": ["x"], "metric": "accuracy",
        "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression"}],
    }  # fmt: skip
    root = tmp_path / "reg"
    train(spec, frame, root, backend="local")
    row = [{"x": 0.3}]
    with Registry.open(root) as reg:
        p, q = reg.load_model("pid=p"), reg.load_model("pid=q")
        assert list(q.model.classes_) == ["dog", "emu"]
        assert p.classes == q.classes == ["cat", "dog", "emu"]
        own = q.model.predict_proba(np.array([[0.3]]))[0]
        assert q.predict_proba(row).tolist() == [[0.0, *own.tolist()]]
        assert p.predict_proba(row).shape == (1, 3)
    with open_client(Settings(registry=root)) as client:
        for path, body in [
            ("/v1/partitions/pid=q/predict", {"rows": row}),
            ("/v1/predict", {"rows": [{"pid": "q", **row[0]}]}),
        ]:
            r = client.post(path, params={"probabilities": "true"}, json=body)
            assert r.status_code == 200, r.text
            answer = r.json()
            proba = answer["probabilities"][0] if "probabilities" in answer else (
                answer["predictions"][0]["probabilities"]
            )  # fmt: skip
            assert proba == {"cat": 0.0, "dog": own[0], "emu": own[1]}
        meta = client.get("/v2/models/pid=q").json()  # the V2 metadata says so too
        (tensor,) = [t for t in meta["outputs"] if t["name"] == "predict_proba"]
        assert tensor["shape"] == [-1, 3]


def test_rows_the_estimator_refuses_are_a_data_error_worded_as_the_router(tmp_path: Path) -> None:
    """A NaN feature passes the schema (trees take it), but Ridge refuses it: predict raised
    scikit-learn's bare ValueError where the router answers a 422 naming the partition."""
    from manymodels.exceptions import DataError

    root = tmp_path / "reg"
    spec = {"name": "nan", "partition_by": ["pid"], "target": "y", "features": ["x"],
            "candidates": [{"estimator": "sklearn.linear_model.Ridge"}]}  # fmt: skip
    frame = pd.DataFrame({"pid": 1, "x": np.arange(30.0), "y": np.arange(30.0)})
    train(spec, frame, root, backend="local")
    with Registry.open(root) as reg:
        loaded = reg.load_model("pid=1")
        with pytest.raises(
            DataError, match=r"partition 'pid=1' v1 could not score the rows: Input X contains NaN"
        ):
            loaded.predict([{"x": float("nan")}])
