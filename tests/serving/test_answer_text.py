"""serving.answer_text: batch answers written in pieces are the bytes ``json.dumps`` writes."""

from __future__ import annotations

import json

import pytest

from serving.answer_text import (
    answer_head,
    floats_text,
    joined_head,
    one_model_text,
    predictions_text,
)

AWKWARD = ["store=1", 'name=say "hi"', "path=a\\b", "city=Zürich", "tab=\t", "emoji=🙂"]


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("key", AWKWARD)
def test_joined_heads_and_floats_make_the_answers_json_writes(key: str) -> None:
    values = [0.1, -2.5, 1e-05, 123456789.0]
    answers = [
        {"partition": key, "served_by": key, "version": 7, "fallback": False, "target": key,
         "prediction": v, "probabilities": None}
        for v in values
    ]  # fmt: skip
    head = joined_head(key, key, 7, False, key)  # a target column named as awkwardly
    floats = floats_text(values)
    expected = dumps({"predictions": answers}).replace("1e-05", "0.00001")
    for written in (one_model_text(head, floats), predictions_text([head] * len(values), floats)):
        assert json.loads(written) == {"predictions": answers}
        assert written == expected


def test_mixed_heads_and_no_answers_are_written_as_json_does() -> None:
    answers = [
        {"partition": "a", "served_by": "a", "version": 1, "fallback": False,
         "target": "units", "prediction": 1.5, "probabilities": None},
        {"partition": "b", "served_by": "__fallback__", "version": 2, "fallback": True,
         "target": "price", "prediction": -0.25, "probabilities": None},
        {"partition": "c", "served_by": "c", "version": 1, "fallback": False,
         "target": None, "prediction": 2.0, "probabilities": None},  # recorded none
    ]  # fmt: skip
    starts = [joined_head(a["partition"], a["served_by"], a["version"], a["fallback"],
                          a["target"]) for a in answers]  # fmt: skip
    written = predictions_text(starts, floats_text([a["prediction"] for a in answers]))
    assert written == dumps({"predictions": answers})
    assert predictions_text([], "") == one_model_text("x", "") == dumps({"predictions": []})


def test_answer_head_writes_a_fallback_as_json_does() -> None:
    head = answer_head("store=9", "__fallback__", 3, True, "units")
    expected = dumps({"partition": "store=9", "served_by": "__fallback__", "version": 3,
                      "fallback": True, "target": "units"})  # fmt: skip
    assert head + "}" == expected
