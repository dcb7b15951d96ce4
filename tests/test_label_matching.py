"""``manymodels.label_matching``: which class a label sent by a client or read from a file is,
the one rule behind ``/actuals``, ``monitor --actuals``, an HTTP retrain and ``train --append``."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from manymodels.exceptions import InvalidRows
from manymodels.label_matching import KnownClasses, is_bool
from manymodels.monitoring.live import targets


def test_a_label_is_the_class_it_matches_by_value_or_as_text() -> None:
    known = KnownClasses([0, 1])
    assert known.matching("1") == [1] and known.matching(1.0) == [1]
    assert known.matching(np.int64(0)) == [0]
    assert known.refusal("1.0") is None
    words = KnownClasses(["no", "yes"])
    assert words.matching("yes") == ["yes"] and words.matching("Yes") == []
    assert words.refusal("Yes") == "not one of the classes"


def test_a_number_s_text_is_a_boolean_class_as_the_number_is() -> None:
    """JSON's ``"1"`` was no class of a version labelled True/False, where ``1`` was True:
    a text holding a number is that number, a word names the class in any case."""
    known = KnownClasses([False, True])
    for sent, flag in [("1", True), ("0", False), (" 1.0", True), ("true", True), (1, True)]:
        assert known.matching(sent) == [flag], sent
    assert known.refusal("2") == "not one of the classes" and known.matching("yes") == []


def test_a_label_two_classes_match_is_refused() -> None:
    """``1`` is ``"01"`` and ``"1"`` by value: nothing can tell which class it means."""
    known = KnownClasses(["01", "1", "2"])
    assert known.matching(1) == ["01", "1"]
    assert known.refusal(1) == "more than one of the classes"
    assert known.refusal("1") is None  # a text is matched as a text
    assert known.shown == "'01', '1', '2'"


def test_a_refusal_names_at_most_ten_classes() -> None:
    assert KnownClasses(list(range(25))).shown == ", ".join(map(str, range(10)))


def test_unhashable_labels_are_matched_each_time() -> None:
    known = KnownClasses(["a"])
    assert known.matching(["a"]) == [] and known.refusal(["a"]) == "not one of the classes"


def test_posted_actuals_refuse_a_label_two_classes_match() -> None:
    """Counted before as right whichever of ``"01"`` and ``"1"`` the model answered."""
    rows = [{"y": "1"}, {"y": 1}]
    with pytest.raises(InvalidRows) as caught:
        targets(rows, "y", task="classification", classes=["01", "1"])
    (only,) = caught.value.errors
    assert only["loc"][-2] == 1
    assert "is 1, more than one of the classes the version knows ('01', '1')" in only["msg"]


@pytest.mark.parametrize(
    ("cell", "flag"),
    [(True, True), (np.bool_(False), True), (1, False), (np.int64(0), False), ("True", False)],
    ids=["bool", "numpy-bool", "int", "numpy-int", "text"],
)
def test_a_boolean_cell_is_a_bool_of_python_or_numpy_never_a_number(
    cell: object, flag: bool
) -> None:
    assert is_bool(cell) is flag


def test_a_date_is_the_class_of_the_same_date_however_written() -> None:
    """Date classes are ISO text; ``"2024-01-01"``, a space for the ``T``, a ``datetime.date``
    or a ``Timestamp`` is the same class, a zoned class's day is named without its zone, and
    another date or a text that only starts like one is no class."""
    known = KnownClasses(["2024-01-01T00:00:00", "2024-02-01T06:30:00"])
    for same in [
        "2024-01-01",
        "2024-01-01 00:00:00",
        dt.date(2024, 1, 1),
        pd.Timestamp("2024-01-01"),
    ]:
        assert known.matching(same) == ["2024-01-01T00:00:00"], same
    assert known.matching(np.datetime64("2024-02-01T06:30")) == ["2024-02-01T06:30:00"]
    for other in ["2024-02-01", "2024-01-01T00:00:01", "2024-01-01x", "20240101"]:
        assert known.matching(other) == [], other
    zoned = KnownClasses(["2024-01-01T00:00:00+01:00", "2024-07-01T00:00:00+02:00"])
    assert zoned.matching("2024-07-01") == ["2024-07-01T00:00:00+02:00"]
    assert zoned.matching("2023-12-31T23:00:00+00:00") == ["2024-01-01T00:00:00+01:00"]
