"""Tests for manymodels.partition: canonical keys (``manymodels.keys``, re-exported here; its
tests live here, as tests/serving/test_keys.py is the router's), the one-pass split,
fingerprints."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict

from manymodels.exceptions import DataError
from manymodels.keys import encode_texts, quote_text
from manymodels.partition import (
    FALLBACK_KEY,
    concat,
    decode_key,
    encode_key,
    format_value,
    key_from_mapping,
    normalize_key,
    split,
)
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.scoring import score


# ------------------------------------------------------------------------------ keys
def test_composite_key_canonical_form() -> None:
    assert encode_key([2, "tropicana"], ["store", "brand"]) == "store=2,brand=tropicana"
    assert key_from_mapping({"brand": "tropicana", "store": 2}, ["store", "brand"]) == (
        "store=2,brand=tropicana"
    )


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a/b", "a%2Fb"),
        ("a,b", "a%2Cb"),
        ("a=b", "a%3Db"),
        ("..", ".."),
        ("../../etc", "..%2F..%2Fetc"),
        ("a b", "a%20b"),
        ("ünï", "%C3%BCn%C3%AF"),
        ("100%", "100%25"),
        ("%2F", "%252F"),
        ("+", "%2B"),
    ],
)
def test_special_values_round_trip(value: str, encoded: str) -> None:
    key = encode_key([value, 7], ["name", "n"])
    assert key == f"name={encoded},n=7"
    assert decode_key(key) == {"name": value, "n": "7"}
    assert normalize_key(key) == key
    assert "/" not in key
    assert " " not in key


def test_ints_and_integral_floats_share_a_key() -> None:
    assert encode_key([2], ["s"]) == encode_key([2.0], ["s"]) == encode_key([np.int64(2)], ["s"])
    assert encode_key([np.float64(2.0)], ["s"]) == "s=2"
    assert encode_key([2.5], ["s"]) == "s=2.5"
    assert encode_key([True], ["s"]) == "s=true"


def test_missing_key_values_are_errors() -> None:
    for value in (None, float("nan"), np.nan, pd.NA):
        with pytest.raises(DataError, match="missing"):
            format_value(value)


def test_decode_rejects_text_that_is_not_a_key() -> None:
    for bad in ("../../etc", "a/b", "store", "=1", "a=1,a=2", ""):
        with pytest.raises(DataError, match="not a partition key"):
            decode_key(bad)


def test_normalize_encodes_and_reorders_user_input() -> None:
    assert normalize_key("store=2,brand=a/b") == "store=2,brand=a%2Fb"
    assert normalize_key("brand=a b,store=2", ["store", "brand"]) == "store=2,brand=a%20b"
    assert normalize_key({"store": 2.0, "brand": "x"}) == "store=2,brand=x"
    assert normalize_key(FALLBACK_KEY) == FALLBACK_KEY
    with pytest.raises(DataError, match="expected store"):
        normalize_key("shop=2", ["store"])
    # `train --partitions 'store = 1,brand=x'` said "names store , brand; expected store,
    # brand": the column 'store ' read as 'store', its spaces unsaid
    said = r"names 'store ', 'brand'; expected store, brand \(without spaces around = and ,\)"
    with pytest.raises(DataError, match=said):
        normalize_key("store = 1,brand=x", ["store", "brand"])
    with pytest.raises(DataError, match="missing column"):
        key_from_mapping({"store": 2}, ["store", "brand"])


@pytest.mark.parametrize("column", ["a,b", "a=b", "store id"])
def test_column_names_are_encoded_too(column: str) -> None:
    key = encode_key(["x", 1], [column, "n"])
    assert " " not in key
    assert decode_key(key) == {column: "x", "n": "1"}


@pytest.mark.parametrize(
    "text",
    ["2024-01-05 10:30:00", "s1_a.b~c", "", "a/b", "x,y=z", "50%", "café", "a+b", "tab\there"],
)
def test_one_encoder_writes_a_key_named_or_a_tables_keys_as_quote_does(text: str) -> None:
    """``quote_text`` (its plain texts without a call per character) is ``quote(text,
    safe=":")`` for any text, and a table's keys (``encode_texts``, ``key_spellings``) are
    what ``encode_key`` writes for the same values, as ``trained_keys.trained_forms`` reads
    them."""
    assert quote_text(text) == quote(text, safe=":")
    key = encode_key(["s 1", text], ["st ore", "ts"])
    assert encode_texts(["st ore", "ts"], [["s 1"], [text]]) == [key]
    assert key == f"st%20ore=s%201,ts={quote(text, safe=':')}"


# ------------------------------------------------------------------------------ split
def frame(seed: int = 0) -> pd.DataFrame:
    """Composite key (store, brand), a time column t, rows in random order."""
    rng = np.random.default_rng(seed)
    rows = []
    for store in (1, 2, 10):
        for brand in ("a/b", "z", "ü n"):
            n = int(rng.integers(3, 8))
            for t in range(n):
                rows.append((store, brand, t, rng.normal(), rng.normal()))
    df = pd.DataFrame(rows, columns=["store", "brand", "t", "x", "y"])
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def do_split(df: pd.DataFrame, **kwargs: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "partition_by": ["store", "brand"],
        "target": "y",
        "features": ["x"],
        "time_column": "t",
    }
    args.update(kwargs)
    return split(df, **args)  # type: ignore[arg-type]


def test_split_groups_composite_keys() -> None:
    df = frame()
    table = do_split(df)
    assert len(table) == 9
    assert table.n_rows == len(df)
    assert len(set(table.keys)) == 9
    for i, key in enumerate(table.keys):
        store, brand = table.key_values[i]
        assert key == encode_key([store, brand], ["store", "brand"])
        assert isinstance(store, int)  # plain Python scalars (JSON-friendly)
        expected = df[(df.store == store) & (df.brand == brand)]
        rows = table.rows(i)
        assert sorted(table.y[rows].tolist()) == sorted(expected.y.tolist())
        assert sorted(table.X[rows, 0].tolist()) == sorted(expected.x.tolist())


def test_split_orders_rows_by_time_within_a_partition() -> None:
    df = frame()
    table = do_split(df)
    assert table.time is not None
    for i in range(len(table)):
        times = table.time[table.rows(i)]
        assert times.tolist() == list(range(len(times)))
        # x and y travel with their time stamp
        store, brand = table.key_values[i]
        part = df[(df.store == store) & (df.brand == brand)].sort_values("t")
        assert table.y[table.rows(i)].tolist() == part.y.tolist()
        assert table.X[table.rows(i), 0].tolist() == part.x.tolist()


def test_split_without_time_keeps_file_order() -> None:
    df = frame()
    table = do_split(df, time_column=None)
    assert table.time is None
    for i in range(len(table)):
        store, brand = table.key_values[i]
        part = df[(df.store == store) & (df.brand == brand)]
        assert table.y[table.rows(i)].tolist() == part.y.tolist()


def test_integral_float_keys_read_as_ints() -> None:
    df = frame()
    as_float = df.assign(store=df.store.astype(float))
    assert do_split(as_float).keys == do_split(df).keys


@pytest.mark.parametrize(
    ("column", "value"), [("store", np.nan), ("brand", None), ("brand", pd.NA)]
)
def test_null_key_values_are_data_errors(column: str, value: object) -> None:
    df = frame().astype({"brand": object, "store": float})
    df.loc[3, column] = value
    with pytest.raises(DataError, match=f"partition column '{column}' has 1 missing"):
        do_split(df)


def test_empty_table_is_a_data_error() -> None:
    with pytest.raises(DataError, match="no rows"):
        do_split(frame().iloc[:0])


def test_categorical_features_stay_a_dataframe() -> None:
    df = frame().assign(colour=lambda d: np.where(d.x > 0, "red", "blue"))
    table = do_split(df, features=["x", "colour"], categorical=["colour"])
    assert isinstance(table.X, pd.DataFrame)
    assert list(table.X.columns) == ["x", "colour"]
    assert table.X.index.tolist() == list(range(len(df)))


def test_datetime_keys_match_their_mapping_form() -> None:
    df = pd.DataFrame(
        {"d": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02"]), "x": 1.0, "y": 2.0}
    )
    table = split(df, partition_by=["d"], target="y", features=["x"])
    assert table.keys[0] == key_from_mapping({"d": pd.Timestamp("2024-01-01")}, ["d"])


# ------------------------------------------------------------------------------ chunks
def test_chunk_and_concat_round_trip() -> None:
    table = do_split(frame())
    pieces = [table.chunk(0, 4), table.chunk(4, 5), table.chunk(5, 9)]
    assert [len(p) for p in pieces] == [4, 1, 4]
    assert pieces[1].offsets.tolist() == [0, table.rows(4).stop - table.rows(4).start]
    back = concat(pieces)
    assert back.keys == table.keys
    assert back.offsets.tolist() == table.offsets.tolist()
    assert np.array_equal(back.X, table.X)
    assert np.array_equal(back.y, table.y)
    assert back.fingerprints == table.fingerprints


def test_select_keeps_only_named_partitions() -> None:
    table = do_split(frame())
    wanted = {table.keys[1], table.keys[7]}
    sub = table.select(wanted | {"store=404,brand=none"})
    assert sub.keys == [table.keys[1], table.keys[7]]
    assert np.array_equal(sub.y[sub.rows(1)], table.y[table.rows(7)])
    assert len(table.select({"store=404,brand=none"})) == 0


# ------------------------------------------------------------------------------ fingerprints
def fingerprints(df: pd.DataFrame) -> dict[str, str]:
    table = do_split(df)
    return dict(zip(table.keys, table.fingerprints, strict=True))


def test_fingerprints_ignore_input_row_order() -> None:
    df = frame()
    assert fingerprints(df) == fingerprints(df.sample(frac=1.0, random_state=99))
    assert fingerprints(df) == fingerprints(df.iloc[::-1].reset_index(drop=True))


def test_fingerprint_changes_with_one_value_only_in_its_partition() -> None:
    df = frame()
    before = fingerprints(df)
    edited = df.copy()
    edited.loc[0, "y"] += 1e-9
    after = fingerprints(edited)
    key = encode_key([df.loc[0, "store"], df.loc[0, "brand"]], ["store", "brand"])
    assert after[key] != before[key]
    assert {k: v for k, v in after.items() if k != key} == {
        k: v for k, v in before.items() if k != key
    }


def test_fingerprint_changes_with_an_added_duplicate_row() -> None:
    df = frame()
    doubled = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    key = encode_key([df.loc[0, "store"], df.loc[0, "brand"]], ["store", "brand"])
    assert fingerprints(doubled)[key] != fingerprints(df)[key]


def test_fingerprints_differ_between_partitions_with_identical_rows() -> None:
    rows = pd.DataFrame({"t": [0, 1, 2], "x": [1.0, 2.0, 3.0], "y": [3.0, 2.0, 1.0]})
    df = pd.concat(
        [rows.assign(store=1, brand="a"), rows.assign(store=2, brand="a")], ignore_index=True
    )
    fps = list(fingerprints(df).values())
    assert len(fps) == 2
    assert fps[0] != fps[1]


@pytest.mark.parametrize("dtype", ["string", "object"])
def test_a_missing_text_category_as_pd_na_trains_and_scores(tmp_path: Path, dtype: str) -> None:
    """A text categorical feature whose missing cells are ``pd.NA`` (the ``string`` dtype of
    ``df.convert_dtypes()`` or a nullable-dtype reader) failed every fit, the fallback's
    too, so the whole run: "Encoders require their input argument must be uniformly
    strings or numbers. Got ['NAType', 'str']", where the same cells as ``None`` or NaN
    trained. Its missing cells are one category now, the one ``score`` and
    ``LoadedModel.predict`` read a missing text cell as."""
    df = linear_frame(3)
    df["c"] = pd.Series(np.where(df["x0"] > 0, "hi", "lo"), dtype=dtype)
    df.loc[[3, 40], "c"] = pd.NA
    spec = spec_dict(features=["x0", "x1", "c"], categorical=["c"])
    summary = train(spec, df, tmp_path / "reg", backend="local")
    assert (summary.run.n_trained, summary.run.n_failed, summary.fallback) == (3, 0, "trained")
    scored = score(df, tmp_path / "reg")
    with Registry.open(tmp_path / "reg") as reg:
        row = {"x0": df.loc[3, "x0"], "x1": df.loc[3, "x1"], "c": None}
        assert reg.load_model(0).predict(row)[0] == pytest.approx(scored["prediction"][3])
