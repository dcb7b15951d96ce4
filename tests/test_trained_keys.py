"""``manymodels.trained_keys``: the other spellings training may have written a named key in,
tried only for a key absent as written; of many keys at once, each key read as written, then
the other spellings of those absent, in two batched reads."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from manymodels.trained_keys import as_trained, trained_forms, trained_spellings

STORED = {"store=2": 7, "day=2024-01-05T00:00:00": 8, "flag=true": 9, "store=3": 1,
          "ts=2024-01-05": 2, "ts=2024-01-05T00:00:00": 3}  # fmt: skip


def reader(reads: list[list[str]]) -> Callable[[list[str]], dict[str, int]]:
    """A read of ``STORED``'s rows of some keys, each call's keys kept in ``reads``."""

    def read(keys: list[str]) -> dict[str, int]:
        reads.append(list(keys))
        return {k: STORED[k] for k in keys if k in STORED}

    return read


def test_each_key_is_its_trained_spelling_in_two_reads_whatever_the_keys() -> None:
    """``store=2.0``, a CSV's day, ``flag=True``: the partition training wrote; a key found
    as written is never respelt (``ts=2024-01-05`` beside its ``T`` form); a key of no
    partition in any spelling is ``None``. Two reads: the keys, then the other spellings of
    those absent alone."""
    reads: list[list[str]] = []
    keys = ["store=2.0", "day=2024-01-05", "flag=True", "store=3", "ts=2024-01-05", "store=4",
            "store=2.0"]  # fmt: skip
    spelt, rows = trained_spellings(keys, reader(reads))
    assert spelt == {
        "store=2.0": "store=2", "day=2024-01-05": "day=2024-01-05T00:00:00",
        "flag=True": "flag=true", "store=3": "store=3", "ts=2024-01-05": "ts=2024-01-05",
        "store=4": None,
    }  # fmt: skip
    assert rows == {k: STORED[k] for k in STORED if k != "ts=2024-01-05T00:00:00"}
    assert len(reads) == 2
    assert reads[0] == list(dict.fromkeys(keys))
    assert "ts=2024-01-05T00:00:00" not in reads[1]  # found as written: not respelt


def test_keys_without_another_spelling_are_taken_as_written_unread() -> None:
    """``plain=False`` (a caller that reads every key anyway): ``store=a`` is not read."""
    reads: list[list[str]] = []
    spelt, _ = trained_spellings(["store=a", "store=2.0"], reader(reads), plain=False)
    assert spelt == {"store=a": "store=a", "store=2.0": "store=2"}
    assert reads == [["store=2.0"], ["store=2"]]
    assert trained_spellings(["store=a"], reader(reads), plain=False)[0] == {"store=a": "store=a"}
    assert len(reads) == 2  # nothing read for keys with no other spelling


@pytest.mark.parametrize(
    ("key", "variant"),
    [
        ("store=2.0", "store=2"),
        ("store=-3.00,brand=7.0", "store=-3,brand=7"),
        ("store=0.0", "store=0"),
        ("store=-0.0", "store=0"),
        ("store=9007199254740993.0", "store=9007199254740993"),  # textual: never rounded
        ("store=2", None),  # already as training writes it
        ("store=2.5", None),  # not integral: left alone
        ("store=2.0000000000000001", None),
        ("store=1e3", None),
        ("store=1e-400", None),
        ("v=2.10", None),  # a label, or 2.1: either way not the partition "2.1"
        ("store=02", None),  # could be a text id: left alone
        ("store=02.0", None),  # likewise
        ("store=\u0662.0", None),  # an Arabic-Indic digit is not how training writes 2
        ("brand=x.y", None),
        ("not a key", None),
        ("day=2024-01-01", "day=2024-01-01T00:00:00"),  # a CSV's text, a DataFrame's isoformat
        ("day=2024-01-01T00:00:00", "day=2024-01-01"),
        ("store=2,day=2024-01-01", "store=2,day=2024-01-01T00:00:00"),
        ("day=2024-01-01T10:30:00", "day=2024-01-01%2010:30:00"),  # a time: no day, a CSV's
        ("day=2024-1-1", None),
        ("code=12-34-5678", None),
        ("brand=x-y", None),
    ],
)
def test_a_number_or_day_names_the_partition_training_wrote(key: str, variant: str | None) -> None:
    """The first other spelling tried for ``key`` (integral numbers, a day with or without
    its midnight), found when the key as given is no partition; ``None``: none tried."""
    assert trained_forms(key)[:1] == ([variant] if variant else [])
    if variant is not None:
        assert as_trained(key, {variant}.__contains__) == variant
        assert as_trained(key, {key, variant}.__contains__) == key  # found as written


def test_a_key_in_the_other_unicode_normal_form_names_the_partition_training_wrote() -> None:
    """``promote 'store=café,…'`` typed or pasted decomposed (NFD: macOS file names) was "no
    partition 'store=cafe%CC%81,…'" beside the composed 'store=caf%C3%A9,…' a CSV trained:
    one text to the eye, two byte strings. Either form now finds the one training wrote."""
    from manymodels.key_lookup import lookup_key

    nfc, nfd = "store=caf%C3%A9,brand=x", "store=cafe%CC%81,brand=x"
    columns = ["store", "brand"]
    typed_nfd = "store=cafe\u0301,brand=x"
    assert lookup_key(typed_nfd, columns, {nfc}.__contains__) == nfc
    assert lookup_key("store=caf\u00e9,brand=x", columns, {nfd}.__contains__) == nfd
    assert lookup_key(typed_nfd, columns, {nfc, nfd}.__contains__) == nfd  # found as written
    assert as_trained("store=%E6%97%A5%E6%9C%AC", {"store=x"}.__contains__).startswith("store=%E6")
    assert lookup_key(typed_nfd, columns, set().__contains__) == nfd  # neither: as written


def test_as_trained_tries_each_form_only_for_a_key_not_present() -> None:
    trained = {"store=2,day=2024-01-01T00:00:00", "day=2024-01-01", "store=3"}
    assert as_trained("store=2.0,day=2024-01-01", trained.__contains__) == (
        "store=2,day=2024-01-01T00:00:00"
    )
    assert as_trained("day=2024-01-01T00:00:00", trained.__contains__) == "day=2024-01-01"
    assert as_trained("store=3.0", trained.__contains__) == "store=3"
    assert as_trained("store=4.0", trained.__contains__) == "store=4.0"  # none trained
    asked: list[str] = []
    as_trained("store=7", lambda k: bool(asked.append(k)))  # nothing to rewrite
    assert asked == []
