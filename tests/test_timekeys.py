"""``manymodels.timekeys``: a row's time matched to a series' periods."""

from __future__ import annotations

from manymodels import timekeys as tk


def test_a_time_matches_only_a_series_of_its_kind() -> None:
    berlin = tk.time_key("2024-01-01T01:00:00+01:00", "1D", aware=True)
    assert berlin == tk.time_key("2024-01-01T00:00:00+00:00", "1D", aware=True)  # one instant
    # a date of the other kind is no time of the series: read as UTC, a wall time without
    # its offset matched the period an offset away
    assert tk.time_key("2024-01-01T01:00:00", "1D", aware=True) is None
    assert tk.time_key("2024-01-01T01:00:00+01:00", "1D", aware=False) is None
    assert tk.time_key("2024-01-01", "1D", aware=False) == 1704067200000000000
    # on a dated series a number is no time (it read as ns since 1970)
    assert tk.time_key(1727654400, "1D") is None and tk.time_key(3, 1) == 3.0
    assert tk.recorded_aware("2024-01-01T00:00:00+02:00") and not tk.recorded_aware(7)
    assert not tk.recorded_aware("2024-01-01T00:00:00")
    assert tk.time_key("soon", "1D") is None and tk.time_key(True, 1) is None


def test_the_hint_says_which_form_to_give() -> None:
    assert "with its UTC offset (2024-03-04T10:00:00+01:00)" in tk.zone_hint(
        "2024-03-04T10:00:00", True, "Europe/Berlin"
    )
    assert "without a UTC offset" in tk.zone_hint("2024-03-04T10:00:00+01:00", False)
    assert tk.zone_hint("2024-03-04T10:00:00", False) == "" and tk.zone_hint(5, True) == ""
