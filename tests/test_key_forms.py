"""One partition key given as a row of ``df.itertuples()``: its key columns by field name."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import linear_frame, spec_dict

from manymodels.exceptions import DataError
from manymodels.pipeline import train
from manymodels.registry import Registry


def test_an_itertuples_row_is_a_key_by_field_name(tmp_path: Path) -> None:
    """``reg.load_model(row)`` of ``df.itertuples()`` was refused ("not Pandas
    Pandas(Index=0, …)"), and a row of ``df[["g", "pid"]].itertuples(index=False)`` was read
    in the registry's column order, as the key 'pid=a,g=1'."""
    root = tmp_path / "reg"
    df = linear_frame(3).assign(g="a")
    train(spec_dict(features=["x0", "x1"], partition_by=["pid", "g"]), df, root, backend="local")
    rows = df[df["pid"] == 1]
    with Registry.open(root) as reg:
        for row in (
            next(rows.itertuples()),
            next(rows[["g", "pid"]].itertuples(index=False)),
            next(rows[["pid", "g"]].itertuples(index=True)),
        ):
            assert reg.load_model(row).version.key == "pid=1,g=a", row
            assert reg.key(row) == "pid=1,g=a"
        with pytest.raises(DataError, match=r"a row of df.itertuples\(\) has no field\(s\) 'g'"):
            reg.load_model(next(rows[["pid", "x0"]].itertuples(index=False)))
