"""``mm.score`` returns the caller's own columns as they were given: a notebook user's
``category`` columns stay categories, an index keeps its name, beside the added columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from factories import SALES_SPEC

import manymodels as mm


@pytest.fixture(scope="module")
def sales(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    df = pd.read_csv(samples_dir / "store_sales.csv")
    root = tmp_path_factory.mktemp("dtypes") / "reg"
    mm.train(SALES_SPEC, df, root, backend="local")
    return root, df.drop(columns="units")


def test_category_columns_stay_categories(sales: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    """``store`` and ``brand`` given as ``category`` came back as int64 and str: the
    values scoring reads (``tables.plain``) were returned in the caller's columns."""
    root, df = sales
    plain = mm.score(df, root, backend="local")
    given = df.astype({"store": "category", "brand": "category", "deal": "category"})
    out = mm.score(given, root, backend="local")
    for column in ("store", "brand", "deal"):
        assert out[column].dtype == given[column].dtype, column
        assert out[column].tolist() == df[column].tolist()
    pd.testing.assert_series_equal(out.prediction, plain.prediction)
    assert list(out.columns) == list(plain.columns)
    given.to_parquet(tmp_path / "rows.parquet")  # pandas keeps the categories in the file
    from_file = mm.score(tmp_path / "rows.parquet", root, backend="local")
    assert isinstance(from_file.brand.dtype, pd.CategoricalDtype)
    pd.testing.assert_series_equal(from_file.prediction, plain.prediction)


def test_an_index_named_like_a_column_keeps_its_name(sales: tuple[Path, pd.DataFrame]) -> None:
    """``df.set_index("store", drop=False)`` came back with an unnamed index."""
    root, df = sales
    given = df.set_index("store", drop=False)
    out = mm.score(given, root, backend="local")
    assert out.index.name == "store" and out.index.equals(given.index)
    assert out.prediction.tolist() == mm.score(df, root, backend="local").prediction.tolist()


def test_model_version_is_nullable_integers_whatever_the_rows(
    sales: tuple[Path, pd.DataFrame],
) -> None:
    """``model_version`` was ``int64`` when every row was scored (an empty table too) and
    ``Int64`` when a row went unscored: the column's type hung on the rows, so an empty
    result, or one batch of a job, did not match another. It is ``Int64`` always."""
    root, df = sales
    for given in (df, df.iloc[:0], df.head(3)):
        out = mm.score(given, root, backend="local")
        assert out["model_version"].dtype == "Int64", len(given)
        assert out["model_version"].notna().all()
    assert mm.score(df.head(3), root, backend="local")["model_version"].tolist() == [1, 1, 1]
