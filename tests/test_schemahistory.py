"""``manymodels.schemahistory``: naming a version's target transform from its schema."""

from __future__ import annotations

import json

from factories import imported_by

from manymodels.schemahistory import recorded, recorded_kind, recorded_kind_json


def test_a_schema_without_a_recorded_transform_names_none() -> None:
    for schema in ({}, {"history": None}, {"history": {"time": 3}}, {"history": []}):
        assert recorded(schema) is None
        assert recorded_kind(schema) == "none"
        assert recorded_kind_json(json.dumps(schema)) == "none"
    assert recorded_kind_json(None) == "none"
    assert recorded_kind_json("") == "none"


def test_the_recorded_transform_and_its_kind_are_read_from_the_history() -> None:
    transform = {"kind": "difference", "last": 4.0}
    schema = {"history": {"time": 3, "transform": transform}}
    assert recorded(schema) == transform
    assert recorded_kind(schema) == "difference"
    assert recorded_kind_json(json.dumps(schema)) == "difference"
    scaled = {"history": {"transform": {"kind": "scale", "center": 1.0, "spread": 2.0}}}
    assert recorded_kind(scaled) == "scale"


def test_naming_a_transform_imports_neither_numpy_nor_pandas() -> None:
    statement = (
        "from manymodels.schemahistory import recorded_kind\n"
        "recorded_kind({'history': {'transform': {'kind': 'scale'}}})"
    )
    assert imported_by(statement, ["numpy", "pandas"]) == []
    assert imported_by("import numpy", ["numpy", "pandas"]) == ["numpy"]  # the probe sees them
