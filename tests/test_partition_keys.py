"""A key written with an integral decimal (``pid=2.0``, a client's float) names the partition
trained as ``pid=2`` wherever a key is read — the router (tests/serving), ``Registry``, the
CLI's fast read path, ``forecast`` and ``train --partitions`` — and only when the key as
given is none: a partition trained as ``pid=2.0`` (text) stays its own. A key that is
neither text nor a mapping is a ``DataError``, and one key given alone is a selection of one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict

from manymodels.exceptions import DataError, PartitionNotFound
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry.browse import open_browser


def test_a_float_spelling_of_an_integer_key_names_its_partition(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    df = linear_frame(3)
    spec = spec_dict(features=["x0", "x1"])
    train(spec, df, root, backend="local")
    with Registry.open(root) as reg:
        assert reg.key("pid=2.0") == "pid=2" and reg.key({"pid": "2.0"}) == "pid=2"
        assert reg.get_partition("pid=2.0").key == "pid=2"
        assert reg.key("pid=7.0") == "pid=7.0"  # none of either: the key as given
    browser = open_browser(root)
    assert browser is not None
    with browser:
        assert browser.key("pid=2.0") == "pid=2"
    fc = forecast(root, ["pid=2.0"], horizon=1)
    assert fc["pid"].tolist() == [2]
    summary = train(spec, df, root, backend="local", only=["pid=2.0"])
    assert summary.run.n_trained == 1
    with Registry.open(root) as reg:
        assert reg.get_partition("pid=2").latest_version == 2


def test_a_key_trained_as_decimal_text_stays_its_own(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    df = linear_frame(2)
    df["pid"] = df["pid"].map({0: "2", 1: "2.0"})  # two labels, as text
    train(spec_dict(features=["x0", "x1"]), df, root, backend="local")
    with Registry.open(root) as reg:
        assert reg.key("pid=2.0") == "pid=2.0" and reg.key("pid=2") == "pid=2"
        assert {"pid=2", "pid=2.0"} <= {p.key for p in reg.list_partitions(limit=10)}


def test_a_key_past_the_registrys_limit_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    """64 CJK characters percent-encode to 576: PostgreSQL's key column refused the write
    after training, failing the whole run with a traceback (the good partitions lost too),
    while SQLite stored it. Both refuse it first now, in one line."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    df = linear_frame(2)
    df["pid"] = df["pid"].map({0: "店" * 64, 1: "b"})
    data = tmp_path / "long.csv"
    df.to_csv(data, index=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "long"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
        'features = ["x0", "x1"]\n[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    root = tmp_path / "reg"
    result = CliRunner().invoke(app, ["train", str(spec), str(data), "--registry", str(root)])
    assert result.exit_code == 2  # bad input
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {data}: the partition key 'pid=%E5%BA%97"), line
    assert "is 580 characters long" in line and "limit of 512" in line, line
    assert not (root / "registry.db").exists() or not Registry.open(root).list_runs()
    # appended rows are checked in the merged table, which errors name by the appended file,
    # as the checks of the new rows alone do (it read "more.csv (appended)", another file)
    short, posted = tmp_path / "short.csv", tmp_path / "more.csv"
    linear_frame(2).to_csv(short, index=False)
    linear_frame(1).head(3).assign(pid="店" * 64).to_csv(posted, index=False)
    ok = str(tmp_path / "ok")
    first = CliRunner().invoke(app, ["train", str(spec), str(short), "--registry", ok])
    assert first.exit_code == 0, first.output
    appended = CliRunner().invoke(app, ["train", str(spec), str(posted), "--registry", ok,
                                        "--append"])  # fmt: skip
    assert appended.exit_code == 2
    assert appended.stderr.startswith(f"error: {posted}: the partition key 'pid=%E5")


def test_a_date_key_names_its_partition_however_the_table_writes_it(tmp_path: Path) -> None:
    """A date key column trained from a DataFrame is written ``2024-01-01T00:00:00``; the same
    table read from a CSV writes ``2024-01-01``: every row of the CSV was scored by the
    fallback, and a request for ``launch=2024-01-01`` answered by it too."""
    import pandas as pd
    from typer.testing import CliRunner

    from manymodels.cli import app

    root = tmp_path / "reg"
    df = linear_frame(3)
    df["launch"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(df.pop("pid"), unit="D")
    train(spec_dict(partition_by=["launch"], features=["x0", "x1"]), df, root, backend="local")
    with Registry.open(root) as reg:
        assert reg.key("launch=2024-01-02") == "launch=2024-01-02T00:00:00"
    data, out = tmp_path / "rows.csv", tmp_path / "scored.csv"
    df.to_csv(data, index=False)
    assert ",2024-01-02\n" in data.read_text()  # the CSV's own spelling
    scored = CliRunner().invoke(
        app, ["score", str(data), "--out", str(out), "--registry", str(root)]
    )
    assert scored.exit_code == 0, scored.output
    result = pd.read_csv(out)
    assert not result["fallback"].any()
    assert set(result["served_by"]) == {f"launch=2024-01-0{d}T00:00:00" for d in (1, 2, 3)}


@pytest.mark.parametrize("key", [None, b"pid=1", ["pid=1"]])
def test_a_key_that_is_neither_text_nor_a_mapping_says_so(tmp_path: Path, key: object) -> None:
    """``load_model(None)`` raised a bare AttributeError ('NoneType' object has no attribute
    'split') from inside the key parser. The message lists every form the README gives a
    key from Python: it said only "text or a mapping", not a row or a groupby tuple."""
    root = tmp_path / "reg"
    train(spec_dict(features=["x0", "x1"]), linear_frame(2), root, backend="local")
    with Registry.open(root) as reg, pytest.raises(DataError) as caught:
        reg.load_model(key)  # type: ignore[arg-type]
    assert str(caught.value).startswith(
        "a partition key is text (col=value[,col=value]), a mapping of column to value, a row "
        "of the table (df.iloc[i]) or a tuple of the key columns' values in order (a "
        f"df.groupby key), not {type(key).__name__} "
    )


def test_a_value_of_the_one_key_column_is_its_key(tmp_path: Path) -> None:
    """On a registry keyed by one column, ``df.groupby("pid")`` gives plain values, not
    tuples: ``load_model(0)`` and ``forecast(keys=[0, 1])`` were refused ("not int 0") where
    ``(0,)`` was a key. A value alone is now that column's value; a NaN names its column."""
    root = tmp_path / "reg"
    df = linear_frame(3)
    train(spec_dict(features=["x0", "x1"]), df, root, backend="local")
    with Registry.open(root) as reg:
        assert reg.load_model(0).version.key == reg.load_model((0,)).version.key == "pid=0"
        assert reg.load_model(np.int64(2)).version.key == "pid=2"
        with pytest.raises(PartitionNotFound, match="no partition 'pid=123'"):
            reg.load_model(123)
        with pytest.raises(DataError, match="missing \\(NaN\\) in key column 'pid'"):
            reg.load_model(float("nan"))
        keys = [k for k, _ in df.groupby("pid")]
        assert set(forecast(reg, keys=keys, horizon=1)["pid"]) == {0, 1, 2}
        assert set(forecast(reg, keys=1, horizon=1)["pid"]) == {1}
    assert set(
        train(spec_dict(features=["x0", "x1"]), df, root, backend="local", only=[2]).versions
    ) == {"pid=2"}


def test_a_value_or_one_column_on_a_two_column_key_says_what_to_pass(tmp_path: Path) -> None:
    """On a registry keyed by two columns, ``keys=df["store"]`` said "not int 1", with no
    hint; a missing value said "(NaN)" without naming the column that held it."""
    root = tmp_path / "reg"
    df = linear_frame(2).assign(g="a")
    spec = spec_dict(features=["x0", "x1"], partition_by=["pid", "g"])
    train(spec, df, root, backend="local")
    with Registry.open(root) as reg:
        with pytest.raises(DataError) as caught:
            forecast(reg, keys=df["pid"], horizon=1)
        assert str(caught.value) == (
            "keys: the column 'pid' holds one key column's values, and selects nothing on "
            "this registry keyed by pid, g: pass the frame's key columns, df[['pid', 'g']]"
        )
        with pytest.raises(DataError, match="only: the column 'pid' holds one key column"):
            train(spec, df, root, backend="local", only=df["pid"])
        with pytest.raises(DataError) as caught:
            reg.load_model(1)
        assert str(caught.value).endswith(
            "not int 1: a value alone names no partition of this registry, keyed by pid, g: "
            "give a value of each (pid=…, g=…); for a frame's keys pass its key columns, "
            "df[['pid', 'g']]"
        )
        for frame, column in [
            ({"pid": [1, None], "g": ["a", "x"]}, "pid"),
            ({"pid": [1, 0], "g": ["a", None]}, "g"),
        ]:
            with pytest.raises(DataError) as caught:
                forecast(reg, keys=pd.DataFrame(frame), horizon=1)
            assert str(caught.value).startswith("a partition key value is missing")
            assert str(caught.value).endswith(f" in key column {column!r}")


def test_one_key_given_alone_is_a_selection_of_one(tmp_path: Path) -> None:
    """A str for ``only=`` or ``forecast(keys=)`` was read character by character ("'p' is
    not a partition key"); one key alone, text or a mapping, now selects that partition (as
    pandas takes one label where it takes many). An empty ``keys`` raised a bare KeyError."""
    root = tmp_path / "reg"
    spec, df = spec_dict(features=["x0", "x1"]), linear_frame(3)
    train(spec, df, root, backend="local")
    assert set(train(spec, df, root, backend="local", only="pid=1").versions) == {"pid=1"}
    assert set(train(spec, df, root, backend="local", only={"pid": 2}).versions) == {"pid=2"}
    assert forecast(root, "pid=1", horizon=1)["pid"].tolist() == [1]
    assert forecast(root, {"pid": 2}, horizon=1)["pid"].tolist() == [2]
    versions = {"pid=0": 1, "pid=2": 1}  # keyed by keys (a run's ``versions``): its keys
    assert set(train(spec, df, root, backend="local", only=versions).versions) == set(versions)
    assert sorted(forecast(root, versions, horizon=1)["pid"].tolist()) == [0, 2]
    with pytest.raises(DataError, match=r"^keys is empty: name at least one partition"):
        forecast(root, [], horizon=1)
    with pytest.raises(DataError, match=r"^only takes a partition key or a list of them, not byt"):
        train(spec, df, root, backend="local", only=b"pid=1")


def test_a_score_csv_of_text_codes_is_scored_by_their_partitions(tmp_path: Path) -> None:
    """Trained from Parquet with codes '007' and '012' as keys: ``manymodels score`` of a CSV
    read them as 7 and 12 and every row was answered by the fallback (``fallback`` true,
    "pid=7"). The CSV's key columns are now read as the registry's keys hold them."""
    import pandas as pd

    from manymodels.scoring import score

    df = linear_frame(2, 30)
    df["pid"] = df["pid"].map({0: "007", 1: "012"})
    df.to_parquet(tmp_path / "rows.parquet", index=False)
    spec = spec_dict(features=["x0", "x1"], fallback={"enabled": True})
    train(spec, tmp_path / "rows.parquet", tmp_path / "reg", backend="local")
    rows = pd.DataFrame({"pid": ["007", "012"], "t": [30, 30], "x0": 0.3, "x1": 0.1})
    rows.to_csv(tmp_path / "new.csv", index=False)
    from_frame = score(rows, tmp_path / "reg", backend="local")
    from_csv = score(tmp_path / "new.csv", tmp_path / "reg", backend="local")
    assert from_csv["partition"].tolist() == ["pid=007", "pid=012"]
    assert not from_csv["fallback"].any()
    assert from_csv["prediction"].tolist() == from_frame["prediction"].tolist()


def test_actuals_of_a_csv_of_text_codes_reach_their_partitions(tmp_path: Path) -> None:
    """``manymodels actuals`` of a CSV keyed '007' (a registry trained from Parquet) read the
    codes as 7 and skipped every row: "1 key(s) without a model of their own, skipped:
    pid=7"."""
    import json

    from typer.testing import CliRunner

    from manymodels.cli import app

    df = linear_frame(1, 30)
    df["pid"] = "007"
    df.to_parquet(tmp_path / "rows.parquet", index=False)
    train(spec_dict(features=["x0", "x1"]), tmp_path / "rows.parquet", tmp_path / "reg",
          backend="local")  # fmt: skip
    df.tail(5).to_csv(tmp_path / "observed.csv", index=False)
    result = CliRunner().invoke(
        app, ["actuals", str(tmp_path / "observed.csv"), "--registry", str(tmp_path / "reg"),
              "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["unknown"] == [] and len(out["recorded"]) == 1, out


def test_one_tuple_key_given_alone_is_a_selection_of_one(tmp_path: Path) -> None:
    """``only=(2, "b")`` / ``forecast(keys=(2, "b"))`` — the tuple form of a key the README
    offers wherever Python takes one — was iterated value by value and refused as "not int
    2". A tuple of as many values as the key columns is now one key; a tuple of keys is
    still a selection of them."""
    root = tmp_path / "reg"
    df = linear_frame(3).assign(brand=lambda d: d["pid"].map({0: "a", 1: "b", 2: "c"}))
    spec = spec_dict(features=["x0", "x1"], partition_by=["pid", "brand"])
    train(spec, df, root, backend="local")
    assert set(train(spec, df, root, backend="local", only=(1, "b")).versions) == {"pid=1,brand=b"}
    assert forecast(root, (2, "c"), horizon=1)["pid"].tolist() == [2]
    both = ("pid=0,brand=a", "pid=2,brand=c")  # a tuple of two keys: both
    assert sorted(forecast(root, both, horizon=1)["pid"].tolist()) == [0, 2]
    pair = ((0, "a"), (1, "b"))  # a tuple of two tuple keys: both
    assert set(train(spec, df, root, backend="local", only=pair).versions) == {
        "pid=0,brand=a",
        "pid=1,brand=b",
    }


def test_forecasting_a_partition_training_skipped_says_why(tmp_path: Path) -> None:
    """``forecast(reg, df)`` with the table itself as ``keys`` — a partition too small to
    train among its rows — was refused as "no production model for partition(s) 'pid=2'",
    as if a model had gone missing; it now says the registry holds no version of it, why
    (min_rows), and how to forecast every partition that has a model."""
    root = tmp_path / "reg"
    df = linear_frame(3)
    df = df[(df["pid"] != 2) | (df["t"] < 5)]  # pid=2: 5 rows, under min_rows
    train(spec_dict(features=["x0", "x1"], min_rows=20), df, root, backend="local")
    with pytest.raises(PartitionNotFound) as caught:
        forecast(root, df, horizon=1)
    assert str(caught.value) == (
        "no production model for partition(s) 'pid=2': no version in the registry (a key the "
        "data never held, or a partition of fewer than min_rows rows, which training skips and "
        "the fallback model scores); name no partition (keys=, --partitions) to forecast every "
        "one that has a model"
    )
    assert sorted(forecast(root, horizon=1)["pid"]) == [0, 1]


def test_a_groupby_and_its_groups_select_their_keys(tmp_path: Path) -> None:
    """``keys=df.groupby(["pid", "g"])`` read each (key, rows) pair as a key whose ``g`` was
    the rows' text ("no production model for partition(s) 'pid=%280%2C…,g=%20%20…'");
    ``keys=df.groupby(...).groups`` and ``load_model({0: 1})`` crashed with a TypeError
    ("quote_from_bytes() expected bytes"). A GroupBy and its groups select their group keys;
    a mapping whose keys are not column names is a DataError."""
    root = tmp_path / "reg"
    df = linear_frame(3).assign(g="a")
    train(spec_dict(features=["x0", "x1"], partition_by=["pid", "g"]), df, root, backend="local")
    with Registry.open(root) as reg:
        grouped = df.groupby(["pid", "g"])
        for keys in (grouped, grouped.groups):
            assert sorted(forecast(reg, keys=keys, horizon=1)["pid"]) == [0, 1, 2]
        with pytest.raises(DataError, match=r"\(a df.groupby key\), not tuple \(\(0, 'a'\), "):
            reg.load_model(next(iter(grouped)))  # a (key, rows) pair: no key
        with pytest.raises(DataError, match=r"a mapping's keys are column names, not \{0: 1\}$"):
            reg.load_model({0: 1})  # type: ignore[dict-item]


def test_a_timestamp_key_names_its_partition_however_it_is_typed(tmp_path: Path) -> None:
    """A timestamp key column trained from a DataFrame is written ``2024-01-05T10:30:00``,
    from a CSV ``2024-01-05 10:30:00``: ``ts=2024-01-05 10:30`` (as a user types it) was "no
    partition" in either, and the ``T`` form in the CSV's. Each spelling names the partition
    training wrote, in ``Registry``, the CLI and scoring; one of another time stays absent."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    df = linear_frame(2)
    df["ts"] = pd.Timestamp("2024-01-05 10:30") + pd.to_timedelta(df.pop("pid"), unit="D")
    spec = spec_dict(partition_by=["ts"], features=["x0", "x1"])
    frame, csv = tmp_path / "frame", tmp_path / "csv"
    train(spec, df, frame, backend="local")
    data = tmp_path / "rows.csv"
    df.to_csv(data, index=False)
    train(spec, pd.read_csv(data), csv, backend="local")  # the column as the CSV's text
    typed = ["ts=2024-01-05 10:30", "ts=2024-01-05T10:30", "ts=2024-01-05 10:30:00"]
    for root, written in ((frame, "ts=2024-01-05T10:30:00"), (csv, "ts=2024-01-05%2010:30:00")):
        with Registry.open(root) as reg:
            for key in [*typed, "ts=2024-01-05T10:30:00", {"ts": "2024-01-05 10:30"}]:
                assert reg.key(key) == written and reg.load_model(key).version.key == written, key
            with pytest.raises(PartitionNotFound):
                reg.load_model("ts=2024-01-05 10:31")
        shown = CliRunner().invoke(app, ["models", "show", typed[0], "--registry", str(root)])
        assert shown.exit_code == 0 and f"versions of {written}" in shown.output, shown.output
    scored = CliRunner().invoke(
        app, ["score", str(data), "--out", str(tmp_path / "out.csv"), "--registry", str(frame)]
    )
    assert scored.exit_code == 0, scored.output
    assert not pd.read_csv(tmp_path / "out.csv")["fallback"].any()


def test_a_midnight_typed_with_its_time_names_a_day_key(tmp_path: Path) -> None:
    """A day column: ``2024-01-05 00:00:00`` (or ``00:00``) named no partition, where
    ``2024-01-05`` named ``ts=2024-01-05T00:00:00``."""
    root = tmp_path / "reg"
    df = linear_frame(2)
    df["ts"] = pd.Timestamp("2024-01-05") + pd.to_timedelta(df.pop("pid"), unit="D")
    train(spec_dict(partition_by=["ts"], features=["x0", "x1"]), df, root, backend="local")
    with Registry.open(root) as reg:
        for key in ("ts=2024-01-05 00:00:00", "ts=2024-01-05 00:00", "ts=2024-01-05T00:00"):
            assert reg.load_model(key).version.key == "ts=2024-01-05T00:00:00", key


def test_a_timestamp_typed_beside_a_day_key_names_its_partition(tmp_path: Path) -> None:
    """Keyed by a day and a timestamp read from a CSV (``d=2024-01-05,ts=2024-01-05
    10:30:00``), or a DataFrame's date and timestamp (``ts=2024-01-05T10:30:00``):
    ``ts=2024-01-05 10:30`` beside the day was "no partition", the day respelt with it
    (``2024-01-05 00:00:00``, ``2024-01-05T00:00:00``), which neither table writes."""
    df = linear_frame(2)
    pid = df.pop("pid")
    df["d"] = (pd.Timestamp("2024-01-05") + pd.to_timedelta(pid, unit="D")).dt.date
    df["ts"] = pd.Timestamp("2024-01-05 10:30") + pd.to_timedelta(pid, unit="D")
    spec = spec_dict(partition_by=["d", "ts"], features=["x0", "x1"])
    data, frame, csv = tmp_path / "rows.csv", tmp_path / "frame", tmp_path / "csv"
    df.to_csv(data, index=False)
    train(spec, df, frame, backend="local")
    train(spec, pd.read_csv(data), csv, backend="local")
    for root, stamp in ((frame, "2024-01-05T10:30:00"), (csv, "2024-01-05%2010:30:00")):
        with Registry.open(root) as reg:
            for typed in ("2024-01-05 10:30", "2024-01-05T10:30"):
                key = f"d=2024-01-05,ts={typed}"
                assert reg.key(key) == f"d=2024-01-05,ts={stamp}", (root.name, key)


def test_a_boolean_key_names_its_partition_as_true_or_1(tmp_path: Path) -> None:
    """A boolean key column is written ``true``/``false``: ``flag=True``, ``TRUE`` and
    ``1`` were "no partition". A text column that holds ``True`` keeps its own key, and an
    integer one its ``1``."""
    root, text = tmp_path / "reg", tmp_path / "text"
    df = linear_frame(2)
    df["flag"] = df.pop("pid").astype(bool)
    spec = spec_dict(partition_by=["flag"], features=["x0", "x1"])
    train(spec, df, root, backend="local")
    with Registry.open(root) as reg:
        for key, written in [("flag=True", "true"), ("flag=1", "true"), ("flag=FALSE", "false"),
                             ("flag=0", "false"), ({"flag": "True"}, "true")]:  # fmt: skip
            assert reg.load_model(key).version.key == f"flag={written}", key
    train(spec, df.assign(flag=df["flag"].map({True: "True", False: "1"})), text, backend="local")
    with Registry.open(text) as reg:
        assert reg.key("flag=True") == "flag=True" and reg.key("flag=1") == "flag=1"


def test_a_boolean_key_beside_an_integer_one_names_its_partition(tmp_path: Path) -> None:
    """Keyed by an integer and a boolean: ``store=1,flag=True`` (and ``store=1,flag=1``) was
    "no partition", its ``1`` respelt ``true`` with the flag's, where training wrote
    ``store=1,flag=true``."""
    root = tmp_path / "reg"
    df = linear_frame(2)
    df["store"], df["flag"] = 1, df.pop("pid").astype(bool)
    spec = spec_dict(partition_by=["store", "flag"], features=["x0", "x1"])
    train(spec, df, root, backend="local")
    typed = {"store=1,flag=True": "true", "store=1,flag=1": "true", "store=1,flag=0": "false"}
    with Registry.open(root) as reg:
        for key, written in [*typed.items(), ("flag=FALSE,store=1", "false")]:
            assert reg.load_model(key).version.key == f"store=1,flag={written}", key


def test_a_refused_value_holding_equals_or_a_comma_says_how_to_write_it(tmp_path: Path) -> None:
    """Of a registry keyed by ``pid``, ``load_model("x=y")`` for the value ``x=y`` read the
    column ``x`` and ``pid=a,b`` two pairs; the refusal (the CLI's one line too) named the
    key columns, not the unambiguous forms, which find the partition."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    root = tmp_path / "reg"
    df = linear_frame(2)
    df["pid"] = df["pid"].map({0: "x=y", 1: "a,b"})
    train(spec_dict(features=["x0", "x1"]), df, root, backend="local")
    hint = "; if 'x=y' is a value of pid, write 'pid=x%3Dy' (from Python or in a JSON body, "
    with Registry.open(root) as reg:
        with pytest.raises(PartitionNotFound) as caught:
            reg.load_model("x=y")
        assert str(caught.value).endswith(f'{hint}{{"pid": "x=y"}})'), caught.value
        with pytest.raises(DataError, match=r"write 'pid=a%2Cb' \(.*\{\"pid\": \"a,b\"\}\)$"):
            reg.load_model("pid=a,b")
        for key in ("pid=x%3Dy", {"pid": "x=y"}, "pid=x=y"):
            assert reg.load_model(key).version.key == "pid=x%3Dy"
        assert reg.load_model("pid=a%2Cb").version.key == "pid=a%2Cb"
    said = CliRunner().invoke(app, ["models", "show", "x=y", "--registry", str(root)])
    assert said.exit_code == 2, said.output
    (line,) = said.stderr.strip().splitlines()
    assert line.startswith("error: no partition 'x=y'") and hint in line, line
