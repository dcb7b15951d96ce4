"""A registry trained from a DataFrame keyed by timestamps (``ts=2024-01-05T10:30:00``), days
or booleans, trained again from a CSV of the same data with the CLI (its text
``ts=2024-01-05%2010:30:00``, ``2024-01-05``, flags ``1``/``0``), and the other way: the
second run trains the registry's partitions, as do ``train --changed-only``, ``retrain``
and ``score`` of the CSV; a key of no partition in any spelling stays as written."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.scoring import score

runner = CliRunner()
SPEC = spec_dict(features=["x0", "x1"])
STAMPS = [pd.Timestamp("2024-01-05 10:30"), pd.Timestamp("2024-01-06 11:00"),
          pd.Timestamp("2024-01-07 00:00")]  # fmt: skip
DAYS = [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-06"), pd.Timestamp("2024-01-07")]


def keyed_by(values: list[object]) -> pd.DataFrame:
    """``linear_frame``'s partitions keyed by ``values`` in place of 0, 1, 2…"""
    df = linear_frame(len(values), 30)
    df["pid"] = df["pid"].map(dict(enumerate(values)))
    return df


def cli(tmp_path: Path, *args: str, keys: tuple[str, ...] = ("pid",)) -> str:
    """Run the CLI with the spec file (keyed by ``keys``) written beside the data; its
    output, exit 0 asserted."""
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'name = "test"\npartition_by = {json.dumps(list(keys))}\ntarget = "y"\n'
        'time_column = "t"\nfeatures = ["x0", "x1"]\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    command, *rest = args
    named = [command, str(spec)] if command in {"train", "retrain"} else [command]
    result = runner.invoke(app, [*named, *rest, "--registry", str(tmp_path / "reg")])
    assert result.exit_code == 0, result.output
    return result.output


def partitions(root: Path) -> dict[str, int]:
    with Registry.open(root) as reg:
        return {p.key: p.latest_version for p in reg.list_partitions()}


def test_a_csv_after_a_dataframe_trains_the_registrys_timestamp_partitions(
    tmp_path: Path,
) -> None:
    """Before: the CLI's run trained 'pid=2024-01-05%2010:30:00' and two more beside the
    DataFrame's partitions (each spelling then served its own model)."""
    df = keyed_by(STAMPS)
    df.to_csv(tmp_path / "data.csv", index=False)
    train(SPEC, df, tmp_path / "reg", backend="local")
    trained = ["__fallback__", "pid=2024-01-05T10:30:00", "pid=2024-01-06T11:00:00",
               "pid=2024-01-07T00:00:00"]  # fmt: skip
    assert list(partitions(tmp_path / "reg")) == trained

    cli(tmp_path, "train", str(tmp_path / "data.csv"), "--backend", "local")
    assert partitions(tmp_path / "reg") == dict.fromkeys(trained, 2)

    out = cli(tmp_path, "train", str(tmp_path / "data.csv"), "--backend", "local",
              "--changed-only")  # fmt: skip
    assert out.startswith("nothing to train: all 3 partitions")
    cli(tmp_path, "retrain", str(tmp_path / "data.csv"), "--when", "changed", "--backend",
        "local")  # fmt: skip
    assert partitions(tmp_path / "reg") == dict.fromkeys(trained, 2)  # nothing changed

    cli(tmp_path, "score", str(tmp_path / "data.csv"), "--out", str(tmp_path / "out.csv"))
    scored = pd.read_csv(tmp_path / "out.csv")
    assert sorted(scored["served_by"].unique()) == trained[1:]


def test_a_dataframe_or_parquet_after_a_csv_trains_the_csvs_partitions(tmp_path: Path) -> None:
    """The other way: a CSV trained the text 'pid=2024-01-05%2010:30:00'; a DataFrame, and
    a Parquet file (which keeps the timestamps) with the CLI, made their isoformat keys."""
    df = keyed_by(STAMPS)
    df.to_csv(tmp_path / "data.csv", index=False)
    df.to_parquet(tmp_path / "data.parquet")
    cli(tmp_path, "train", str(tmp_path / "data.csv"), "--backend", "local")
    trained = ["__fallback__", "pid=2024-01-05%2010:30:00", "pid=2024-01-06%2011:00:00",
               "pid=2024-01-07%2000:00:00"]  # fmt: skip
    assert list(partitions(tmp_path / "reg")) == trained

    train(SPEC, df, tmp_path / "reg", backend="local")
    assert partitions(tmp_path / "reg") == dict.fromkeys(trained, 2)
    cli(tmp_path, "train", str(tmp_path / "data.parquet"), "--backend", "local")
    assert partitions(tmp_path / "reg") == dict.fromkeys(trained, 3)


def test_a_composite_key_of_text_and_timestamps_names_its_partitions(tmp_path: Path) -> None:
    """A key of a shop (text a key quotes: 'a/b é') and a timestamp: the CSV's rows train
    the DataFrame's partitions, each value quoted as the registry wrote it."""
    df = keyed_by(STAMPS[:2])
    df["shop"] = df["pid"].map({STAMPS[0]: "a/b é", STAMPS[1]: "c d"})
    df.to_csv(tmp_path / "data.csv", index=False)
    train({**SPEC, "partition_by": ["shop", "pid"]}, df, tmp_path / "reg", backend="local")
    trained = partitions(tmp_path / "reg")
    assert "shop=a%2Fb%20%C3%A9,pid=2024-01-05T10:30:00" in trained
    cli(tmp_path, "train", str(tmp_path / "data.csv"), "--backend", "local", keys=("shop", "pid"))
    assert partitions(tmp_path / "reg") == dict.fromkeys(trained, 2)


@pytest.mark.parametrize("csv_first", [False, True])
def test_days_written_either_way_name_one_partition(tmp_path: Path, csv_first: bool) -> None:
    """A DataFrame's days are 'pid=2024-01-05T00:00:00', a CSV's 'pid=2024-01-05': each
    trained three more beside the other's."""
    df = keyed_by(DAYS)
    df.to_csv(tmp_path / "data.csv", index=False)
    if csv_first:
        cli(tmp_path, "train", str(tmp_path / "data.csv"), "--backend", "local")
        train(SPEC, df, tmp_path / "reg", backend="local")
        days = [f"pid={d.date()}" for d in DAYS]
    else:
        train(SPEC, df, tmp_path / "reg", backend="local")
        cli(tmp_path, "train", str(tmp_path / "data.csv"), "--backend", "local")
        days = [f"pid={d.isoformat()}" for d in DAYS]
    assert partitions(tmp_path / "reg") == dict.fromkeys(["__fallback__", *days], 2)


def test_a_csvs_flags_train_a_dataframes_boolean_partitions(tmp_path: Path) -> None:
    """A CSV of 1/0 flags (as a database export writes a boolean) made 'pid=1' and 'pid=0'
    beside the DataFrame's 'pid=true' and 'pid=false'."""
    df = keyed_by([False, True])
    train(SPEC, df, tmp_path / "reg", backend="local")
    df.assign(pid=df["pid"].astype(int)).to_csv(tmp_path / "data.csv", index=False)
    cli(tmp_path, "train", str(tmp_path / "data.csv"), "--backend", "local")
    assert partitions(tmp_path / "reg") == {"__fallback__": 2, "pid=false": 2, "pid=true": 2}


def test_a_text_column_of_integral_decimals_trains_the_integer_partitions(tmp_path: Path) -> None:
    """A table whose key column is text reading '2.0' (a Parquet or a DataFrame of strings)
    after a DataFrame of integers trained 'pid=2': a named 'pid=2.0' found 'pid=2', but
    training made 'pid=2.0' and 'pid=3.0' beside them. Now the table's keys follow the same
    rule: the registry's two get version 2; a decimal no partition is spelt as stays new."""
    train(SPEC, keyed_by([2, 3]), tmp_path / "reg", backend="local")
    train(SPEC, keyed_by(["2.0", "3.0", "4.0"]), tmp_path / "reg", backend="local")
    assert partitions(tmp_path / "reg") == {
        "__fallback__": 2, "pid=2": 2, "pid=3": 2, "pid=4.0": 1
    }  # fmt: skip
    scored = score(keyed_by(["2.0"]), tmp_path / "reg")  # scoring read them so already
    assert set(scored["served_by"]) == {"pid=2"}


def test_a_key_found_as_written_or_new_is_never_respelt(tmp_path: Path) -> None:
    """A registry holding both spellings of a day (trained so before): a table's rows train
    the partition they name as written, the other left as it is; a day of no partition in
    any spelling is a new partition as written."""
    both = keyed_by([DAYS[0], "2024-01-05"])
    train(SPEC, both, tmp_path / "reg", backend="local")
    assert partitions(tmp_path / "reg") == {
        "__fallback__": 1, "pid=2024-01-05": 1, "pid=2024-01-05T00:00:00": 1
    }  # fmt: skip
    keyed_by([DAYS[0], pd.Timestamp("2024-01-09")]).to_csv(tmp_path / "data.csv", index=False)
    cli(tmp_path, "train", str(tmp_path / "data.csv"), "--backend", "local")
    assert partitions(tmp_path / "reg") == {
        "__fallback__": 2, "pid=2024-01-05": 2, "pid=2024-01-05T00:00:00": 1,
        "pid=2024-01-09": 1,
    }  # fmt: skip


@pytest.mark.parametrize("values", [STAMPS[:2], [False, True]], ids=["timestamps", "flags"])
def test_an_append_of_a_csv_extends_the_dataframes_partitions(
    tmp_path: Path, values: list[object]
) -> None:
    """``train --append`` of a CSV's later rows (its timestamps as text, its booleans as 1/0)
    found no kept rows: it trained new partitions of the new rows alone beside the
    DataFrame's. Now each partition's new version holds its kept rows and the new ones."""
    df = keyed_by(values)
    train(SPEC, df[df["t"] < 20], tmp_path / "reg", backend="local")
    later = df[df["t"] >= 20]
    flags = later["pid"].dtype == bool
    (later.assign(pid=later["pid"].astype(int)) if flags else later).to_csv(
        tmp_path / "new.csv", index=False
    )
    before = [k for k in partitions(tmp_path / "reg") if k != "__fallback__"]
    cli(tmp_path, "train", str(tmp_path / "new.csv"), "--backend", "local", "--append")
    after = partitions(tmp_path / "reg")
    assert [k for k in after if k != "__fallback__"] == before
    with Registry.open(tmp_path / "reg") as reg:
        newest = [max(reg.list_versions(k), key=lambda v: v.version) for k in before]
    assert [(v.version, v.n_rows) for v in newest] == [(2, 30), (2, 30)]


def test_a_csv_future_table_feeds_a_dataframes_timestamp_partitions(tmp_path: Path) -> None:
    """Before: ``forecast --future future.csv`` was refused: "none of its 2 partition(s) is
    in the registry (it has 'pid=2024-01-05%2010:30:00'; the forecast has
    'pid=2024-01-05T10:30:00')". Now its rows are the DataFrame's future."""
    train(SPEC, keyed_by(STAMPS[:2]), tmp_path / "reg", backend="local")
    future = pd.DataFrame(
        {"pid": [s for s in STAMPS[:2] for _ in range(3)], "t": [30, 31, 32] * 2, "x0": 5.0,
         "x1": -5.0}
    )  # fmt: skip
    future.to_csv(tmp_path / "future.csv", index=False)
    cli(tmp_path, "forecast", "--horizon", "3", "--future", str(tmp_path / "future.csv"),
        "--out", str(tmp_path / "out.csv"))  # fmt: skip
    given = forecast(tmp_path / "reg", horizon=3, future=future)
    read = pd.read_csv(tmp_path / "out.csv")
    assert read["prediction"].round(9).tolist() == given["prediction"].round(9).tolist()


def test_a_second_specs_stores_0_and_1_are_not_the_first_specs_flags(tmp_path: Path) -> None:
    """Before: spec b's CSV of stores 0 and 1, trained into a registry where spec a's
    DataFrame trained flags pid=true/pid=false, was respelt to them and wrote b's models as
    new versions of a's partitions (four partitions became two). Now each spec keeps its
    own: a key is respelt only to a partition its own spec trained."""
    flags = keyed_by([True, False])
    train(spec_dict(name="a", features=["x0", "x1"]), flags, registry=tmp_path / "reg")
    keyed_by([0, 1]).to_csv(tmp_path / "stores.csv", index=False)
    train(spec_dict(name="b", features=["x0", "x1"]), tmp_path / "stores.csv",
          registry=tmp_path / "reg")  # fmt: skip
    got = partitions(tmp_path / "reg")
    assert {k: v for k, v in got.items() if k.startswith("pid=")} == {
        "pid=true": 1,
        "pid=false": 1,
        "pid=0": 1,
        "pid=1": 1,
    }


def test_a_csvs_flags_beside_an_integer_key_train_the_dataframes_partitions(
    tmp_path: Path,
) -> None:
    """Before: keyed by store (0, 1) and flag, a CSV holding the flags as 1/0 after the
    DataFrame trained store=1,flag=true made four new partitions (store=1,flag=1…) beside
    the four: its 1s were tried as true in both columns at once (store=true,flag=true), no
    partition. Now the flags alone are respelt and the registry's four get version 2."""
    df = linear_frame(4, 30)
    df = df.assign(store=df["pid"] % 2, flag=df["pid"] < 2).drop(columns="pid")
    keyed = spec_dict(features=["x0", "x1"], partition_by=["store", "flag"])
    train(keyed, df, registry=tmp_path / "reg")
    df.assign(flag=df["flag"].astype(int)).to_csv(tmp_path / "flags.csv", index=False)
    train(keyed, tmp_path / "flags.csv", registry=tmp_path / "reg")
    got = partitions(tmp_path / "reg")
    assert {k: v for k, v in got.items() if k.startswith("store=")} == {
        f"store={s},flag={f}": 2 for s in (0, 1) for f in ("true", "false")
    }


def test_a_future_key_is_not_respelt_to_another_specs_partition(tmp_path: Path) -> None:
    """Before: ``forecast --future`` of spec b's store 0, the future naming store 1 (no
    partition of b's yet), respelt it to spec a's flag ``pid=true``: the table was taken as
    one of known partitions and went unused without a word. Now a future key is respelt
    only to a partition forecast: store 1 is no partition, and the table is refused."""
    train(spec_dict(name="a", features=["x0", "x1"]), keyed_by([True, False]),
          registry=tmp_path / "reg")  # fmt: skip
    keyed_by([0, 2]).to_csv(tmp_path / "stores.csv", index=False)
    train(spec_dict(name="b", features=["x0", "x1"]), tmp_path / "stores.csv",
          registry=tmp_path / "reg")  # fmt: skip
    future = pd.DataFrame({"pid": [1, 1], "t": [30, 31], "x0": 5.0, "x1": -5.0})
    future.to_csv(tmp_path / "future.csv", index=False)
    result = runner.invoke(app, ["forecast", "--horizon", "2", "--partitions", "pid=0", "--future",
                                 str(tmp_path / "future.csv"), "--registry", str(tmp_path / "reg"),
                                 "--out", str(tmp_path / "out.csv")])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "none of its 1 partition(s) is in the registry (it has 'pid=1'" in result.output
    assert not (tmp_path / "out.csv").exists()
    # a future of a partition forecast, written in another spelling, is still its own
    future.assign(pid="2.0").to_csv(tmp_path / "future.csv", index=False)
    got = forecast(tmp_path / "reg", keys="pid=2", horizon=2, future=tmp_path / "future.csv")
    assert got["pid"].tolist() == [2, 2]


def test_a_csv_of_days_beside_timestamps_trains_the_dataframes_partitions(tmp_path: Path) -> None:
    """Before: keyed by a column of dates (``d=2024-01-05``, as a DataFrame's ``date`` and a
    CSV's text both write it) and one of timestamps (``ts=2024-01-05T10:30:00``), a CSV of
    the same data made a duplicate of each partition (``ts=2024-01-05%2010:30:00``): its
    timestamps were respelt only with its days at once (``d=2024-01-05T00:00:00``, none).
    Now the days are kept and the registry's partitions get version 2."""
    df = keyed_by(STAMPS[:2])
    df = df.assign(d=df["pid"].dt.date).rename(columns={"pid": "ts"})
    keyed = spec_dict(features=["x0", "x1"], partition_by=["d", "ts"])
    train(keyed, df, tmp_path / "reg", backend="local")
    trained = ["d=2024-01-05,ts=2024-01-05T10:30:00", "d=2024-01-06,ts=2024-01-06T11:00:00"]
    assert [k for k in partitions(tmp_path / "reg") if k != "__fallback__"] == trained
    df.to_csv(tmp_path / "data.csv", index=False)
    cli(tmp_path, "train", str(tmp_path / "data.csv"), "--backend", "local", keys=("d", "ts"))
    assert partitions(tmp_path / "reg") == dict.fromkeys(["__fallback__", *trained], 2)


def test_a_key_of_two_specs_partitions_in_other_spellings_is_ambiguous(tmp_path: Path) -> None:
    """Spec a's DataFrame of days (``pid=2024-01-05T00:00:00``) beside spec b's table of the
    same days as text (``pid=2024-01-05%2000:00:00``): a partition found as written is
    itself; ``pid=2024-01-05``, no partition as written, is a's and b's in other spellings.
    Before: ``Registry.key`` took the first it tried (a's) without a word, as ``models show``
    did. Now it is refused, naming both, in one line from the CLI."""
    train(spec_dict(name="a", features=["x0", "x1"]), keyed_by(DAYS[:2]), registry=tmp_path / "reg")
    texts = keyed_by([str(d) for d in DAYS[:2]])  # '2024-01-05 00:00:00'
    train(spec_dict(name="b", features=["x0", "x1"]), texts, registry=tmp_path / "reg")
    a, b = "pid=2024-01-05T00:00:00", "pid=2024-01-05%2000:00:00"
    with Registry.open(tmp_path / "reg") as reg:
        assert [reg.key(k) for k in (a, b, "pid=2024-01-05 00:00:00")] == [a, b, b]
        with pytest.raises(DataError, match="ambiguous") as refused:
            reg.key("pid=2024-01-05")
    assert f"'{a}'" in str(refused.value) and f"'{b}'" in str(refused.value)
    result = runner.invoke(
        app, ["models", "show", "pid=2024-01-05", "--registry", str(tmp_path / "reg")]
    )
    assert result.exit_code != 0
    line = result.output.strip()
    assert "\n" not in line and "ambiguous" in line and f"'{a}'" in line and f"'{b}'" in line
