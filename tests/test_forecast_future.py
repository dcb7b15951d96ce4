"""A forecast's ``future`` table as a user builds one: a missing value in it is named by its
partition, time and column; a table of common next dates need not cover a partition that
ended earlier when that partition's model reads none of its columns."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, open_client, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError
from manymodels.forecast_steps import future_keys
from manymodels.forecasting import forecast
from manymodels.future_rows import future_table
from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.settings import Settings

runner = CliRunner()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pid 0 and 1 on Ridge over x0, x1 up to t = 29; pid 2 a random walk that ends at t = 26,
    on which the naive last value beats Ridge."""
    df = linear_frame(3, 30)
    walk = df["pid"] == 2
    rng = np.random.default_rng(1)
    df.loc[walk, "y"] = np.cumsum(rng.normal(size=int(walk.sum()))) * 5 + 100
    df = df[~(walk & (df["t"] >= 27))]
    root = tmp_path_factory.mktemp("future") / "registry"
    train(spec_dict(features=["x0", "x1"]), df, root, backend="local")
    with Registry.open(root) as reg:
        assert reg.get_version("pid=0").estimator.endswith("Ridge")
        assert reg.get_version("pid=2").estimator.endswith("LastValueRegressor")
    return root


ClientOf = Callable[[Path], Any]


@pytest.fixture(scope="module")
def client_of() -> Iterator[ClientOf]:
    """A router (``TestClient``) on a registry of this module, started at the first test that
    asks for it and kept for the module: the tests only forecast (nothing is written), and
    started one a test (12 starts, 4 registries) each spent ~0.5-1 s on it."""
    started: dict[Path, Any] = {}
    with contextlib.ExitStack() as stack:

        def client(root: Path) -> Any:
            if root not in started:
                started[root] = stack.enter_context(open_client(Settings(registry=root)))
            return started[root]

        yield client


def common(times: list[int], pids: tuple[int, ...] = (0, 1, 2)) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame(
        {"pid": np.repeat(pids, n), "t": np.tile(times, len(pids)), "x0": 0.5, "x1": -0.25}
    )


def test_a_missing_value_is_named_by_partition_time_and_column(
    registry: Path,
    tmp_path: Path,
    client_of: ClientOf,
) -> None:
    """Before: "partition 'pid=0' v1 could not forecast: Input X contains NaN." — which of the
    table's cells was left to find by hand."""
    future = common([30, 31, 32], (0, 1))
    future.loc[(future["pid"] == 1) & (future["t"] == 31), "x1"] = np.nan
    with pytest.raises(DataError) as caught:
        forecast(registry, ["pid=1"], horizon=3, future=future)
    assert "partition 'pid=1' has no value of 'x1' at 31" in str(caught.value)

    path = tmp_path / "future.csv"
    future.to_csv(path, index=False)
    result = runner.invoke(
        app, ["forecast", "--registry", str(registry), "--horizon", "3", "--future", str(path)]
    )
    assert result.exit_code != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert f"future ({path})" in lines[0] and "'pid=1' has no value of 'x1' at 31" in lines[0]

    rows = [{"x0": 0.5, "x1": -0.25}, {"x0": 0.5, "x1": None}, {"x0": 0.5, "x1": -0.25}]
    client = client_of(registry)
    r = client.post("/v1/partitions/pid=1/forecast", json={"horizon": 3, "future": rows})
    assert r.status_code == 422, r.text
    assert "partition 'pid=1' has no value of 'x1' at 31" in r.json()["detail"]


ENDS = (  # pid 2's walk ends at 26: said by forecast_ends, whatever the future table
    "note: 1 partition(s) end before the newest last time 29, so their steps start earlier: "
    "'pid=2' (the earliest ends 26); a series that stopped (delisted, closed) can be taken out "
    "of production with `manymodels retire KEY`"
)


def test_a_forecast_without_a_future_table_says_which_features_it_held(
    registry: Path, tmp_path: Path
) -> None:
    """Before: ``manymodels forecast --horizon 3`` of models that read x0 and x1 printed a
    flat forecast and only "forecast 3 period(s) …": nothing said the features were held at
    their last values, where statsforecast asks for ``X_df``. With ``--future`` it says none."""
    out = tmp_path / "next.csv"
    args = ["forecast", "--registry", str(registry), "--horizon", "3", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        "note: no --future table: each partition's last known x0, x1 carried forward to all "
        "3 step(s) (give their future values with --future FILE)",
        ENDS,
    ]
    assert result.stdout.startswith("forecast 3 period(s) of 3 partition(s)")

    path = tmp_path / "future.csv"
    common([30, 31, 32]).to_csv(path, index=False)
    result = runner.invoke(app, [*args, "--future", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [ENDS]

    result = runner.invoke(app, [*args, "--json"])  # the JSON summary alone on stdout
    assert result.exit_code == 0 and result.stderr == "", result.output


def test_a_future_table_of_some_partitions_names_the_partitions_it_held(
    registry: Path, tmp_path: Path
) -> None:
    """``--future`` with rows of pid 0 alone held pid 1's x0 and x1 at their last values
    without a word (the note and ``carried`` spoke only of a forecast without a table); now
    the note and --json say how many partitions were held, and name the first. pid 2's model
    reads no feature: nothing of it is held."""
    path = tmp_path / "future.csv"
    common([30, 31, 32], (0,)).to_csv(path, index=False)
    args = ["forecast", "--registry", str(registry), "--horizon", "3", "--future", str(path)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "next.csv")])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        "note: --future has no rows of 1 partition(s) ('pid=1'): their last known x0, x1 "
        "carried forward to all 3 step(s) (give them rows in --future)",
        ENDS,
    ]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0 and result.stderr == "", result.output
    answer = json.loads(result.stdout)
    assert (answer["carried"], answer["held_partitions"], answer["held_keys"]) == (
        ["x0", "x1"], 1, ["pid=1"]
    )  # fmt: skip
    common([30, 31, 32], (0, 1)).to_csv(path, index=False)  # every partition that reads them
    answer = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert (answer["carried"], answer["held_partitions"], answer["held_keys"]) == ([], 0, [])


def test_future_keys_are_the_partitions_a_future_table_has_rows_of(registry: Path) -> None:
    """What the forecast asks of a --future table to know which partitions it holds: before,
    ``forecasting`` read the table's key column by ``forecast_steps``' private name for it."""
    with Registry.open(registry) as reg:
        schemas = [reg.get_version(f"pid={p}") for p in (0, 1, 2)]
    table = future_table(common([30, 31], (0, 2)), schemas, key_columns=["pid"], time_column="t")
    assert future_keys(table) == {"pid=0", "pid=2"}
    assert future_keys(table.iloc[:0]) == set()


@pytest.mark.parametrize("times", [[30, 31, 32], [28, 29, 30, 31, 32]])
def test_common_dates_need_not_cover_a_partition_whose_model_reads_no_feature(
    registry: Path, times: list[int]
) -> None:
    """pid 2 ended at t = 26: its steps are 27 … 29, which a table of the next common times
    misses (all of them, or all but 28 and 29). Its naive model reads no feature, so it is
    forecast as without a table; before, the whole forecast failed on its rows."""
    frame = forecast(registry, horizon=3, future=common(times, (0, 1, 2)))
    naive = frame[frame["pid"] == 2]
    assert naive["t"].tolist() == [27, 28, 29]
    alone = forecast(registry, ["pid=2"], horizon=3)
    assert naive["prediction"].tolist() == alone["prediction"].tolist()
    given = frame[frame["pid"] == 0]
    assert given["t"].tolist() == [30, 31, 32]
    with_table = forecast(registry, ["pid=0"], horizon=3, future=common([30, 31, 32], (0,)))
    assert given["prediction"].tolist() == with_table["prediction"].tolist()


def test_the_router_holds_a_naive_partitions_rows_to_no_steps(
    registry: Path, client_of: ClientOf
) -> None:
    """The router's future rows of pid 2 (naive) at one of its three steps: the library
    forecasts it as without them, the router answered 422 "has rows for some forecast steps
    but not for 27" — its schema names x0 and x1, and only the record said the model reads
    neither. A Ridge partition's rows are still held to every step."""
    one = [{"t": 28, "x0": 0.5, "x1": -0.25}]
    alone = forecast(registry, ["pid=2"], horizon=3)["prediction"].tolist()
    assert (
        forecast(registry, ["pid=2"], horizon=3, future=common([28], (2,)))["prediction"].tolist()
        == alone
    )
    client = client_of(registry)
    r = client.post("/v1/partitions/pid=2/forecast", json={"horizon": 3, "future": one})
    assert r.status_code == 200, r.text
    assert [p["prediction"] for p in r.json()["forecast"]] == pytest.approx(alone)
    one[0]["t"] = 31
    r = client.post("/v1/partitions/pid=0/forecast", json={"horizon": 3, "future": one})
    assert r.status_code == 422 and "rows for some forecast steps" in r.text, r.text


def test_the_routers_forecast_names_the_features_it_held(
    registry: Path, client_of: ClientOf
) -> None:
    """The router's forecast held x0 and x1 at their last values without a word, where the
    CLI notes them (``carried`` in its --json): the answer now has the same ``carried``,
    empty with future rows and for a naive model, which reads none; its other fields as
    they were."""
    rows = [{"t": t, "x0": 0.5, "x1": -0.25} for t in (30, 31, 32)]
    client = client_of(registry)
    held = client.post("/v1/partitions/pid=0/forecast", json={"horizon": 3})
    given = client.post("/v1/partitions/pid=0/forecast", json={"horizon": 3, "future": rows})
    naive = client.post("/v1/partitions/pid=2/forecast", json={"horizon": 3})
    assert held.status_code == given.status_code == naive.status_code == 200, held.text
    answer = held.json()
    assert answer["carried"] == ["x0", "x1"]
    assert (given.json()["carried"], naive.json()["carried"]) == ([], [])
    assert set(answer) == {"partition", "served_by", "version", "fallback", "target",
                           "threshold", "forecast", "carried", "last_time"}  # fmt: skip
    assert answer["last_time"] == 29  # a number time, as recorded: the steps are 30, 31, 32
    assert answer["target"] == "y"
    flat = forecast(registry, ["pid=0"], horizon=3)["prediction"].tolist()
    assert [p["prediction"] for p in answer["forecast"]] == pytest.approx(flat)


def test_a_partition_whose_model_reads_the_table_keeps_the_clear_error(
    tmp_path: Path,
) -> None:
    df = linear_frame(2, 30)
    df = df[~((df["pid"] == 1) & (df["t"] >= 27))]
    root = tmp_path / "registry"
    train(spec_dict(features=["x0", "x1"]), df, root, backend="local")
    with pytest.raises(DataError, match="partition 'pid=1' has rows for some forecast steps"):
        forecast(root, horizon=3, future=common([28, 29, 30, 31, 32], (0, 1)))
    with pytest.raises(DataError, match="partition 'pid=1' has rows, but none at its forecast"):
        forecast(root, horizon=3, future=common([30, 31, 32], (0, 1)))


def test_text_codes_of_a_csv_future_table_match_their_partitions(tmp_path: Path) -> None:
    """Trained from Parquet with codes '007' and '012' as keys: a future CSV's reader made
    them 7 and 12, no row matched a partition, and the forecast silently carried the last
    values forward — the table unused. Its key columns are now read as the versions hold
    them; and a table of no partition the registry has is refused, not ignored."""
    df = linear_frame(2, 30)
    df["pid"] = df["pid"].map({0: "007", 1: "012"})
    df.to_parquet(tmp_path / "rows.parquet", index=False)
    root = tmp_path / "registry"
    train(spec_dict(features=["x0", "x1"]), tmp_path / "rows.parquet", root, backend="local")
    future = common([30, 31, 32], (0, 1)).assign(pid=lambda d: d["pid"].map({0: "007", 1: "012"}))
    future.to_csv(tmp_path / "future.csv", index=False)
    given = forecast(root, horizon=3, future=future)
    carried = forecast(root, horizon=3)
    assert given["prediction"].tolist() != carried["prediction"].tolist()
    from_csv = forecast(root, horizon=3, future=tmp_path / "future.csv")
    assert from_csv["prediction"].tolist() == given["prediction"].tolist()
    numbers = future.assign(pid=lambda d: d["pid"].astype(int))
    with pytest.raises(
        DataError, match=r"none of its 2 partition\(s\) is in the registry .*'pid=7'"
    ):
        forecast(root, horizon=3, future=numbers)
    # a table of another known partition only: the one forecast carries forward, as before
    other = forecast(root, ["pid=007"], horizon=3, future=future[future["pid"] == "012"])
    assert other["prediction"].tolist() == carried["prediction"].tolist()[:3]


def test_a_stray_word_in_a_future_number_column_is_named(registry: Path, tmp_path: Path) -> None:
    """A future CSV with "abc" among a feature's numbers: the reader made the column text, and
    the error said "feature 'x0' must be numeric … (found dtype str)", the cell left to find
    in a file of thousands of rows."""
    future = common([30, 31, 32], (0, 1)).astype({"x0": object})
    future.loc[4, "x0"] = "abc"
    future.to_csv(tmp_path / "future.csv", index=False)
    with pytest.raises(
        DataError,
        match=r"data row 5 \(counting from 1\): feature 'x0' must be a number, not text 'abc'",
    ):
        forecast(registry, ["pid=0", "pid=1"], horizon=3, future=tmp_path / "future.csv")


def test_a_future_time_past_a_floats_range_is_named(
    registry: Path, tmp_path: Path, client_of: ClientOf
) -> None:
    """A 400-digit integer in the future table's period column (a CSV's integer column keeps
    it as a Python int; a router's JSON rows too) made ``pd.to_numeric`` raise
    OverflowError: a traceback from ``manymodels forecast`` and the library, a 500 from the
    router's forecast route. Now the error every other bad time value gets."""
    future = common([30, 31, 32], (0,)).astype({"t": object})
    future.loc[1, "t"] = 10**400
    with pytest.raises(DataError, match=r"time column 't' must hold numbers"):
        forecast(registry, ["pid=0"], horizon=3, future=future)
    path = tmp_path / "future.csv"
    future.to_csv(path, index=False)
    args = ["forecast", "--registry", str(registry), "--partitions", "pid=0", "--horizon", "3"]
    result = runner.invoke(app, [*args, "--future", str(path)])
    assert result.exit_code != 0 and result.stdout == "", result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "time column 't' must hold numbers" in lines[0], lines

    rows = [{"t": t, "x0": 0.5, "x1": -0.25} for t in (30, 10**400, 32)]
    client = client_of(registry)
    r = client.post("/v1/partitions/pid=0/forecast", json={"horizon": 3, "future": rows})
    assert r.status_code == 422, r.text
    assert "time column 't' must hold numbers" in r.json()["detail"], r.text


def test_a_future_time_that_is_missing_or_no_number_is_named_by_its_row(
    registry: Path, tmp_path: Path
) -> None:
    """Before: "time column 't' has missing values" and "… must hold numbers (Unable to parse
    string 'soon' at position 4)" — pandas counting from 0, the row left to find."""
    future = common([30, 31, 32], (0, 1)).astype({"t": object})
    future.loc[4, "t"] = None
    with pytest.raises(
        DataError, match=r"'t' has missing values \(1 row\(s\)\), the first in data row 5 "
    ):
        forecast(registry, ["pid=0", "pid=1"], horizon=3, future=future)
    future.loc[4, "t"] = "soon"
    path = tmp_path / "future.csv"
    future.to_csv(path, index=False)
    args = ["forecast", "--registry", str(registry), "--horizon", "3", "--future", str(path)]
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and result.stdout == "", result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "'t' must hold numbers: 'soon' in data row 5 (counting from 1)" in lines[0]
    assert "position" not in lines[0], lines


def test_a_text_feature_empty_in_every_row_is_text_missing_everywhere(tmp_path: Path) -> None:
    """A future CSV whose text feature 'kind' is empty in every row: the reader makes it
    float64 (NaN), and it was refused as "feature 'kind' must be text, … (found floating
    values, dtype float64)" although a table of the same column as None (or the router's
    nulls) is forecast. Now the CSV is read as that table is."""
    df = linear_frame(2, 30)
    df["kind"] = np.where(df["t"] % 2, "a", "b")
    root = tmp_path / "registry"
    train(spec_dict(features=["x0", "x1", "kind"]), df, root, backend="local")
    future = common([30, 31, 32], (0, 1)).assign(kind=None)
    expected = forecast(root, horizon=3, future=future)["prediction"].tolist()
    future.to_csv(tmp_path / "future.csv", index=False)
    assert pd.read_csv(tmp_path / "future.csv")["kind"].dtype == np.float64
    got = forecast(root, horizon=3, future=tmp_path / "future.csv")
    assert got["prediction"].tolist() == expected
    args = ["forecast", "--registry", str(root), "--horizon", "3"]
    result = runner.invoke(app, [*args, "--future", str(tmp_path / "future.csv")])
    assert result.exit_code == 0, result.output


def test_a_future_rows_missing_key_is_named_by_column_and_row(registry: Path) -> None:
    """Before: "future (<DataFrame>): a key column has missing values" — neither which
    column nor which row."""
    future = common([30, 31, 32], (0, 1)).astype({"pid": object})
    future.loc[4, "pid"] = None
    with pytest.raises(
        DataError, match=r"key column 'pid' has missing values, the first in data row 5 "
    ):
        forecast(registry, ["pid=0", "pid=1"], horizon=3, future=future)


def test_a_json_forecast_names_the_features_it_held(registry: Path, tmp_path: Path) -> None:
    """``--json`` prints no note: line (stdout is the JSON, stderr stays empty), so the held
    features are its ``carried`` member, as the left-out partitions are ``left_out``. Before,
    a script reading the JSON never learnt that x0 and x1 were frozen; empty with --future."""
    args = ["forecast", "--registry", str(registry), "--horizon", "3", "--json"]
    out = tmp_path / "next.csv"
    for extra in ([], ["--out", str(out)]):
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 0 and result.stderr == "", result.output
        assert json.loads(result.stdout)["carried"] == ["x0", "x1"]

    path = tmp_path / "future.csv"
    common([30, 31, 32]).to_csv(path, index=False)
    result = runner.invoke(app, [*args, "--future", str(path)])
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert json.loads(result.stdout)["carried"] == []


def test_a_forecast_of_a_naive_partition_says_no_feature_was_held(registry: Path) -> None:
    """pid 2's naive model reads neither x0 nor x1 (its schema names them, as its spec did):
    "each partition's last known x0, x1 carried forward … give their future values with
    --future FILE" was said of its forecast, which no future table changes. Only features a
    partition's model reads are said to be held."""
    args = ["forecast", "--registry", str(registry), "--horizon", "3", "--partitions"]
    result = runner.invoke(app, [*args, "pid=2"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    result = runner.invoke(app, [*args, "pid=2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["carried"] == []
    result = runner.invoke(app, [*args, "pid=2", "--partitions", "pid=0", "--json"])
    assert json.loads(result.stdout)["carried"] == ["x0", "x1"]


@pytest.fixture(scope="module")
def unread(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Models that read no exogenous feature other than a naive baseline: a DummyRegressor
    over x0 and x1 (the spec's only candidate), global or local behind a StandardScaler
    (both stored inside other estimators), and a spec of lags alone."""
    df = linear_frame(2, 30)
    base = tmp_path_factory.mktemp("unread")
    dummy = {"estimator": "sklearn.dummy.DummyRegressor"}
    for name, extra in (("global", {"scope": "global"}), ("scaled", {"scale": True})):
        alone = spec_dict(features=["x0", "x1"], candidates=[{**dummy, **extra}],
                          selection={"naive_candidate": False})  # fmt: skip
        train(alone, df, base / name, backend="local")
    train(spec_dict(lags=[1]), df[["pid", "t", "y"]], base / "lags", backend="local")
    with Registry.open(base / "global") as reg:
        assert reg.get_version("pid=0").validation["chosen"] == "global"
    return {name: base / name for name in ("global", "scaled", "lags")}


@pytest.mark.parametrize(
    ("trained", "key", "times", "carried"),
    [
        pytest.param("ridge", "pid=0", None, ["x0", "x1"], id="ridge-no-future"),
        pytest.param("ridge", "pid=0", [30, 31, 32], [], id="ridge-every-step-given"),
        pytest.param("ridge", "pid=2", None, [], id="naive-no-future"),
        pytest.param("ridge", "pid=2", [28], [], id="naive-one-step-given"),
        pytest.param("global", "pid=0", None, [], id="global-dummy-no-future"),
        pytest.param("global", "pid=0", [30], [], id="global-dummy-one-step-given"),
        pytest.param("scaled", "pid=0", None, [], id="scaled-dummy-no-future"),
        pytest.param("lags", "pid=0", None, [], id="lags-only"),
    ],
)
def test_the_router_and_the_cli_say_the_same_features_were_held(
    registry: Path,
    unread: dict[str, Path],
    tmp_path: Path,
    trained: str,
    key: str,
    times: list[int] | None,
    carried: list[str],
    client_of: ClientOf,
) -> None:
    """One partition forecast by the CLI (--json's ``carried``, the library's) and by the
    router (its answer's ``carried``), with the same future rows or none: the same features
    held. Each worked it out itself, and for a DummyRegressor stored inside another estimator
    (a global model's key binding, a local one's scaling Pipeline) the router said x0 and x1
    were held (it asked the loaded model, where the CLI asked the record) and refused rows
    of one of its steps with a 422 the CLI did not."""
    root = registry if trained == "ridge" else unread[trained]
    args = ["forecast", "--registry", str(root), "--horizon", "3", "--partitions", key, "--json"]
    body: dict[str, Any] = {"horizon": 3}
    if times is not None:
        rows = common(times, (int(key.removeprefix("pid=")),))
        rows.to_csv(tmp_path / "future.csv", index=False)
        args += ["--future", str(tmp_path / "future.csv")]
        body["future"] = rows.drop(columns="pid").to_dict(orient="records")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    client = client_of(root)
    answer = client.post(f"/v1/partitions/{key}/forecast", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["carried"] == json.loads(result.stdout)["carried"] == carried
