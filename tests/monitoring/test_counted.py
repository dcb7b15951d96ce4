"""A posted row's identity (``manymodels.monitoring.counted``): the same row from a JSON body,
a CSV or a Parquet file is one digest, rows alike within one post are told apart by their
order, and a window's digests stay bounded."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from manymodels.monitoring import counted


def test_a_row_is_its_values_whichever_way_it_was_read() -> None:
    """1 is 1.0, a blank is a missing column, a Parquet date at midnight is the text a CSV
    or JSON has, numpy scalars are their values, and the key columns are left out."""
    as_json = {"week": "2026-01-05", "price": 2.5, "deal": 1, "units": 31}
    as_frame = {
        "store": 2, "brand": "x", "week": pd.Timestamp("2026-01-05"),
        "price": np.float64(2.5), "deal": np.int64(1), "units": 31.0, "note": np.nan,
    }  # fmt: skip
    assert counted.digests([as_json]) == counted.digests([as_frame], ["store", "brand"])
    other = [{**as_json, "units": 32}, {**as_json, "week": "2026-01-05T01:00:00"}]
    assert len({*counted.digests([as_json]), *counted.digests(other)}) == 3
    assert all(len(d) == counted.WIDTH for d in counted.digests(other))


def test_rows_alike_within_a_post_are_each_their_own() -> None:
    """The n-th row alike is another identity: a post of three alike, after a post of two,
    has one new row."""
    row = {"price": 2.5, "units": 31}
    two, three = counted.digests([row, row]), counted.digests([row, row, row])
    assert len(set(two)) == 2 and three[:2] == two and three[2] not in two


def test_a_window_keeps_its_newest_digests_only() -> None:
    kept = counted.digests([{"i": i} for i in range(counted.MAX_PER_DAY)])
    new = counted.digests([{"i": -1}, {"i": -2}])
    text = counted.joined(kept, new)
    assert counted.split(text) == [*kept[2:], *new]
    assert counted.split(None) == [] and counted.split("") == []


def test_a_time_spelt_another_way_is_the_same_time() -> None:
    """The time column's text is the time it names: a JSON client's "…T00:00:00.000"
    (pandas' ``to_json``) is a CSV's date, "… 10:00:00" is "…T10:00" and a Parquet time;
    another column's text stays text, and a text no time parses as stays itself."""
    spellings = ["2026-01-05", "2026-01-05T00:00:00.000", "2026-01-05 00:00", "2026-01-05T00:00"]
    assert len({counted.digests([{"t": t, "y": 1}], (), "t")[0] for t in spellings}) == 1
    hourly = ["2026-01-05 10:00:00", "2026-01-05T10:00", "2026-01-05T10:00:00.000000"]
    same = {counted.digests([{"t": t, "y": 1}], (), "t")[0] for t in hourly}
    assert same == {counted.digests([{"t": pd.Timestamp("2026-01-05 10:00"), "y": 1}], (), "t")[0]}
    assert counted.digests([{"t": "2026-01-05 10:00:00.5"}], (), "t") == counted.digests(
        [{"t": pd.Timestamp("2026-01-05 10:00:00.500")}], (), "t"
    )
    assert counted.digests([{"t": "2026-01-05T10:00"}]) != counted.digests(
        [{"t": "2026-01-05 10:00"}]
    )
    assert counted.digests([{"t": "soon"}], (), "t") == counted.digests([{"t": "soon"}])


PINNED = [
    ("2026-01-05", "YB1mfX1AdA_i", "__oTKbP29Zsv"),
    ("2026-01-05T00:00:00.000", "YB1mfX1AdA_i", "YcDc2BIhCtwJ"),
    ("2026-01-05 10:00", "bpI1_MGwLvKk", "51ElANvaaUo4"),
    ("2026-01-05T10", "bpI1_MGwLvKk", "DCLQ-mxjV9-z"),
    ("2026-01-05T10:00:00.500000", "USJcuAGrI5pI", "sQsvG559SE93"),
    ("2026-01-05T10:00:00.123456789", "oLkA1YuTHztD", "yt17oUPtirhM"),
    ("2026-01-05T10:00:00Z", "OoVyv-U4XFPf", "wZOzTORLXWa6"),
    ("2026-01-05 10:00:00+01:00", "ij6BNDtrVocR", "IfAzhdTz7T8G"),
    ("２０２６-01-05 10:00", "rtkJB4i8xk9J", "iuADzwuRWitO"),
    ("soon", "rbzrXXkx1nWE", "Uqc7eDpHj0Eg"),
    (pd.Timestamp("2026-01-05 10:00:00.000000100"), "1Uwckd_k5meu", "Wf96UEahnRkd"),
    (pd.Timestamp("2026-01-05", tz="UTC"), "Ql6Qh8yMc6P4", "HudLTKptGoTK"),
    (np.datetime64("2026-01-05T10:30"), "H9fBlutqvOXg", "TM4LppKPPfSW"),
    (dt.datetime(2026, 1, 5, 10, 30, 0, 250000), "_2pC2iPToji7", "6ZwxB43ndwt3"),
    (dt.date(2026, 1, 5), "YB1mfX1AdA_i", "__oTKbP29Zsv"),
]
"""Digests of a row ``{"t": cell, "y": 1}`` with ``t`` the time column, and of ``{"t": cell}``
with no time column, as the code that counted users' stored windows wrote them."""


@pytest.mark.parametrize(("cell", "as_time", "as_text"), PINNED)
def test_a_stored_digest_never_changes(cell: object, as_time: str, as_text: str) -> None:
    """A digest is kept in users' registries: a repeat posted after an upgrade must be the
    same digest, or it counts again. Pinned for times spelt many ways (a date, ``T`` or a
    space, minutes only, a fraction's trailing zeros, nanoseconds, a zone, fullwidth digits,
    no time at all, pandas, numpy and Python times), whichever module spells them."""
    assert counted.digests([{"t": cell, "y": 1}], (), "t") == [as_time]
    assert counted.digests([{"t": cell}]) == [as_text]
