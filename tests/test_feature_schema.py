"""``manymodels.feature_schema``: a version's stored schema read as typed records."""

from __future__ import annotations

import json
from typing import Any

import pytest
from factories import imported_by

from manymodels.feature_schema import (
    FeatureSchema,
    ForecastPlan,
    Predicts,
    predicts,
    transform_kind_json,
)
from manymodels.registry.rows import encode_json


def test_a_schema_without_a_recorded_transform_names_none() -> None:
    for doc in ({}, {"history": None}, {"history": {"time": 3}}, {"history": []}):
        schema = FeatureSchema.parse(doc)
        assert schema.transform is None
        assert schema.transform_kind == "none"
        assert transform_kind_json(json.dumps(doc)) == "none"
    assert transform_kind_json(None) == "none"
    assert transform_kind_json("") == "none"


def test_the_recorded_transform_and_its_kind_are_read_from_the_history() -> None:
    transform = {"kind": "difference", "last": 4.0}
    doc = {"history": {"time": 3, "transform": transform}}
    assert FeatureSchema.parse(doc).transform == transform
    assert FeatureSchema.parse(doc).transform_kind == "difference"
    assert transform_kind_json(json.dumps(doc)) == "difference"
    scaled = {"history": {"transform": {"kind": "scale", "center": 1.0, "spread": 2.0}}}
    assert FeatureSchema.parse(scaled).transform_kind == "scale"


def test_naming_a_transform_imports_neither_numpy_nor_pandas() -> None:
    statement = (
        "from manymodels.feature_schema import FeatureSchema\n"
        "FeatureSchema.parse({'history': {'transform': {'kind': 'scale'}}}).transform_kind"
    )
    assert imported_by(statement, ["numpy", "pandas"]) == []
    assert imported_by("import numpy", ["numpy", "pandas"]) == ["numpy"]  # the probe sees them


def test_an_older_version_lacks_later_parts_which_read_as_their_defaults() -> None:
    doc = {
        "features": ["price", "sales_lag1"],
        "dtypes": {"price": "float64", "sales_lag1": "float64"},
        "categorical": [],
        "target": "sales",
        "task": "regression",
        "partition_by": ["store"],
        "time_column": "week",
        "forecast": {"frequency": "W-SUN", "calendar": {}, "lags": {"sales_lag1": 1},
                     "exogenous": ["price"]},
    }  # fmt: skip
    schema = FeatureSchema.parse(doc)
    assert schema.input == "numpy" and schema.history is None and schema.intervals is None
    assert schema.forecast == ForecastPlan(
        frequency="W-SUN", exogenous=["price"], lags={"sales_lag1": 1}
    )
    assert schema.forecast.rolling == {} and schema.forecast.changes == {}
    assert schema.forecast.transform == "none" and schema.forecast.timezone is None
    assert schema.derived == ["sales_lag1"]
    assert not schema.may_derive  # no history: rows cannot leave a lag out
    with_history = FeatureSchema.parse({**doc, "history": {"key": {"store": 1}, "time": 5}})
    assert with_history.may_derive and with_history.history is not None
    assert with_history.history.target == [] and with_history.history.features == {}


def test_the_derived_features_are_listed_by_part_and_empty_records_read_as_none() -> None:
    plan = {"frequency": 1, "exogenous": ["price"], "lags": {"y_lag2": 2},
            "rolling": {"y_mean": {"lag": 2, "window": 3, "stat": "mean"}},
            "calendar": {"month": "month"}, "changes": {"price_change": "price"},
            "transform": {"kind": "difference"}}  # fmt: skip
    schema = FeatureSchema.parse({"features": [], "forecast": plan, "decision": {}, "global": {}})
    assert schema.derived == ["y_lag2", "y_mean", "month", "price_change"]
    assert schema.forecast is not None and schema.forecast.transform == "difference"
    assert schema.decision is None and schema.bound is None and schema.classes is None
    assert FeatureSchema.parse({"features": []}).derived == []


def test_a_parsed_schema_keeps_the_documents_own_parts_for_the_router_to_share() -> None:
    features, forecast = ["a"], {"frequency": 1, "exogenous": ["a"], "lags": {"y_lag1": 1}}
    schema = FeatureSchema.parse({"features": features, "forecast": forecast})
    assert schema.features is features
    assert schema.forecast is not None and schema.forecast.lags is forecast["lags"]


def test_a_row_leaving_out_lags_of_a_model_without_a_time_step_is_refused_naming_it() -> None:
    """A version whose partitions each had one time records no frequency: no period follows
    its last time, so a row giving its time cannot have its lags derived."""
    from manymodels.exceptions import InvalidRows
    from manymodels.rowlags import fill_rows

    doc = {"features": ["y_lag1"], "target": "y", "time_column": "t",
           "forecast": {"frequency": None, "exogenous": [], "lags": {"y_lag1": 1}},
           "history": {"key": {"k": 1}, "time": 5, "target": [1.0]}}  # fmt: skip
    with pytest.raises(InvalidRows, match="time step is unknown") as caught:
        fill_rows([{"t": 6}, {"y_lag1": 2.0, "t": 7}], FeatureSchema.parse(doc), [3, 4])
    assert [p["loc"] for p in caught.value.errors] == [["body", "rows", 3, "t"]]


@pytest.mark.parametrize(
    "doc",
    [
        {"features": ["x"]},
        {"features": ["x"], "history": None},
        {"features": ["x"], "history": {"key": {"k": 1}, "time": 3, "target": [1.0]}},
        {"features": ["x"], "history": {"key": {}, "time": 3, "transform": {}}},
        {"features": ["x"], "history": {"time": 3, "transform": {"kind": "scale", "scale": 2}}},
        {"features": ["x"], "history": {"transform": {"kind": "difference", "last": 4.0}}},
        {"features": ["x"], "history": [("transform", {"kind": "difference"})]},
        {"features": ["x"], "history": {"transform": "difference"}},
    ],
)
def test_transform_of_a_document_is_its_parsed_schemas(doc: dict[str, Any]) -> None:
    """Selection reads a partition's transform without parsing its whole schema."""
    from manymodels.feature_schema import transform_kind_of, transform_of

    assert transform_of(doc) == FeatureSchema.parse(doc).transform
    assert transform_kind_of(doc) == FeatureSchema.parse(doc).transform_kind


def test_predicts_takes_the_likely_answer_unread_only_when_the_text_says_all_of_it() -> None:
    """``predicts``, what the champion check and doctor's mixed-target read share: the
    answer expected is taken from a text search of the schema as the registry writes it,
    and anything else — another target or task, a field the schema does not record, a text
    that is no JSON object — is FeatureSchema's own reading of the parsed document."""
    y = Predicts("y", "regression")
    schema = {"features": ["x"], "target": "y", "task": "regression", "history": {"target": [1]}}
    assert predicts(encode_json(schema), y) is y  # matched: no parse
    imported = {"features": ["x"], "target": None, "task": "regression"}  # an MLflow import's
    others = [{**schema, "task": "classification"}, {**schema, "target": "cost"}, imported]
    for doc in [schema, *others, {"task": "x"}]:
        parsed = FeatureSchema.parse(doc)
        for likely in (None, y, Predicts(None, "regression"), Predicts("cost", "regression")):
            assert predicts(encode_json(doc), likely) == (parsed.target, parsed.task), doc
    for text in (None, "", "not json", "[1]", "null"):
        assert predicts(text, y) == (None, None)
