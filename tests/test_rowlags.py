"""``manymodels.rowlags``: the derived features a row leaves out, computed from its time.

Here: what a model without a history of its own (the fallback) computes, and how a row's text
time is read (as ISO 8601, as training reads a table's time column)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from factories import linear_frame, spec_dict

from manymodels import timekeys
from manymodels.exceptions import InvalidRows
from manymodels.pipeline import train
from manymodels.registry import Registry

FALLBACK = "__fallback__"


def _daily(n_partitions: int = 3) -> pd.DataFrame:
    df = linear_frame(n_partitions, 40)
    df["t"] = list(pd.date_range("2024-01-01", periods=40, freq="D")) * n_partitions
    return df


def test_the_fallback_takes_its_calendar_parts_from_a_rows_time(tmp_path: Path) -> None:
    """The fallback of a spec with ``calendar`` was fitted on the calendar parts, and a row
    that gives its time instead was refused ("feature 't_day_of_week' is missing"), though
    a partition's model took it: every key without a model of its own was then a 422."""
    train(spec_dict(calendar=["day_of_week"]), _daily(), tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        fallback = reg.load_model(FALLBACK)
        assert fallback.version.schema.history is None  # a model of every partition
        # 2024-04-11 is a Thursday: day_of_week 3, as pandas numbers them
        given = fallback.predict([{"t": "2024-04-11", "x0": 0.5, "x1": -1.0}])
        derived = fallback.predict([{"t_day_of_week": 3, "x0": 0.5, "x1": -1.0}])
        monday = fallback.predict([{"t_day_of_week": 0, "x0": 0.5, "x1": -1.0}])
        with pytest.raises(InvalidRows, match="'t' 5 is not a date"):
            fallback.predict([{"t": 5, "x0": 0.5, "x1": -1.0}])
    assert given.tolist() == derived.tolist() != monday.tolist()


def test_the_fallback_does_not_make_up_lags(tmp_path: Path) -> None:
    """Its calendar parts, yes; its lags no: it has no series to read them from, so a row
    without them is refused naming the lag."""
    spec = spec_dict(calendar=["day_of_week"], lags=[1])
    train(spec, _daily(), tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        fallback = reg.load_model(FALLBACK)
        with pytest.raises(InvalidRows, match="feature 'y_lag1' is missing"):
            fallback.predict([{"t": "2024-02-10", "x0": 0.5, "x1": -1.0}])
        answer = fallback.predict([{"t": "2024-02-10", "y_lag1": 2.0, "x0": 0.5, "x1": -1.0}])
    assert len(answer) == 1


def test_a_fallback_row_without_its_time_or_lag_hears_both_in_one_refusal(
    tmp_path: Path,
) -> None:
    """A row for a key without a model that left out its time and its lag heard of the lag
    alone; sent again with it, of "feature 't_day_of_week' is missing", nothing saying the
    time was what it lacked. Both are said at once, the time as a partition's row hears it."""
    spec = spec_dict(calendar=["day_of_week"], lags=[1])
    train(spec, _daily(), tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        fallback = reg.load_model(FALLBACK)
        own = reg.load_model("pid=0")
        for model in (fallback, own):
            with pytest.raises(InvalidRows) as caught:
                model.predict([{"x0": 0.5, "x1": -1.0, "y_lag1": 2.0}])
            (error,) = caught.value.errors
            assert error["loc"][-1] == "t" and "the row has no 't'" in error["msg"], error
        with pytest.raises(InvalidRows) as caught:
            fallback.predict([{"x0": 0.5, "x1": -1.0}])
    said = {e["loc"][-1]: e["msg"] for e in caught.value.errors}
    assert set(said) == {"y_lag1", "t"}, said
    assert "no series of its own" in said["y_lag1"] and "send its 't'" in said["t"]


@pytest.mark.parametrize("key", ["pid=0", FALLBACK])
def test_a_text_time_is_read_as_iso_8601_as_training_reads_it(tmp_path: Path, key: str) -> None:
    """Training refuses '11/02/2024' ("not ISO8601 format"), and so does a retrain; a row
    sent to a model read it with ``pd.Timestamp``, which guesses month first: November 2nd,
    a Saturday, where its sender meant February 11th, a Sunday — a 200 with the calendar
    parts of another day. It is now refused, naming the row and the column."""
    train(spec_dict(calendar=["day_of_week"]), _daily(), tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model(key)
        with pytest.raises(InvalidRows) as caught:
            loaded.predict([{"t": "11/02/2024", "x0": 0.5, "x1": -1.0}])
        iso = loaded.predict([{"t": "2024-02-11", "x0": 0.5, "x1": -1.0}])
    error = caught.value.errors[0]
    assert error["loc"][-1] == "t" and "'11/02/2024' is not an ISO 8601 date" in error["msg"]
    assert len(iso) == 1


def test_a_model_without_lags_never_speaks_of_them(tmp_path: Path) -> None:
    """A partition's model with calendar parts and no lags, given a time with a UTC offset
    its series' times lack (or a number), was refused as "not one of the periods after the
    model's last time (…) that its lags reach: send the derived features in the row" — of
    lags it has none, and any period of its calendar is fine (2024-01-02 is scored)."""
    train(spec_dict(calendar=["day_of_week"]), _daily(), tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model("pid=0")
        assert len(loaded.predict([{"t": "2024-01-02", "x0": 0.5, "x1": -1.0}])) == 1
        for t, hint in (("2024-01-02T00:00:00Z", "; the model's times have no time zone"),
                        (5, "")):  # fmt: skip
            with pytest.raises(InvalidRows) as caught:
                loaded.predict([{"t": t, "x0": 0.5, "x1": -1.0}])
            message = caught.value.errors[0]["msg"]
            assert "lags" not in message
            assert message.startswith(
                f"'t' {t!r} is not a time of the model's series, which its calendar features "
                "are read from" + hint
            )


def test_read_time_reads_text_as_iso_8601_only() -> None:
    assert timekeys.read_time("2024-02-11") == pd.Timestamp("2024-02-11")
    assert timekeys.read_time("2024-02-11T10:00+01:00").utcoffset() == pd.Timedelta(hours=1)
    assert timekeys.read_time(pd.Timestamp("2024-02-11")) == pd.Timestamp("2024-02-11")
    with pytest.raises(ValueError):
        timekeys.read_time("11/02/2024")
    assert timekeys.not_iso("11/02/2024") and not timekeys.not_iso("2024-02-11")
    assert not timekeys.not_iso(5)
    # a row's time on a dated series: no period key for text it would have to guess at
    assert timekeys.time_key("11/02/2024", "1D", aware=False) is None


def test_two_rows_posting_different_targets_for_one_period_are_refused(tmp_path: Path) -> None:
    """Rows posting actuals extend the history for the request's other rows. Two rows of one
    period with different targets gave the later row's lag whichever came last in the
    request (reordering the rows changed the answer); training refuses two rows of a
    partition at one time, and ``changes`` two values of a feature in one period. Now the
    row whose lag (or, with ``difference``, whose previous target) reads that period is
    refused, naming it; the same target posted twice is one target."""
    train(spec_dict(lags=[1]), _daily(), tmp_path / "reg", backend="local")
    diff = spec_dict(name="diff", lags=[1], target_transform="difference")
    train(diff, _daily(), tmp_path / "diff", backend="local")
    first, second = "2024-02-10", "2024-02-11"  # the two days after the last one trained
    x = {"x0": 0.5, "x1": -1.0}
    with Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model("pid=0")
        rows = [{"t": first, **x, "y": 1.0}, {"t": first, **x, "y": 2.0}, {"t": second, **x}]
        for order in (rows, [rows[1], rows[0], rows[2]]):
            with pytest.raises(InvalidRows) as caught:
                loaded.predict(order)
            (error,) = caught.value.errors
            assert error["loc"][-1] == "y_lag1" and error["loc"][-2] == 2
            assert "post 2 different targets for it" in error["msg"]
        same = loaded.predict([rows[0], rows[0], rows[2]])
        assert same[2] == loaded.predict([{"t": second, **x, "y_lag1": 1.0}])[0]
    with Registry.open(tmp_path / "diff") as reg:
        loaded = reg.load_model("pid=0")
        given = {**x, "y_lag1": 0.25}  # the lags given: the previous target is still needed
        rows = [{"t": first, **given, "y": 1.0}, {"t": first, **given, "y": 2.0},
                {"t": second, **given}]  # fmt: skip
        with pytest.raises(InvalidRows) as caught:
            loaded.predict(rows)
        (error,) = caught.value.errors
        assert error["loc"][-1] == "t" and error["loc"][-2] == 2
        assert "post 2 different targets for it" in error["msg"]
