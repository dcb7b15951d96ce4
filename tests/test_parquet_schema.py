"""``manymodels.parquet_schema``: which file of a Parquet directory a column's kinds blame."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from manymodels.exceptions import DataError
from manymodels.parquet_schema import unified_schema


def _directory(where: Path, kinds: list[str]) -> Path:
    """One file per kind, read in name order (a.parquet first): 't' as periods or as dates."""
    where.mkdir()
    for name, kind in zip("abc", kinds, strict=False):
        t = list(range(3)) if kind == "numbers" else ["2024-01-01", "2024-01-02", "2024-01-03"]
        pd.DataFrame({"t": t, "y": [1.0, 2.0, 3.0]}).to_parquet(where / f"{name}.parquet")
    return where


@pytest.mark.parametrize(
    ("kinds", "blamed", "says"),
    [
        # 1 against 1: the second file read disagrees with the first, whichever kind it is
        (["numbers", "text"], "b", "holds text here but numbers in 1 other file(s)"),
        (["text", "numbers"], "b", "holds numbers here but text in 1 other file(s)"),
        # 1 against 2: the one file against the rest, wherever it is
        (["numbers", "text", "text"], "a", "holds numbers here but text in 2 other file(s)"),
        (["text", "text", "numbers"], "c", "holds numbers here but text in 2 other file(s)"),
    ],
)
def test_a_column_of_two_kinds_blames_the_file_that_disagrees(
    tmp_path: Path, kinds: list[str], blamed: str, says: str
) -> None:
    """A directory of one file of period numbers and one of text dates blamed the numeric
    file, whichever was read first (1 against 1: the first kind seen was "the odd one"),
    and named no file of the other kind; now the first file read is the norm on a tie, and
    the line names a file of the other kind too."""
    import pyarrow.dataset as ds

    data = _directory(tmp_path / "d", kinds)
    other = next(n for n, k in zip("abc", kinds, strict=False) if k != kinds["abc".index(blamed)])
    with pytest.raises(DataError) as raised:
        unified_schema(ds.dataset(data, format="parquet"), ["t", "y"], str(data))
    assert str(raised.value) == (
        f"{data / blamed}.parquet: column 't' {says} of {data} ({data / other}.parquet "
        "first): fix or remove this file"
    )
