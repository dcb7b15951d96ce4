"""The spellings of one key value that name the same partition (``value_spellings``): a
timestamp's ``T`` or space, with or without seconds; a boolean's ``True``/``1``."""

from __future__ import annotations

import pytest

from manymodels.value_spellings import boolean, same_value, time_spellings


@pytest.mark.parametrize(
    ("typed", "iso", "csv", "day"),
    [
        ("2024-01-05 10:30", "2024-01-05T10:30:00", "2024-01-05 10:30:00", None),
        ("2024-01-05T10:30", "2024-01-05T10:30:00", "2024-01-05 10:30:00", None),
        ("2024-01-05 10:30:00", "2024-01-05T10:30:00", None, None),
        ("2024-01-05T10:30:00", None, "2024-01-05 10:30:00", None),
        ("2024-01-05 00:00:00", "2024-01-05T00:00:00", None, "2024-01-05"),
        ("2024-01-05 00:00", "2024-01-05T00:00:00", "2024-01-05 00:00:00", "2024-01-05"),
        ("2024-01-05", "2024-01-05T00:00:00", "2024-01-05 00:00:00", None),
        ("2024-01-05 10:30:00.5", "2024-01-05T10:30:00.500000", "2024-01-05 10:30:00.500000", None),
        ("2024-01-05T00:00:00Z", "2024-01-05T00:00:00+00:00", "2024-01-05 00:00:00+00:00", None),
        ("2024-01-05 10:30+02:00", "2024-01-05T10:30:00+02:00", "2024-01-05 10:30:00+02:00", None),
        ("shop 2024-01-05", None, None, None),
        ("10:30", None, None, None),
        ("2024-01-05T10:30:00.1234567", None, None, None),  # past microseconds: no datetime's
        ("２０２４-01-05 10:30", None, None, None),  # fullwidth digits: no table writes them
    ],
)
def test_a_timestamp_is_spelt_as_a_dataframe_and_a_csv_write_it(
    typed: str, iso: str | None, csv: str | None, day: str | None
) -> None:
    assert time_spellings(typed) == (iso, day, csv)


@pytest.mark.parametrize(
    ("typed", "written"),
    [("True", "true"), ("TRUE", "true"), ("1", "true"), ("False", "false"), ("0", "false")],
)
def test_a_boolean_is_spelt_as_training_writes_it(typed: str, written: str) -> None:
    assert boolean(typed) == written and boolean(written) is None
    assert boolean("yes") is None and boolean("10") is None


def test_same_value_reads_each_spelling_as_its_value() -> None:
    assert same_value("2024-01-05 10:30", "2024-01-05T10:30:00")
    assert same_value("2024-01-05T00:00:00", "2024-01-05")
    assert same_value("True", "true") and same_value("2.0", "2")
    assert not same_value("2024-01-05 10:31", "2024-01-05T10:30:00")
    assert not same_value("False", "true") and not same_value("2.5", "2")
