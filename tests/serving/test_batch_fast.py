"""serving.batch's quick paths give what the careful ones give: the same groups, the same input
matrix (bit for bit), the same JSON text; anything they do not handle goes the careful way."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from pydantic_core import to_json
from sklearn.linear_model import Ridge

from manymodels.exceptions import InvalidRows
from manymodels.feature_schema import FeatureSchema
from manymodels.partition import encode_key
from serving.batch import encode
from serving.grouping import group
from serving.row_matrix import input_of
from serving.rows import model_input
from serving.served import served_model

FEATURES = ["a", "b", "c"]
DOC = {"features": FEATURES, "dtypes": dict.fromkeys(FEATURES, "float64"), "input": "numpy"}
SCHEMA = FeatureSchema.parse(DOC)


def _model() -> Any:
    rng = np.random.default_rng(0)
    return served_model(Ridge().fit(rng.normal(size=(9, 3)), rng.normal(size=9)), "k=1", 1, DOC)


@pytest.mark.parametrize(
    "cells",
    [
        [[0.1, 2, True], [1e308, -0.0, 3]],  # floats, ints, a bool
        [[2**70, 1, 0.5]],  # an int a float64 rounds
    ],
)
def test_the_input_is_model_inputs_matrix_bit_for_bit(cells: list[list[Any]]) -> None:
    rows = [dict(zip(FEATURES, c, strict=True)) for c in cells]
    got = input_of(_model(), rows)
    want = model_input(rows, SCHEMA)
    assert got.dtype == np.float64 and got.tobytes() == want.tobytes()


@pytest.mark.parametrize(
    "row", [{"a": 1.0, "b": None, "c": 2}, {"a": "1", "b": 1, "c": 2}, {"a": 1.0, "b": 2.0}]
)
def test_anything_else_goes_through_model_input(row: dict[str, Any]) -> None:
    try:
        want: Any = model_input([row], SCHEMA)
    except InvalidRows as e:
        with pytest.raises(InvalidRows) as got:
            input_of(_model(), [row])
        assert got.value.errors == e.errors
    else:
        assert np.array_equal(input_of(_model(), [row]), want, equal_nan=True)


def test_an_integer_beyond_float64_is_named_as_model_input_names_it() -> None:
    with pytest.raises(InvalidRows, match="too large"):
        input_of(_model(), [{"a": 10**400, "b": 1, "c": 2}])


def test_groups_are_in_first_seen_order_with_rows_in_request_order() -> None:
    rows = [
        {"store": 2, "brand": "x/y"},
        {"store": 1, "brand": "x/y"},
        {"store": 2, "brand": "x/y"},
        {"store": 2, "brand": "z"},
    ]
    got = group(rows, ["store", "brand"])
    assert got == {
        encode_key([2, "x/y"], ["store", "brand"]): [0, 2],
        encode_key([1, "x/y"], ["store", "brand"]): [1],
        encode_key([2, "z"], ["store", "brand"]): [3],
    }
    assert list(got) == [
        encode_key(v, ["store", "brand"]) for v in ([2, "x/y"], [1, "x/y"], [2, "z"])
    ]
    assert group([{"p": 1.5}, {"p": 2}, {"p": 1.5}], ["p"]) == {"p=1.5": [0, 2], "p=2": [1]}


def test_equal_values_of_other_types_keep_their_own_keys_across_requests() -> None:
    """1 == 1.0 == True as dict keys, yet True is its own partition: the remembered keys are
    kept by type, in the one-type path and in the row-by-row one (mixed types)."""
    for value in (1, True, 1.0, True, 1):
        assert group([{"p": value}] * 2, ["p"]) == {encode_key([value], ["p"]): [0, 1]}
    mixed = group([{"p": 1}, {"p": True}, {"p": 1.0}], ["p"])
    assert mixed == {"p=1": [0, 2], "p=true": [1]}
    assert group([{"p": 0.0}, {"p": -0.0}, {"p": 2.5}], ["p"]) == {"p=0": [0, 1], "p=2.5": [2]}


def test_a_row_per_partition_gives_each_row_its_own_group_once_its_keys_are_known() -> None:
    """The second request finds every key remembered and takes the path without a lookup
    per row: the same groups, in the same order."""
    rows = [{"p": v} for v in (7, 3, 5, 11)]
    for _ in range(2):
        got = group(rows, ["p"])
        assert got == {"p=7": [0], "p=3": [1], "p=5": [2], "p=11": [3]}
        assert list(got) == ["p=7", "p=3", "p=5", "p=11"]


def test_a_key_problem_is_reported_for_its_row() -> None:
    with pytest.raises(InvalidRows) as e:
        group([{"p": 1}, {"q": 1}, {"p": None}], ["p"])
    assert [err["loc"][2] for err in e.value.errors] == [1, 2]


def _answer(key: str, prediction: Any, **extra: Any) -> dict[str, Any]:
    return {
        "partition": key,
        "served_by": key if key != "p=9" else "__fallback__",
        "version": 3,
        "fallback": key == "p=9",
        "target": "price" if key == "p=9" else "units" if key != "p=3" else None,
        "prediction": prediction,
        "probabilities": None,
        **extra,
    }


def test_the_answer_text_reads_back_as_the_answers_with_floats_as_the_per_key_route_writes() -> (
    None
):
    """The text is JSON whose values are the answers, bit for bit (``-0.0`` and the smallest
    subnormal included), its floats written as pydantic writes a per-key answer's — the
    shortest text that reads back the same (``0.00001``, not ``repr``'s ``1e-05``)."""
    values = (0.1, -1e-300, 2.0, 1 / 3, 1e-05, -0.0, 5e-324, 1.5e300, 123456.789)
    keys = ("p=1", 'p=é"/', "p=9", "p=1", "p=1", "p=2", "p=2", "p=3", "p=1")
    answers = [_answer(k, v) for k, v in zip(keys, values, strict=True)]
    text = encode(answers)
    assert text is not None
    back = json.loads(text)["predictions"]
    assert back == answers
    assert [math.copysign(1, a["prediction"]) for a in back] == [
        math.copysign(1, v) for v in values
    ]
    assert text == to_json({"predictions": answers}).decode()  # as the per-key route writes
    assert encode([]) == json.dumps({"predictions": []}, separators=(",", ":"))


@pytest.mark.parametrize(
    "odd",
    [
        _answer("p=1", float("nan")),  # JSON has no NaN: the validated answer writes null
        _answer("p=1", 3),  # a label, not a float
        _answer("p=1", 0.5, label="yes"),
        {**_answer("p=1", 0.5), "probabilities": {"a": 0.5}},
        {**_answer("p=1", 0.5), "target": 7},  # not a column's name: never written raw
    ],
)
def test_answers_of_another_shape_are_left_to_the_general_encoder(odd: dict[str, Any]) -> None:
    assert encode([_answer("p=2", 1.0), odd]) is None
