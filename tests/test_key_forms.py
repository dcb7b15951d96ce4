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


def test_a_bare_text_value_is_a_key_of_a_registry_keyed_by_one_column(tmp_path: Path) -> None:
    """``reg.load_model("p1")`` on a registry keyed by one text column was refused ("'p1' is
    not a partition key of the form col=value"), as was ``keys=["p1"]``, where a number of
    an integer key column was taken. The fallback's key and a key's text keep their meaning;
    a bare value on a registry keyed by two columns is refused naming them."""
    from manymodels.forecasting import forecast
    from manymodels.keys import FALLBACK_KEY

    root = tmp_path / "reg"
    df = linear_frame(3).assign(pid=lambda d: "p" + d["pid"].astype(str))
    train(spec_dict(features=["x0", "x1"]), df, root, backend="local")
    with Registry.open(root) as reg:
        assert reg.load_model("p1").version.key == "pid=p1"
        assert reg.get_version("p1", 1).key == "pid=p1"
        assert [v.key for v in reg.list_versions("p2")] == ["pid=p2"]
        assert reg.get_partition("p0").key == "pid=p0"
        assert [m.key for m in reg.alias_history("p0")] == ["pid=p0"]
        assert reg.load_model("pid=p1").version.key == "pid=p1"
        assert reg.load_model(FALLBACK_KEY).version.key == FALLBACK_KEY
    assert forecast(root, keys="p1", horizon=1)["pid"].tolist() == ["p1"]
    assert sorted(forecast(root, keys=["p2", "p0"], horizon=1)["pid"]) == ["p0", "p2"]
    summary = train(spec_dict(features=["x0", "x1"]), df, root, backend="local", only="p2")
    assert summary.run.n_trained == 1

    two = tmp_path / "two"
    train(spec_dict(features=["x0", "x1"], partition_by=["pid", "g"]), df.assign(g="a"), two,
          backend="local")  # fmt: skip
    with Registry.open(two) as reg, pytest.raises(DataError, match="key columns are pid, g"):
        reg.load_model("p1")
