"""``manymodels.features``: reading a table's cells as a model's numbers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict

import manymodels as mm
from manymodels.exceptions import DataError, InvalidRows
from manymodels.features import python_numbers
from manymodels.registry import Registry


def test_booleans_are_numbers_in_a_feature_and_not_in_a_target() -> None:
    cells = pd.Series([1.5, True, None, False], dtype=object)
    read = python_numbers(cells, "x", "rows.json")
    assert read is not None
    np.testing.assert_array_equal(read, [1.5, 1.0, np.nan, 0.0])
    # ``true`` is no regression target: left to the target's own check, which refuses it
    assert python_numbers(cells, "y", "rows.json", role="target") is None
    np.testing.assert_array_equal(
        python_numbers(pd.Series([1, 2.5, None], dtype=object), "y", "s", role="target"),
        [1.0, 2.5, np.nan],
    )


def test_complex_features_are_refused_naming_the_column_in_train_score_and_predict(
    tmp_path: Path,
) -> None:
    df = linear_frame(2, 30)
    waved = df.assign(x1=df["x1"] + 1j)  # numpy kept the real part, with a ComplexWarning
    said = "feature 'x1' holds complex numbers (dtype complex128): a model reads real numbers"
    with pytest.raises(DataError, match=re.escape(f"<DataFrame>: {said}")):
        mm.train(spec_dict(), waved, registry=tmp_path / "waved", backend="local")
    assert not (tmp_path / "waved" / "registry.db").exists()
    mm.train(spec_dict(), df, registry=tmp_path / "reg", backend="local")
    with pytest.raises(DataError, match=re.escape(said)):
        mm.score(waved, registry=tmp_path / "reg")
    with Registry.open(tmp_path / "reg") as reg:
        model = reg.load_model({"pid": 0})
        with pytest.raises(InvalidRows, match="feature 'x1' must be a number, not complex"):
            model.predict(waved[waved["pid"] == 0])


def test_a_complex_regression_target_is_refused_naming_it(tmp_path: Path) -> None:
    df = linear_frame(2, 30)
    with pytest.raises(DataError, match="target 'y' holds complex numbers"):
        mm.train(spec_dict(), df.assign(y=df["y"] + 1j), registry=tmp_path, backend="local")


def test_a_numpy_complex_cell_is_refused_by_predict_and_score_without_a_complex_warning(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    """A cell ``np.complex128(1+2j)`` in an object column was scored as its real part, 1
    (``python_numbers`` took it for a number: numpy's are ``np.number``), with numpy's
    ``ComplexWarning`` the only word of it; a complex column is refused as before, and no
    ``ComplexWarning`` escapes either."""
    df = linear_frame(2, 30)
    mm.train(spec_dict(), df, registry=tmp_path / "reg", backend="local")
    rows = df[df["pid"] == 0].head(3).astype({"x1": object}).reset_index(drop=True)
    rows.loc[1, "x1"] = np.complex128(1 + 2j)
    said = "data row 2 (counting from 1): feature 'x1' must be a number, not complex128"
    with Registry.open(tmp_path / "reg") as reg:
        model = reg.load_model({"pid": 0})
        with pytest.raises(InvalidRows, match=re.escape(said)):
            model.predict(rows)
        with pytest.raises(InvalidRows, match="feature 'x1' must be a number, not complex"):
            model.predict(rows.astype({"x1": complex}))
    with pytest.raises(DataError, match=re.escape(said)):
        mm.score(rows, registry=tmp_path / "reg", backend="local")
    assert not [w for w in recwarn if issubclass(w.category, np.exceptions.ComplexWarning)]
