"""``manymodels.features``: reading a table's cells as a model's numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from manymodels.features import python_numbers


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
