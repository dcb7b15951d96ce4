"""Tests for manymodels.key_lists: one wording for the keys an error or a note names, the
first ten quoted and the rest counted (the notes said "…", and hid how many)."""

from __future__ import annotations

from manymodels.key_lists import MAX_LISTED_KEYS, listed


def test_an_errors_keys_are_cut_to_ten_and_the_rest_counted() -> None:
    keys = [f"store={i}" for i in range(MAX_LISTED_KEYS + 2)]
    said = listed(keys)
    assert said.startswith("'store=0', 'store=1', ") and said.endswith("'store=9' and 2 more")
    assert listed(keys[:MAX_LISTED_KEYS]).endswith("'store=9'")  # all named: none more
    assert listed(["store=1,brand=a"]) == "'store=1,brand=a'"  # quoted: a key holds commas


def test_a_notes_first_keys_count_the_partitions_it_is_about() -> None:
    assert listed(["a", "b", "c"], 5) == "'a', 'b', 'c' and 2 more"
    assert listed(["a", "b"], 2) == "'a', 'b'"
