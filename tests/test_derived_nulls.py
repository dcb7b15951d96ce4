"""``LoadedModel.predict`` reads a derived feature without a value as the router does
(``manymodels.derived_nulls``): a dict row's ``None`` and a DataFrame's empty cell are that
feature not given, computed from the version's history as when the row leaves it out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict

from manymodels.exceptions import DataError
from manymodels.pipeline import train
from manymodels.registry import Registry

ROW = {"t": "2024-02-10", "x0": 0.5, "x1": -1.0}


def test_a_derived_features_none_or_nan_is_computed_as_a_left_out_one(tmp_path: Path) -> None:
    """A dict's ``None`` for ``y_lag2`` and a frame's NaN reached the Ridge as NaN, which it
    refused; both answer as the row without it now, and a frame's given cells are kept."""
    df = linear_frame(1, 40)
    df["t"] = pd.date_range("2024-01-01", periods=40, freq="D")
    train(spec_dict(lags=[2, 3]), df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        model = reg.load_model("pid=0")
        want = model.predict([ROW, {**ROW, "t": "2024-02-11"}])
        given = model.predict([{**ROW, "y_lag2": 5.0}])
        assert not np.array_equal(given, want[:1])  # the given lag is read
        got = model.predict([{**ROW, "y_lag2": None, "y_lag3": None}, {**ROW, "t": "2024-02-11"}])
        np.testing.assert_array_equal(got, want)
        frame = pd.DataFrame([{**ROW, "y_lag2": 5.0, "y_lag3": np.nan}, ROW])
        frame.loc[1, "t"] = "2024-02-11"
        both = model.predict(frame)
        assert both[0] == model.predict([{**ROW, "y_lag2": 5.0}])[0]
        assert both[1] == want[1]
        with pytest.raises(DataError, match="the row has no 't'"):
            model.predict(pd.DataFrame([{"x0": 0.5, "x1": -1.0, "y_lag2": np.nan, "y_lag3": 1.0}]))
