"""``mm.score`` and ``LoadedModel.predict`` read a time column alike: a table whose times
are of the other kind than the series' (without a UTC offset where the model's times have
one, or the other way) is refused by both, in the router's words; times of the right kind
score the same through both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import spec_dict

import manymodels as mm
from manymodels.exceptions import DataError, InvalidRows


def _train(root: Path, tz: str | None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for pid in range(3):
        t = pd.date_range("2024-01-01", periods=40, freq="D", tz=tz)
        x0 = rng.normal(size=40)
        y = 3 * x0 + pid + 5.0 * (t.day_of_week == 3) + rng.normal(scale=0.1, size=40)
        frames.append(pd.DataFrame({"pid": pid, "t": t, "x0": x0, "y": y}))
    df = pd.concat(frames, ignore_index=True)
    mm.train(spec_dict(calendar=["day_of_week"]), df, registry=root, backend="local")
    return df.drop(columns="y")


@pytest.mark.parametrize(
    ("zone", "said"),
    [
        ("UTC", "the model's times are in UTC: give the time with its UTC offset"),
        (None, "the model's times have no time zone: give the time without a UTC offset"),
    ],
)
def test_times_of_the_other_kind_are_refused_by_score_as_by_predict(
    tmp_path: Path, zone: str | None, said: str
) -> None:
    """A model trained on times in UTC: ``mm.score`` of the same table with naive times
    answered (its calendar read off the wall clock), where ``loaded.predict`` of the same
    rows raised InvalidRows; and the other way for a model of naive times. Now both refuse,
    with the same reason."""
    rows = _train(tmp_path / "reg", zone)
    other = rows.assign(t=rows.t.dt.tz_localize(None) if zone else rows.t.dt.tz_localize("UTC"))
    with pytest.raises(DataError) as scored:
        mm.score(other.head(3), tmp_path / "reg", backend="local")
    assert str(scored.value).startswith(
        "<DataFrame>: data row 1 (counting from 1): 't' Timestamp('2024-01-01 00:00:00"
    )
    assert "is not a time of the model's series" in str(scored.value)
    assert said in str(scored.value)
    with mm.Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model("pid=0")
        with pytest.raises(InvalidRows, match=said):
            loaded.predict(other.head(3))
        # the right kind scores the same through both
        out = mm.score(rows.head(10), reg, backend="local")
        np.testing.assert_allclose(out.prediction, loaded.predict(rows.head(10)), rtol=1e-12)


def test_a_csv_of_a_zones_times_across_a_change_of_clocks_scores_as_its_frame(
    tmp_path: Path,
) -> None:
    """A model trained on Berlin times with a calendar feature: the same rows written to a CSV
    (its times as text, +01:00 before the clocks change on 31 March, +02:00 after) were
    refused by ``mm.score`` as "holds times of more than one UTC offset … give the table as
    Parquet", where ``loaded.predict`` of the same rows answered; the model knows its zone,
    so the instants the text names are read on its clock. Times with an offset beside times
    without one stay refused."""
    rng = np.random.default_rng(0)
    t = pd.date_range("2024-03-01", periods=60, freq="D", tz="Europe/Berlin")
    df = pd.concat(
        [pd.DataFrame({"pid": pid, "t": t, "x0": rng.normal(size=60)}) for pid in range(2)],
        ignore_index=True,
    )
    df["y"] = 3 * df.x0 + 5.0 * (df.t.dt.day_of_week == 3) + rng.normal(scale=0.1, size=120)
    root = tmp_path / "reg"
    mm.train(spec_dict(calendar=["day_of_week"]), df, registry=root, backend="local")
    rows = df.drop(columns="y")
    rows.to_csv(tmp_path / "rows.csv", index=False)
    text = (tmp_path / "rows.csv").read_text()
    assert "+01:00" in text and "+02:00" in text
    from_csv = mm.score(tmp_path / "rows.csv", root, backend="local")
    np.testing.assert_allclose(
        from_csv.prediction, mm.score(rows, root, backend="local").prediction, rtol=1e-12
    )
    blank = pd.read_csv(tmp_path / "rows.csv")
    blank.loc[5, "t"] = None  # said as missing, not as "more than one UTC offset"
    with pytest.raises(DataError, match=r"'t' has missing values .* the first in data row 6 "):
        mm.score(blank, root, backend="local")
    mixed = pd.read_csv(tmp_path / "rows.csv")
    mixed.loc[3, "t"] = "2024-03-04 00:00:00"
    with pytest.raises(DataError, match="times with a UTC offset and times without one"):
        mm.score(mixed, root, backend="local")
