"""Tests for manymodels.data: reading CSV / Parquet / DataFrames and checking them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import RIDGE, linear_frame, spec_dict

from manymodels.data import prepare, read_table
from manymodels.exceptions import DataError
from manymodels.samples import user_activity
from manymodels.spec import Spec


@pytest.fixture(scope="module")
def store_spec(samples_dir: Path) -> Spec:
    return Spec.from_toml(samples_dir / "store_sales.toml")


def test_csv_parquet_and_dataframe_give_the_same_table(
    samples_dir: Path, store_spec: Spec, tmp_path: Path
) -> None:
    csv = samples_dir / "store_sales.csv"
    raw = pd.read_csv(csv)
    parquet = tmp_path / "store_sales.parquet"
    raw.to_parquet(parquet)
    tables = [prepare(store_spec, src)[0] for src in (csv, str(parquet), raw)]
    first = tables[0]
    assert len(first) == 36
    assert first.features == ["price", "deal", "feat"]
    for other in tables[1:]:
        assert other.keys == first.keys
        assert other.fingerprints == first.fingerprints
        assert np.array_equal(other.X, first.X)
        assert np.array_equal(other.y, first.y)


def test_time_column_text_is_parsed_to_dates(samples_dir: Path, store_spec: Spec) -> None:
    _, df = prepare(store_spec, samples_dir / "store_sales.csv")
    assert pd.api.types.is_datetime64_any_dtype(df["week"])


def test_missing_columns_name_them_and_the_source(samples_dir: Path, store_spec: Spec) -> None:
    source = samples_dir / "user_activity.csv"
    with pytest.raises(DataError) as info:
        prepare(store_spec, source)
    message = str(info.value)
    assert message.startswith(f"{source}: missing column(s)")
    for col in ("'store'", "'brand'", "'units'", "'price'", "'week'"):
        assert col in message
    assert "store-sales" in message


def test_a_missing_column_in_two_roles_is_named_once(samples_dir: Path) -> None:
    """``plan`` is a feature and categorical: the error names it once, in first-seen order."""
    spec = Spec.from_toml(samples_dir / "user_activity.toml")
    df = pd.DataFrame({"other": [1, 2]})
    with pytest.raises(DataError) as info:
        prepare(spec, df)
    named = str(info.value).split("missing column(s) ")[1].split(" required by")[0]
    assert named == (
        "'user_id', 'minutes_active', 'plan', 'sessions', 'pages', 'notifications', 'weekend', "
        "'day'"
    )


def test_missing_column_in_a_dataframe(store_spec: Spec, samples_dir: Path) -> None:
    df = pd.read_csv(samples_dir / "store_sales.csv").drop(columns=["deal"])
    with pytest.raises(DataError, match=r"^<DataFrame>: missing column\(s\) 'deal' "):
        prepare(store_spec, df)


@pytest.mark.parametrize(
    ("dropped", "overrides", "message"),
    [
        pytest.param(
            ["plan"], {"target": "minutes_active", "categorical": ["plan"]}, "'plan'",
            id="categorical-column-missing",
        ),
        pytest.param(
            [], {"target": "minutes_active", "features": ["plan", "sessions"], "categorical": []},
            r"'plan' hold text; list them in 'categorical'", id="text-feature-not-categorical",
        ),
        pytest.param(
            [], {"target": "plan", "features": ["sessions", "pages"]},
            r"<DataFrame>: target 'plan' must be numeric", id="regression-target-text",
        ),
    ],
)  # fmt: skip
def test_a_column_the_spec_cannot_use_is_a_data_error_naming_it(
    dropped: list[str], overrides: dict[str, Any], message: str
) -> None:
    """``user_activity``'s ``plan`` (text) where the spec needs it otherwise: absent though
    listed categorical, a feature not listed categorical, a regression target. Each is the
    user's data or spec at fault, so a ``DataError`` that names the column, not a crash."""
    df = user_activity(n_users=3, days=25).drop(columns=dropped)
    spec = Spec.from_dict(spec_dict(partition_by=["user_id"], time_column="day", **overrides))
    with pytest.raises(DataError, match=message):
        prepare(spec, df)


def test_text_features_are_categorical_when_not_declared() -> None:
    df = user_activity(n_users=3, days=25)
    spec = Spec.from_dict(
        spec_dict(partition_by=["user_id"], target="minutes_active", time_column="day")
    )
    table, _ = prepare(spec, df)
    assert table.categorical == ["plan"]
    assert table.features == ["plan", "sessions", "pages", "notifications", "weekend"]
    assert isinstance(table.X, pd.DataFrame)


def test_classification_accepts_a_text_target() -> None:
    df = user_activity(n_users=3, days=25)
    spec = Spec.from_dict(
        spec_dict(
            task="classification", partition_by=["user_id"], target="plan", time_column="day",
            features=["sessions", "pages"],
            candidates=[{"estimator": "sklearn.linear_model.LogisticRegression"}],
        )
    )  # fmt: skip
    table, _ = prepare(spec, df)
    assert set(table.y.tolist()) <= {"free", "pro"}


def test_unparseable_time_column(samples_dir: Path, store_spec: Spec) -> None:
    df = pd.read_csv(samples_dir / "store_sales.csv")
    df.loc[5, "week"] = "last tuesday"
    with pytest.raises(DataError, match=r"<DataFrame>: time column 'week' is not dates or numbers"):
        prepare(store_spec, df)


def test_missing_time_values(samples_dir: Path, store_spec: Spec) -> None:
    df = pd.read_csv(samples_dir / "store_sales.csv")
    df.loc[5, "week"] = None
    with pytest.raises(DataError, match="time column 'week' has missing values"):
        prepare(store_spec, df)


def test_numeric_time_column_is_kept() -> None:
    spec = Spec.from_dict(spec_dict())
    df = pd.DataFrame({"pid": 1, "t": [3, 1, 2], "x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]})
    table, _ = prepare(spec, df)
    assert table.time is not None
    assert table.time.tolist() == [1, 2, 3]
    assert table.y.tolist() == [2.0, 3.0, 1.0]


def test_datetime_feature_is_rejected() -> None:
    spec = Spec.from_dict(spec_dict(time_column=None))
    df = pd.DataFrame({"pid": 1, "when": pd.to_datetime(["2024-01-01"] * 3), "y": [1.0, 2, 3]})
    with pytest.raises(DataError, match="feature 'when' is a datetime"):
        prepare(spec, df)


def test_no_features_left() -> None:
    spec = Spec.from_dict(spec_dict())
    df = pd.DataFrame({"pid": [1, 1], "t": [0, 1], "y": [1.0, 2.0]})
    with pytest.raises(DataError, match="no feature columns left"):
        prepare(spec, df)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=f"^{path}: data file not found$"):
        read_table(path)


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "sales.xlsx"
    path.write_bytes(b"not really excel")
    with pytest.raises(DataError, match=r"unknown data format '\.xlsx'"):
        read_table(path)


def test_unreadable_parquet(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match=f"^{path}: cannot read table"):
        read_table(path)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (
            [{"pid": 1, "t": 0, "x0": 1.0, "x1": 2.0, "y": 3.0}],
            "list (pandas.DataFrame(…) makes one)",
        ),
        (np.zeros((2, 5)), "ndarray (pandas.DataFrame(…) makes one)"),
        (None, "NoneType"),
        (5, "int"),
    ],
)
def test_data_that_is_no_table_is_refused_before_anything_is_made(
    tmp_path: Path, data: object, named: str
) -> None:
    """A list of dicts (or an array) was read as a file name: OSError "File name too long"
    quoting every row; ``None`` a bare TypeError from pathlib, for train and score alike."""
    from manymodels.pipeline import train
    from manymodels.scoring import score

    message = "^data must be a pandas DataFrame or the path of a CSV or Parquet file, not "
    with pytest.raises(DataError, match=message + re.escape(named) + "$"):
        train(spec_dict(), data, tmp_path / "reg", backend="local")  # type: ignore[arg-type]
    assert not (tmp_path / "reg").exists()
    train(spec_dict(), linear_frame(2), tmp_path / "reg", backend="local")
    with pytest.raises(DataError, match=message + re.escape(named) + "$"):
        score(data, tmp_path / "reg", backend="local")  # type: ignore[arg-type]


def test_a_frame_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    """As a CSV's header naming one twice is: train and score failed far inside with a bare
    AttributeError ('DataFrame' object has no attribute 'dtype') or TypeError."""
    from manymodels.pipeline import train
    from manymodels.scoring import score

    df = linear_frame(2)
    twice = pd.concat([df, df[["x0"]]], axis=1)
    with pytest.raises(DataError, match=r"^<DataFrame>: column 'x0' is named twice$"):
        train(spec_dict(), twice, tmp_path / "reg", backend="local")
    assert not (tmp_path / "reg").exists()
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    with pytest.raises(DataError, match=r"^<DataFrame>: column 'x0' is named twice$"):
        score(twice, tmp_path / "reg", backend="local")
    with pytest.raises(DataError, match=r"^<DataFrame>: column 'pid' is named twice$"):
        score(pd.concat([df, df[["pid"]]], axis=1), tmp_path / "reg", backend="local")


def test_a_column_nothing_reads_may_be_named_twice(tmp_path: Path) -> None:
    """A column the spec never names, repeated, is no one's guess: score and predict took
    such a frame before repeated columns were refused, and still do."""
    from manymodels.pipeline import train
    from manymodels.registry import Registry
    from manymodels.scoring import score

    df = linear_frame(2)
    train(spec_dict(features=["x0", "x1"]), df, tmp_path / "reg", backend="local")
    twice = pd.concat([df, df[["x0"]].rename(columns={"x0": "note"})], axis=1)
    twice = pd.concat([twice, twice[["note"]]], axis=1)
    assert len(score(twice, tmp_path / "reg", backend="local")) == len(df)
    with Registry.open(tmp_path / "reg") as reg:
        one = twice[twice["pid"] == 0]
        assert len(reg.load_model("pid=0").predict(one)) == len(one)


def test_dataframe_passes_through() -> None:
    df = pd.DataFrame({"a": [1]})
    assert read_table(df) is df


def test_all_columns_are_features_by_default() -> None:
    spec = Spec.from_dict(spec_dict(candidates=[{"estimator": RIDGE}]))
    df = pd.DataFrame(
        {"pid": [1, 1, 2], "t": [0, 1, 0], "b": [1, 2, 3], "a": [0.5, 1.5, 2.5], "y": [1.0, 2, 3]}
    )
    table, _ = prepare(spec, df)
    assert table.features == ["b", "a"]
    assert table.X.dtype == np.float64


def _codes_spec(key: str) -> Spec:
    return Spec.from_dict(
        {"name": "codes", "partition_by": [key], "target": "y", "features": ["x"],
         "candidates": [{"estimator": "sklearn.linear_model.Ridge"}]}
    )  # fmt: skip


def test_key_codes_a_csv_reads_as_missing_are_named_in_their_file(tmp_path: Path) -> None:
    """A user id 'NA' read from a CSV is a missing value: the error read "partition column
    'user' has 1 missing value(s)", naming neither the file nor why."""
    spec = _codes_spec("user")
    frame = pd.DataFrame({"user": ["AB"] * 10 + ["NA"] * 10, "x": range(20), "y": range(20)})
    frame.to_csv(tmp_path / "users.csv", index=False)
    with pytest.raises(DataError) as e:
        prepare(spec, tmp_path / "users.csv")
    assert str(e.value).startswith(
        f"{tmp_path / 'users.csv'}: partition column 'user' has 10 missing value(s) (empty "
        "cells, or codes the CSV reader takes for missing values: 'NA', 'nan', 'null'"
    ), e.value


def test_codes_a_csv_reads_as_one_number_are_refused(tmp_path: Path) -> None:
    """Store codes '007' and '7' read from a CSV as the number 7: two series trained as one
    partition, silently, where a Parquet file keeps them apart."""
    spec = _codes_spec("k")
    frame = pd.DataFrame({"k": ["007"] * 10 + ["7"] * 10, "x": range(20), "y": range(20)})
    frame.to_csv(tmp_path / "codes.csv", index=False)
    with pytest.raises(DataError, match=r"key column 'k' holds '007' and '7', which read as one"):
        prepare(spec, tmp_path / "codes.csv")
    frame.to_parquet(tmp_path / "codes.parquet")
    assert prepare(spec, tmp_path / "codes.parquet")[0].keys == ["k=007", "k=7"]
    # zero-padded codes that collide with nothing, and one number written two ways, still read
    padded = frame.assign(k=["007"] * 10 + ["08"] * 10)
    padded.to_csv(tmp_path / "padded.csv", index=False)
    table = prepare(spec, tmp_path / "padded.csv")[0]
    assert table.keys == ["k=7", "k=8"]
    # … keyed by their numbers, said at training: a request naming '007' found no partition
    assert table.extra["warnings"] == [
        "key column 'k' holds codes written with leading zeros (e.g. '007'), read as numbers: "
        "their partitions are keyed k=7, and a request naming '007' is answered by the "
        "fallback. To keep the zeros, give the column as text (a Parquet file, or a DataFrame "
        "with it as str)"
    ]
    long = frame.assign(k=["0012345678"] * 20)  # the key as the registry writes it
    long.to_csv(tmp_path / "long.csv", index=False)
    (warning,) = prepare(spec, tmp_path / "long.csv")[0].extra["warnings"]
    assert "keyed k=12345678, and a request naming '0012345678'" in warning
    twice = frame.assign(k=["1"] * 10 + ["1.0"] * 10)
    twice.to_csv(tmp_path / "twice.csv", index=False)
    table = prepare(spec, tmp_path / "twice.csv")[0]
    assert table.keys == ["k=1"] and "warnings" not in table.extra


def test_text_times_of_two_utc_offsets_say_why_they_are_refused() -> None:
    """A zone-aware column written to CSV keeps each time's offset, which changes with
    daylight saving time: pandas refuses to mix them, and the error read "is not dates or
    numbers", though every cell was a date."""
    from manymodels.timecolumn import parse_time

    times = pd.date_range("2024-03-28", periods=6, freq="D", tz="Europe/Berlin")
    df = pd.DataFrame({"t": [t.isoformat() for t in times]})
    with pytest.raises(DataError, match=r"more than one UTC offset .*give the table as Parquet"):
        parse_time(df, "t", source="x.csv")
    same = pd.DataFrame({"t": [t.isoformat() for t in times[:2]]})  # one offset: parsed
    assert parse_time(same, "t", source="x.csv")["t"].dt.tz is not None
    mixed = pd.DataFrame({"t": [times[0].isoformat(), "2024-03-29T00:00:00"]})
    with pytest.raises(DataError, match=r"with a UTC offset and times without one, the first "
                       r"'2024-03-29T00:00:00' in data row 2"):  # fmt: skip
        parse_time(mixed, "t", source="x.csv")
    blank = pd.DataFrame({"t": [times[0].isoformat(), "", times[5].isoformat()]})
    with pytest.raises(DataError, match="more than one UTC offset"):
        parse_time(blank, "t", source="x.csv")  # an empty cell is no time without an offset
    stamps = pd.DataFrame({"t": [times[0], pd.Timestamp("2024-03-29")]}, dtype=object)
    with pytest.raises(DataError, match=r"without one, the first Timestamp\('2024-03-29"):
        parse_time(stamps, "t", source="frame")


def test_a_csv_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    """pandas renamed the second ``x`` to ``x.1``, which trained as a feature of a name
    nobody wrote (with ``features = ["x"]``: the first ``x`` alone, silently)."""
    from manymodels.data import read_table

    path = tmp_path / "dup.csv"
    path.write_text("k,x,y,x\na,1,2,3\n")
    with pytest.raises(DataError, match=r"dup.csv: column 'x' is named twice in the header row"):
        read_table(path)
    path.write_text("k,x,y,x.1\na,1,2,3\n")  # a real column of that name
    assert list(read_table(path).columns) == ["k", "x", "y", "x.1"]


def test_a_classification_target_of_fractions_is_refused_before_any_work() -> None:
    """Every partition and the fallback failed one by one with scikit-learn's "Unknown label
    type: continuous" after the work, and a failed run was recorded."""
    from manymodels.data import prepare

    spec = Spec.from_dict(spec_dict(task="classification", metric="accuracy"))
    df = linear_frame(2, 20)
    with pytest.raises(DataError, match=r"target 'y' holds .*, not a class label"):
        prepare(spec, df)
    labels = df.assign(y=(df["y"] > df["y"].median()).astype(float))  # 0.0 / 1.0: labels
    prepare(spec, labels)


def test_a_classification_target_mixing_text_and_numbers_is_refused_in_one_line() -> None:
    """``1`` beside ``"one"`` (a frame built from two sources): the run died in numpy's sort
    ("'<' not supported between instances of 'int' and 'str'")."""
    from manymodels.data import prepare

    spec = Spec.from_dict(spec_dict(task="classification", metric="accuracy"))
    df = linear_frame(2, 20)
    labels = np.where(df["y"] > df["y"].median(), "one", None)
    mixed = df.assign(y=pd.Series(labels, dtype=object).fillna(1))
    with pytest.raises(DataError, match=r"target 'y' mixes text and other labels \('one' and 1\)"):
        prepare(spec, mixed)
    prepare(spec, df.assign(y=mixed["y"].astype(str)))  # all text: two classes, '1' and 'one'
    prepare(spec, df.assign(y=pd.Series(np.where(labels == "one", "one", None), dtype=object)))


# ------------------------------------------------------------- frames as notebooks hold them
def test_a_frame_of_category_columns_trains_and_scores_as_its_values(
    tmp_path: Path, samples_dir: Path
) -> None:
    """``deal`` and ``feat`` as pandas ``category`` (of numbers): recorded as text, so every
    request had to send text, which the encoder (fitted on the numbers) took for unknown
    values: every one-hot column 0, wrong answers, silently; the frame itself was refused.
    A category column is categorical, as text is, and holds its values; its keys give the
    same fingerprint as plain ones (``--changed-only`` retrained every partition)."""
    from manymodels.pipeline import train
    from manymodels.registry import Registry
    from manymodels.scoring import score

    df = pd.read_csv(samples_dir / "store_sales.csv")
    spec = samples_dir / "store_sales.toml"
    as_category = df.astype({"deal": "category", "feat": "category", "brand": "category"})
    root = tmp_path / "registry"
    train(spec, as_category, root, backend="local")
    with Registry.open(root) as reg:
        loaded = reg.load_model({"store": 2, "brand": "tropicana"})
    assert loaded.version.feature_schema["categorical"] == ["deal", "feat"]
    rows = df[(df["store"] == 2) & (df["brand"] == "tropicana")].head(5)
    fitted = loaded.model.predict(rows[["price", "deal", "feat"]])  # as the estimator saw them
    np.testing.assert_allclose(loaded.predict(rows.astype({"deal": "category"})), fitted)
    np.testing.assert_allclose(loaded.predict(rows.to_dict("records")), fitted)
    scored = score(as_category.loc[rows.index], root, backend="local")["prediction"]
    np.testing.assert_allclose(scored, fitted)
    again = train(spec, as_category, root, backend="local", changed_only=True)
    assert again.run.n_trained == 0


def test_a_parquet_date_read_with_the_pyarrow_backend_is_a_time(tmp_path: Path) -> None:
    """``pd.read_parquet(..., dtype_backend="pyarrow")`` gives a DATE column as
    ``date32[pyarrow]``: taken for datetimes, it reached numpy as ``datetime.date`` objects
    and failed with "float() argument must be … not 'datetime.date'"."""
    df = linear_frame(2, 30)
    df["t"] = (pd.Timestamp("2024-01-01") + pd.to_timedelta(df["t"] * 7, unit="D")).dt.date
    df.to_parquet(tmp_path / "dates.parquet")
    arrow = pd.read_parquet(tmp_path / "dates.parquet", dtype_backend="pyarrow")
    assert str(arrow["t"].dtype) == "date32[day][pyarrow]"
    spec = Spec.from_dict(spec_dict(lags=[1]))
    table, _ = prepare(spec, arrow)
    assert table.extra["frequency"] == "7D"
    assert table.time[0] == np.datetime64("2024-01-01")


def test_an_index_named_like_a_key_column_is_no_second_key(samples_dir: Path) -> None:
    """``set_index("store", drop=False)``: pandas refused to group by a name both an index
    level and a column ("… is ambiguous"), a traceback from ``train`` and ``score``."""
    df = pd.read_csv(samples_dir / "store_sales.csv")
    spec = Spec.from_dict({**spec_dict(), "partition_by": ["store", "brand"], "target": "units",
                           "time_column": "week", "features": ["price"]})  # fmt: skip
    plain_keys = prepare(spec, df)[0].keys
    indexed = df.set_index(["store", "brand"], drop=False)
    assert prepare(spec, indexed)[0].keys == plain_keys
    assert read_table(indexed).index.names == [None, None]
    assert read_table(df.set_index("week", drop=False)).index.names == [None]


def test_plain_keeps_what_a_model_can_hold_of_every_kind_of_category() -> None:
    """Booleans with a missing value became text, which no request matched; ``pd.cut``'s
    intervals trained as a column no frame could be scored with; a column named twice
    crashed here (the checks after say what is wrong)."""
    df = pd.DataFrame({
        "flag": pd.Categorical([True, False, None]),
        "band": pd.cut([1, 5, 9], [0, 4, 10]),
        "code": pd.Categorical([3, None, 7]),
        "x": [1.0, 2.0, 3.0],
    })  # fmt: skip
    out = read_table(df)
    assert out["flag"].dtype == np.float64 and out["flag"].tolist()[:2] == [1.0, 0.0]
    assert out["band"].tolist() == ["(0, 4]", "(4, 10]", "(4, 10]"]
    assert out["code"].dtype == np.float64 and np.isnan(out["code"][1])
    assert out["x"].tolist() == df["x"].tolist() and df["flag"].dtype == "category"  # a copy
    twice = pd.DataFrame([[1, 2]], columns=["a", "a"])
    assert read_table(twice) is twice


def test_a_spec_name_a_letter_off_a_tables_column_is_pointed_out() -> None:
    """``target = "unit"`` over a table of ``units`` (or ``feature = ["price"]`` over
    ``prices``) said only "missing column(s) 'unit' … (table has: …, units)", the typo left
    to spot by eye in a list of every column."""
    frame = linear_frame(1, 5).rename(columns={"y": "units", "x0": "price"})
    spec = Spec.model_validate(spec_dict(target="unit", features=["prices", "x1"]))
    with pytest.raises(DataError) as caught:
        prepare(spec, frame)
    assert str(caught.value) == (
        "<DataFrame>: missing column(s) 'unit', 'prices' required by spec 'test' (table has: "
        "pid, t, price, x1, units); did you mean 'units' for 'unit', 'price' for 'prices'?"
    )


@pytest.mark.parametrize(
    ("renamed", "target", "feature", "hint"),
    [
        pytest.param(
            {"y": "Units", "x0": "Prices"}, "unit", "price",
            "(table has: pid, t, Prices, x1, Units); did you mean 'Units' for 'unit', "
            "'Prices' for 'price'?",
            id="a-letter-and-a-case-off",
        ),
        pytest.param(
            {"y": "units", "x0": "price"}, "Units", "prices",
            "(table has: pid, t, price, x1, units); the table has 'units' for 'Units': names "
            "differ in spaces or case; did you mean 'price' for 'prices'?",
            id="a-case-slip-and-a-typo",
        ),
    ],
)  # fmt: skip
def test_every_misspelt_name_is_pointed_out(
    renamed: dict[str, str], target: str, feature: str, hint: str
) -> None:
    """A spec's names a letter, a case or both off the table's. ``target = "unit"`` over a
    spreadsheet's ``Units`` (``Prices`` for ``price``): the did-you-mean compared names as
    written, where one letter and a capital scored under its cutoff, so the error listed
    every column and suggested nothing. ``target = "Units"`` over ``units`` beside
    ``features = ["prices"]`` over ``price``: the case hint was the only one said, the typo
    left for the next run to find."""
    frame = linear_frame(1, 5).rename(columns=renamed)
    spec = Spec.model_validate(spec_dict(target=target, features=[feature, "x1"]))
    with pytest.raises(DataError) as caught:
        prepare(spec, frame)
    assert str(caught.value).endswith(hint)


@pytest.mark.parametrize(
    ("header", "sep", "hint"),
    [
        ("pid, t, x0, x1, y", ",", "the table has ' y' for 'y', ' t' for 't': names differ"),
        ("pid,T,x0,x1,y", ",", "the table has 'T' for 't': names differ in spaces or case"),
        ("pid;t;x0;x1;y", ";", "its header is one column holding semicolons"),
        ("pid\tt\tx0\tx1\ty", "\t", "its header is one column holding tabs"),
    ],
)
def test_a_header_that_nearly_names_the_columns_says_how(
    tmp_path: Path, header: str, sep: str, hint: str
) -> None:
    """A spreadsheet's export (`store, date` with spaces, a capital, `;` or tabs between
    names) was refused as missing every column, the table's header shown but not why."""
    path = tmp_path / "t.csv"
    rows = linear_frame(1, 5).to_csv(index=False, header=False, sep=sep)
    path.write_text(f"{header}\n{rows}")
    with pytest.raises(DataError, match="missing column") as caught:
        prepare(Spec.model_validate(spec_dict()), path)
    assert hint in str(caught.value) and "\n" not in str(caught.value)
    # a name that is simply not there gets no hint
    with pytest.raises(DataError) as plain:
        prepare(Spec.model_validate(spec_dict(features=["x0", "x1"])),
                linear_frame(1, 5).drop(columns="x1"))  # fmt: skip
    assert str(plain.value).endswith("(table has: pid, t, x0, y)")


@pytest.mark.parametrize("flag", [True, np.True_], ids=["bool", "numpy-bool"])
def test_a_boolean_among_a_regression_target_s_numbers_is_named_with_its_row(flag: object) -> None:
    """A ``True`` among a regression target's numbers (an object column: a JSON ``true``, a
    merge of two frames) was refused as "target 'y' must be numeric for a regression (found
    dtype object)", naming neither the cell nor its row, where a stray word is named."""
    df = linear_frame(2)
    y = df["y"].astype(object)
    y.iloc[4] = flag
    said = (
        "<DataFrame>: target 'y' holds a boolean (True) in data row 5 (counting from 1): a "
        "regression's target is a number; give 1 or 0, or train a classifier "
        '(task = "classification")'
    )
    with pytest.raises(DataError, match=f"^{re.escape(said)}$"):
        prepare(Spec.from_dict(spec_dict(features=["x0", "x1"])), df.assign(y=y))


def test_a_regression_target_all_of_booleans_is_refused_as_one_among_numbers_is() -> None:
    """A column all of ``True``/``False`` (a CSV's, a bool dtype) is numeric to pandas, and a
    regression trained on it as 1.0 and 0.0, where one ``True`` among numbers is refused."""
    df = linear_frame(2)
    y = pd.Series([i % 3 == 0 for i in range(len(df))])
    said = "<DataFrame>: target 'y' holds a boolean (True) in data row 1 (counting from 1): a "
    with pytest.raises(DataError, match=f"^{re.escape(said)}"):
        prepare(Spec.from_dict(spec_dict(features=["x0", "x1"])), df.assign(y=y))
