"""A Parquet file's cells no model column holds (lists, structs) and its decimals: a list
in a feature ended ``train`` in pandas' "unhashable type" traceback; a decimal feature was
one-hot encoded as text, and ``score`` refused it as "must be numeric"."""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict
from typer.testing import CliRunner

import manymodels as mm
from manymodels.cli import app
from manymodels.exceptions import DataError
from manymodels.registry import Registry

runner = CliRunner()


def cli(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(
    ("cell", "said"),
    [([1.5, 2.0], "a list ([1.5, 2.0])"), ({"a": 1.5}, "a struct or map ({'a': 1.5})")],
    ids=["list", "struct"],
)
def test_a_nested_cell_is_one_error_line_naming_it(tmp_path: Path, cell: Any, said: str) -> None:
    df = linear_frame(2, 30).astype({"x1": object})
    df["x1"] = [cell] * len(df)
    data = tmp_path / "rows.parquet"
    df.to_parquet(data)
    (tmp_path / "spec.toml").write_text(
        'name = "t"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    res = cli("train", tmp_path / "spec.toml", data, "--registry", tmp_path / "reg")
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [
        f"error: {data}: column 'x1' holds {said} in data row 1 (counting from 1): a cell must "
        "hold one number, text or time; give each value a column of its own"
    ]
    assert not (tmp_path / "reg" / "registry.db").exists()


def test_decimal_features_train_and_score_as_numbers(tmp_path: Path) -> None:
    df = linear_frame(2, 30)
    df["x1"] = [decimal.Decimal(f"{v:.6f}") for v in df["x1"]]
    data = tmp_path / "rows.parquet"
    df.to_parquet(data)  # pyarrow writes decimal128
    summary = mm.train(spec_dict(), data, registry=tmp_path / "reg", backend="local")
    assert summary.run.n_trained == 2
    assert not summary.run.options.get("warnings"), summary.run.options  # "one-hot … as text"
    with Registry.open(tmp_path / "reg") as reg:
        schema = reg.get_version("pid=0").feature_schema
    assert schema["categorical"] == [], schema
    scored = mm.score(pd.read_parquet(data), registry=tmp_path / "reg")
    floats = df.assign(x1=df["x1"].astype(float))
    assert scored["prediction"].tolist() == pytest.approx(
        mm.score(floats, registry=tmp_path / "reg")["prediction"].tolist()
    )


def test_decimals_beside_ints_train_as_numbers_feature_and_target(tmp_path: Path) -> None:
    """Before: a column of decimals and ints (a frame built from a database's rows) is what
    pandas calls "mixed-integer", not "decimal": the feature was one-hot encoded as text (a
    warning, "categorical" in the schema) and a regression's target of them was refused
    ("must be numeric for a regression (found dtype object)")."""
    df = linear_frame(2, 30)
    df["x1"] = pd.Series(
        [decimal.Decimal(f"{v:.6f}") if i % 2 else int(np.rint(v)) for i, v in enumerate(df["x1"])],
        dtype=object,
    )
    df["y"] = pd.Series(
        [decimal.Decimal(f"{v:.4f}") if i % 2 else int(np.rint(v)) for i, v in enumerate(df["y"])],
        dtype=object,
    )
    summary = mm.train(spec_dict(), df, registry=tmp_path / "reg", backend="local")
    assert summary.run.n_trained == 2, summary.failures
    assert not summary.run.options.get("warnings"), summary.run.options
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.get_version("pid=0").feature_schema["categorical"] == []


def test_a_regression_target_of_ints_and_floats_trains_as_numbers(tmp_path: Path) -> None:
    """Before: the target of JSON rows (``[3, 2.5, …]`` in one object column) was refused,
    "target 'y' must be numeric for a regression (found dtype object)", where the same cells
    in a feature trained as numbers."""
    df = linear_frame(2, 30)
    cells = [int(np.rint(v)) if i % 3 == 0 else float(v) for i, v in enumerate(df["y"])]
    floats = df.assign(y=[float(v) for v in cells])
    df["y"] = pd.Series(cells, dtype=object)
    summary = mm.train(spec_dict(), df, registry=tmp_path / "reg", backend="local")
    assert summary.run.n_trained == 2, summary.failures
    as_floats = mm.train(spec_dict(), floats, registry=tmp_path / "floats", backend="local")
    assert as_floats.run.n_trained == 2
    with Registry.open(tmp_path / "reg") as a, Registry.open(tmp_path / "floats") as b:
        assert a.get_version("pid=0").data_fingerprint == b.get_version("pid=0").data_fingerprint


@pytest.mark.parametrize("labels", ["whole", "fractional"])
def test_decimal_labels_of_a_parquet_file_are_classes(tmp_path: Path, labels: str) -> None:
    """Before: a classifier's labels as a database exports 0/1 (``decimal(1,0)``) were the
    classes ``Decimal('0')``/``Decimal('1')``, and the run was refused blaming the metric:
    "metric 'accuracy' cannot score this table's labels (2 classes: Decimal('0'),
    Decimal('1')): Unknown label type …; use a classification metric such as 'accuracy' …".
    Now they are the classes 0 and 1, as the same labels in an int column; a fraction among
    them is refused naming it, as a float column's."""
    df = linear_frame(2, 30)
    df["y"] = [decimal.Decimal(int(v > 0)) for v in df["x0"]]
    if labels == "fractional":
        df.loc[7, "y"] = decimal.Decimal("0.5")
    data = tmp_path / "rows.parquet"
    df.to_parquet(data)  # pyarrow writes decimal128
    spec = spec_dict(task="classification", metric="accuracy")
    spec["candidates"] = [{"estimator": "sklearn.linear_model.LogisticRegression"}]
    if labels == "fractional":
        with pytest.raises(DataError, match=r"target 'y' holds 0\.5, not a class label"):
            mm.train(spec, data, registry=tmp_path / "reg", backend="local")
        return
    summary = mm.train(spec, data, registry=tmp_path / "reg", backend="local")
    assert summary.run.n_trained == 2, summary.failures
    with Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model("pid=0")
        assert loaded.classes == [0, 1]
        assert set(loaded.predict(df[["x0", "x1"]].head(10)).tolist()) <= {0, 1}


def test_a_frame_with_multiindex_columns_is_refused_saying_so(tmp_path: Path) -> None:
    """A pivot_table's or agg's two-level columns: train and score raised pandas' raw
    ``KeyError: "[('pid', '') ('t', '') …] not in index"``, no ``ManyModelsError``."""
    from manymodels.exceptions import DataError

    df = linear_frame(2, 30)
    df.columns = pd.MultiIndex.from_tuples([(c, "") for c in df.columns])
    said = (
        "<DataFrame>: its columns have 2 levels (a MultiIndex, as pivot_table and agg make): "
        "flatten them to one name each first"
    )
    with pytest.raises(DataError) as info:
        mm.train(spec_dict(), df, registry=tmp_path / "reg", backend="local")
    assert str(info.value) == said
    assert not (tmp_path / "reg" / "registry.db").exists()
    mm.train(spec_dict(), linear_frame(2, 30), registry=tmp_path / "reg", backend="local")
    with pytest.raises(DataError) as info:
        mm.score(df, registry=tmp_path / "reg")
    assert str(info.value) == said


def test_the_kinds_checked_cells_found_read_each_column_as_a_second_look_would() -> None:
    from manymodels.cell_kinds import checked_cells
    from manymodels.spec import Spec
    from manymodels.stray_values import numbers_as_floats

    n = 6
    df = pd.DataFrame(
        {
            "pid": ["a"] * n,
            "y": pd.Series([1, 2.5, 3, 4, 5, 6], dtype=object),
            "ints_floats": pd.Series([1, 2.5, None, 4, 5, 6.5], dtype=object),
            "flags": pd.Series([True, False, None, True, True, False], dtype=object),
            "text": ["p", "q", None, "p", "q", "p"],
            "money": [decimal.Decimal("1.5")] * n,
        }
    )
    spec = Spec.coerce(spec_dict(time_column=None))
    cells, kinds = checked_cells(df, df.columns, ["ints_floats", "flags", "money", "y"], source="s")
    assert kinds == {
        "y": "mixed-integer-float",
        "ints_floats": "mixed-integer-float",
        "flags": "boolean",
    }  # the decimals are floats already, and text is pandas' str: no kind kept for them
    told = numbers_as_floats(cells, spec, source="s", kinds=kinds)
    looked = numbers_as_floats(cells, spec, source="s")
    pd.testing.assert_frame_equal(told, looked)
    numbers = ["y", "ints_floats", "flags", "money"]
    assert (told.dtypes[numbers] == np.float64).all(), told.dtypes


SPEC_TOML = (
    'name = "t"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
    '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
)


@pytest.mark.parametrize(
    ("cells", "said"),
    [
        (
            lambda x: pd.to_timedelta(x.abs(), unit="s"),
            "holds durations (dtype timedelta64[ns]): a model reads numbers or text; give them "
            "as numbers, such as seconds (df['x1'].dt.total_seconds())",
        ),
        (
            lambda x: [b"ab"] * len(x),  # a Parquet file's binary column
            "holds bytes (b'ab') in data row 1 (counting from 1): a cell must hold one number, "
            "text or time; decode them to text first (df['x1'].str.decode('utf-8'))",
        ),
    ],
    ids=["durations", "bytes"],
)
def test_durations_and_bytes_in_a_feature_are_one_error_line_naming_it(
    tmp_path: Path, cells: Any, said: str
) -> None:
    df = linear_frame(2, 30)
    df["x1"] = pd.Series(cells(df["x1"]), index=df.index)
    data = tmp_path / "rows.parquet"
    df.to_parquet(data)
    (tmp_path / "spec.toml").write_text(SPEC_TOML)
    res = cli("train", tmp_path / "spec.toml", data, "--registry", tmp_path / "reg")
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [f"error: {data}: column 'x1' {said}"]
    assert not (tmp_path / "reg" / "registry.db").exists()


def test_a_key_of_bytes_still_names_its_partitions(tmp_path: Path) -> None:
    df = linear_frame(2, 30)
    df["pid"] = df["pid"].map({0: b"a", 1: b"b"}).astype(object)
    summary = mm.train(spec_dict(), df, registry=tmp_path / "reg", backend="local")
    assert summary.run.n_trained == 2


def test_a_bytes_cell_among_text_is_named_with_its_row(tmp_path: Path) -> None:
    df = linear_frame(1, 30)
    df["x1"] = ["p", "q", b"r"] * 10
    spec = spec_dict(categorical=["x1"])
    with pytest.raises(DataError, match=re.escape("column 'x1' holds bytes (b'r') in data row 3")):
        mm.train(spec, df, registry=tmp_path / "reg", backend="local")


DURATIONS = (
    "a model reads numbers or text; give them as numbers, such as seconds "
    "(pd.to_timedelta(df['x1']).dt.total_seconds())"
)
COMPLEX = (
    "a model reads real numbers; give the real and imaginary parts (or the magnitude) as "
    "columns of their own"
)


def _durations(df: pd.DataFrame) -> pd.Series:
    """x1 as ``datetime.timedelta`` cells in an object column (``df.astype(object)``, a
    frame built by ``apply``)."""
    return pd.Series([pd.Timedelta(seconds=i) for i in range(len(df))], index=df.index,
                     dtype=object)  # fmt: skip


def _numbers(df: pd.DataFrame) -> pd.Series:
    return df["x1"].astype(object)


@pytest.mark.parametrize(
    ("column", "put", "said"),
    [
        pytest.param(_durations, None,
                     f"durations (Timedelta('0 days 00:00:00')) in data row 1 (counting from 1): "
                     f"{DURATIONS}", id="durations-alone"),
        pytest.param(_durations, (0, 1.5),
                     f"durations (Timedelta('0 days 00:00:01')) in data row 2 (counting from 1): "
                     f"{DURATIONS}", id="durations-beside-numbers"),
        pytest.param(_numbers, (2, np.complex128(1 + 2j)),
                     f"a complex number (np.complex128(1+2j)) in data row 3 (counting from 1): "
                     f"{COMPLEX}", id="numpy-complex-among-numbers"),
        pytest.param(_numbers, (2, 1 + 2j),
                     f"a complex number ((1+2j)) in data row 3 (counting from 1): {COMPLEX}",
                     id="python-complex-among-numbers"),
    ],
)  # fmt: skip
def test_an_object_column_of_cells_no_model_reads_is_refused_as_such_a_column_is(
    tmp_path: Path,
    column: Callable[[pd.DataFrame], pd.Series],
    put: tuple[int, Any] | None,
    said: str,
) -> None:
    """Cells no model reads, in an object column, trained as categories of text and every
    ``score`` of the very frame was refused ("must be text, as the model was trained on
    (found timedelta values)" / "(found mixed values)"), where a ``timedelta64`` or a
    complex128 column is refused at train: ``datetime.timedelta`` cells, alone or beside a
    number, and one complex cell among numbers (inferred "mixed", with the warning "holds
    numbers in 100% of its rows and text in the rest"). Refused alike now, naming the cell
    and its row and what to give instead, before any registry is written."""
    df = linear_frame(2, 30)
    df["x1"] = column(df)
    if put is not None:
        df.loc[put[0], "x1"] = put[1]
    with pytest.raises(DataError, match=re.escape(f"column 'x1' holds {said}")):
        mm.train(spec_dict(), df, registry=tmp_path / "reg", backend="local")
    assert not (tmp_path / "reg" / "registry.db").exists()
