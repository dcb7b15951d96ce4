"""Feature changes (``changes = ["price"]``, manymodels/changes.py): computed the same way in
training, forecasting, ``LoadedModel.predict``, the router and ``score``, whose table may leave
them out as a request may (computed from the version's history, as its lags are)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import spec_dict

from manymodels.data import prepare
from manymodels.exceptions import DataError, InvalidRows, SpecError
from manymodels.forecasting import forecast
from manymodels.monitoring.profile import with_lags
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.scoring import score_table
from manymodels.spec import Spec
from serving.local import running_server
from serving.settings import Settings

LINEAR = "sklearn.linear_model.LinearRegression"


def priced(
    n: int = 30, partitions: int = 3, seed: int = 0, dates: bool = False, times: Any = None
) -> pd.DataFrame:
    """Sales that fall by half each price rise, around a drifting level, per partition; at
    integer periods, month starts (``dates``) or the given ``times``."""
    rng = np.random.default_rng(seed)
    frames = []
    for p in range(partitions):
        price = 100 + np.cumsum(rng.normal(1.0, 3.0, n))
        sales = 300 - 0.5 * price + np.cumsum(rng.normal(0, 0.2, n)) + 10 * p
        t: Any = pd.date_range("2020-01-01", periods=n, freq="MS") if dates else np.arange(n)
        t = t if times is None else times
        frames.append(pd.DataFrame({"pid": p, "t": t, "y": sales, "price": price}))
    return pd.concat(frames, ignore_index=True)


def changes_spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "features": ["price"],
        "changes": ["price"],
        "min_rows": 5,
        "candidates": [{"estimator": LINEAR}],
        "validation": {"strategy": "last", "size": 5},
        "selection": {"naive_candidate": False},
    }
    return spec_dict(**{**base, **overrides})


# ------------------------------------------------------------------ the spec
@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"changes": ["y"]}, "'y' is a key, the target or the time column"),
        ({"changes": ["t"]}, "'t' is a key, the target or the time column"),
        ({"changes": ["deal"]}, "'deal' is not one of the features"),
        ({"changes": []}, "is empty"),
        ({"changes": ["price", "price"]}, "lists a value twice"),
        ({"time_column": None, "validation": {"strategy": "holdout"}},
         "changes needs a time_column"),
        ({"features": ["price", "price_change"]}, "'price_change' is derived from"),
        ({"features": ["price", "deal"], "categorical": ["deal"], "changes": ["deal"]},
         "'deal' is categorical"),
        ({"features": None, "lags": [1], "changes": ["y_lag1"]}, "'y_lag1' is derived"),
        ({"time_column": "price_change"}, "'price_change' is derived from .* the time column"),
    ],
)  # fmt: skip
def test_spec_errors_name_the_column(change: dict[str, Any], text: str) -> None:
    with pytest.raises(SpecError, match=text):
        Spec.from_dict({**changes_spec(), **change})


def test_a_spec_without_changes_keeps_its_hash() -> None:
    """Added after specs were stored: left out of the hash while it holds its default."""
    plain = Spec.from_dict(spec_dict())
    assert "changes" not in plain.to_dict()
    assert plain.spec_hash == Spec.from_dict({**spec_dict(), "changes": None}).spec_hash
    assert plain.spec_hash != Spec.from_dict(changes_spec()).spec_hash


# ------------------------------------------------------------------ training
def test_each_row_holds_its_change_and_the_first_is_not_trained_on(tmp_path: Path) -> None:
    df = priced(n=12)
    table, _ = prepare(Spec.from_dict(changes_spec()), df)
    at = table.features.index("price_change")
    for i in range(len(table)):
        rows = table.rows(i)
        price = df.loc[df["pid"] == table.key_values[i][0], "price"].to_numpy()
        got = table.X[rows, at]
        assert np.isnan(got[0])
        np.testing.assert_allclose(got[1:], np.diff(price), rtol=0, atol=1e-12)
    with Registry(tmp_path / "reg") as reg:
        train(changes_spec(), df, reg, backend="local")
        version = reg.get_partition("pid=0").production
    assert version is not None
    assert version.feature_schema["forecast"]["changes"] == {"price_change": "price"}
    assert version.validation["dropped"] == {"undefined_lags": 1}


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        (lambda df: df.drop(columns="price"), r"missing column\(s\) 'price'"),
        (lambda df: df.assign(price=df["price"].map(lambda v: f"p{v:.0f}")),
         "'price', a column of text; a change needs numbers"),
    ],
)  # fmt: skip
def test_a_change_of_a_missing_or_text_column_is_refused(frame: Any, text: str) -> None:
    spec = {**changes_spec(), "features": None}
    with pytest.raises(DataError, match=text):
        prepare(Spec.from_dict(spec), frame(priced(n=12)))


# ------------------------------------------------------------------ forecasting and rows
def _trained(root: Path, df: pd.DataFrame, **overrides: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on all but the last 5 periods; return (held-out rows, their forecast)."""
    last = df["t"].sort_values().unique()[-5]
    history, held = df[df["t"] < last], df[df["t"] >= last]
    with Registry(root) as reg:
        train(changes_spec(**overrides), history, reg, backend="local")
    future = held[["pid", "t", "price"]]
    return held, forecast(root, horizon=5, future=future)


def test_the_forecast_differences_the_future_prices_from_the_last_trained_one(
    tmp_path: Path,
) -> None:
    """Step 1's change is from the history's last price, each later one from the step
    before; the model gets [price, price_change] as training built them."""
    df = priced()
    held, fc = _trained(tmp_path / "reg", df)
    with Registry.open(tmp_path / "reg") as reg:
        model = reg.load_model("pid=1").model
    price = df.loc[df["pid"] == 1, "price"].to_numpy()
    X = np.column_stack([price[-5:], price[-5:] - price[-6:-1]])
    got = fc.loc[fc["pid"] == 1, "prediction"].to_numpy()
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-12)
    assert np.abs(got - held.loc[held["pid"] == 1, "y"].to_numpy()).max() < 3


def test_rows_by_time_get_the_forecasts_changes_in_python_and_over_http(tmp_path: Path) -> None:
    """A row that gives its time and price gets its change from the row of the period before
    it in the request, or from the history for the first period; a row whose previous price
    is nowhere is a 422 naming the row and the change, over real HTTP too."""
    df = priced(dates=True)
    held, fc = _trained(tmp_path / "reg", df, lags=[5], target_transform="difference")
    expected = fc.loc[fc["pid"] == 2, "prediction"].to_numpy()
    mine = held[held["pid"] == 2]
    pairs = zip(mine["t"], mine["price"], strict=True)
    rows = [{"t": t.isoformat(), "price": float(p)} for t, p in pairs]
    with Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model("pid=2")
    # a difference model answers from the previous target: post each period's actual
    posted = [{**r, "y": float(y)} for r, y in zip(rows, mine["y"], strict=True)]
    first = loaded.predict(rows[:1])
    np.testing.assert_allclose(first, expected[:1], rtol=1e-12)
    later = loaded.predict([*posted[:2], rows[2]])
    # period 3's change as the forecast predicted it, added to period 2's posted actual
    change = expected[2] - expected[1]
    assert later[2] == pytest.approx(posted[1]["y"] + change, rel=1e-12)
    with pytest.raises(InvalidRows, match="'price_change' needs 'price' of the period before"):
        loaded.predict([rows[2]])
    with pytest.raises(InvalidRows, match="send 'price' in the row"):
        loaded.predict([{"t": rows[0]["t"]}])

    with running_server(Settings(registry=tmp_path / "reg")) as url:
        import httpx

        ok = httpx.post(f"{url}/v1/partitions/pid=2/predict", json={"rows": rows[:1]})
        assert ok.status_code == 200, ok.text
        assert ok.json()["predictions"] == pytest.approx(expected[:1], rel=1e-12)
        bad = httpx.post(f"{url}/v1/partitions/pid=2/predict", json={"rows": [rows[3]]})
        assert bad.status_code == 422, bad.text
        assert bad.json()["detail"][0]["loc"] == ["body", "rows", 0, "price_change"]


def test_a_table_by_time_gets_the_forecasts_changes(tmp_path: Path) -> None:
    """``LoadedModel.predict`` of a table without the change column computes it as the
    forecast did, whatever the rows' order: each row's price minus the previous period's."""
    df = priced()
    held, fc = _trained(tmp_path / "reg", df)
    expected = fc.loc[fc["pid"] == 0, "prediction"].to_numpy()
    with Registry.open(tmp_path / "reg") as reg:
        framed = reg.load_model("pid=0").predict(held[held["pid"] == 0][["t", "price"]][::-1])
    np.testing.assert_allclose(framed, expected[::-1], rtol=1e-12)


def test_the_drift_monitor_still_derives_lags_beside_a_change(tmp_path: Path) -> None:
    """Sampled rows carry no previous price: the monitor fills their lags and leaves the
    change uncounted, rather than losing the lags too."""
    df = priced()
    _trained(tmp_path / "reg", df, lags=[5])
    with Registry.open(tmp_path / "reg") as reg:
        schema = reg.load_model("pid=0").version.schema
    assert schema.history is not None
    last = int(schema.history.time)
    filled = with_lags([{"t": last + 1, "price": 1.0}], schema)
    assert filled[0]["y_lag5"] == pytest.approx(schema.history.target[-5])
    assert "price_change" not in filled[0]


def test_two_rows_at_one_time_are_refused_where_a_change_reads_the_order() -> None:
    """The change is from the row before: with two rows in a period it would be whichever
    the sort put first (a change of +891 and then -886 from one stray row)."""
    df = priced(n=12)
    twice = pd.concat([df, df.iloc[[5]].assign(price=999.0)], ignore_index=True)
    with pytest.raises(DataError, match="feature changes need one row per period"):
        prepare(Spec.from_dict(changes_spec()), twice)


@pytest.mark.parametrize(
    "times",
    [
        pd.date_range("2020-01-15", periods=30, freq="MS") + pd.Timedelta(days=14),
        pd.date_range("2024-02-20", periods=30, freq="D", tz="Europe/Berlin"),  # across DST
        pd.date_range("2024-01-01", periods=30, freq="B"),
    ],
    ids=["month-starts-plus-14-days", "daily-in-a-zone", "business-days"],
)
def test_rows_by_time_match_the_forecast_on_calendar_steps(tmp_path: Path, times: Any) -> None:
    """The period before a row is the one the forecast stepped from, whatever the calendar:
    the 15th of each month, local midnight across a change of daylight saving time, a
    Monday after a Friday. A time off those steps has no period before it: refused."""
    df = priced(times=times)
    held, fc = _trained(tmp_path / "reg", df)
    mine = held[held["pid"] == 1]
    rows = [
        {"t": t.isoformat(), "price": float(p)}
        for t, p in zip(mine["t"], mine["price"], strict=True)
    ]
    with Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model("pid=1")
    expected = fc.loc[fc["pid"] == 1, "prediction"].to_numpy()
    np.testing.assert_allclose(loaded.predict(rows), expected, rtol=1e-12)
    off = {"t": (mine["t"].iloc[2] + pd.Timedelta(hours=5)).isoformat(), "price": 1.0}
    with pytest.raises(InvalidRows, match="needs 'price' of the period before"):
        loaded.predict([*rows, off])


@pytest.mark.parametrize("categorical", [False, True], ids=["numpy", "dataframe"])
def test_a_boolean_source_is_a_number_in_rows_too(tmp_path: Path, categorical: bool) -> None:
    """Training reads a boolean column as 0/1; the history's last ``true`` and a row sending
    ``true`` are read the same — beside a categorical feature (a DataFrame input) too."""
    df = priced().assign(promo=lambda d: d["t"] % 3 == 0, shop=lambda d: d["t"] % 2)
    extra: dict[str, Any] = {"categorical": ["shop"]} if categorical else {}
    features = ["price", "promo", "shop"] if categorical else ["price", "promo"]
    df["shop"] = df["shop"].map({0: "a", 1: "b"})
    spec = changes_spec(features=features, changes=["promo"], **extra)
    with Registry(tmp_path / "reg") as reg:
        train(spec, df[df["t"] < 25], reg, backend="local")
        loaded = reg.load_model("pid=0")
    fc = forecast(tmp_path / "reg", horizon=3, future=df[df["t"] >= 25][["pid", "t", *features]])
    rows = [{"t": t, "price": float(df.loc[t, "price"]), "promo": bool(df.loc[t, "promo"]),
             "shop": df.loc[t, "shop"]} for t in (25, 26, 27)]  # fmt: skip
    assert [r["promo"] for r in rows] == [False, False, True]
    expected = fc.loc[fc["pid"] == 0, "prediction"].to_numpy()
    np.testing.assert_allclose(loaded.predict(rows), expected, rtol=1e-12)


def test_the_router_batch_fills_each_partitions_changes_from_its_own_history(
    tmp_path: Path,
) -> None:
    """``POST /v1/predict`` over several partitions: each row's change comes from its own
    partition's last price, as each partition's forecast's first step does."""
    df = priced()
    held, fc = _trained(tmp_path / "reg", df)
    first = held.groupby("pid").head(1)
    rows = [{"pid": int(r.pid), "t": int(r.t), "price": float(r.price)} for r in first.itertuples()]
    expected = fc.groupby("pid").head(1)["prediction"].to_numpy()
    with running_server(Settings(registry=tmp_path / "reg")) as url:
        import httpx

        got = httpx.post(f"{url}/v1/predict", json={"rows": rows})
    assert got.status_code == 200, got.text
    answers = got.json()["predictions"]
    assert [a["partition"] for a in answers] == ["pid=0", "pid=1", "pid=2"]
    assert [a["prediction"] for a in answers] == pytest.approx(expected.tolist(), rel=1e-12)


def test_a_parquet_directory_trains_the_same_changes(tmp_path: Path) -> None:
    """The streamed path (one bucket of partitions per task) derives the changes as the
    in-memory path does: the same forecasts."""
    df = priced()
    train_rows = df[df["t"] < 25]
    folder = tmp_path / "parts"
    folder.mkdir()
    for pid, part in train_rows.groupby("pid"):
        part.to_parquet(folder / f"part-{pid}.parquet", index=False)
    future = df[df["t"] >= 25][["pid", "t", "price"]]
    with Registry(tmp_path / "streamed") as reg:
        train(changes_spec(), folder, reg, backend="local")
    with Registry(tmp_path / "memory") as reg:
        train(changes_spec(), train_rows, reg, backend="local")
    streamed = forecast(tmp_path / "streamed", horizon=5, future=future)
    memory = forecast(tmp_path / "memory", horizon=5, future=future)
    np.testing.assert_array_equal(streamed["prediction"], memory["prediction"])


def test_score_fills_a_missing_change_from_the_history_as_the_router_does(tmp_path: Path) -> None:
    """A ``score`` table of raw new rows (time and price, no ``price_change``) is scored as
    the same rows with the change computed by hand on the full series, and as the forecast:
    the first row's change from the price the history records, each later one from the
    table's row of the period before (``scoring.lag_columns``, the router's
    ``changes.fill_rows``). It was refused, saying the change is derived by training."""
    df = priced()
    held, fc = _trained(tmp_path / "reg", df)
    raw = score_table(held[["pid", "t", "price"]], tmp_path / "reg").frame
    whole = df.assign(price_change=df.groupby("pid")["price"].diff())
    given = whole.loc[held.index, ["pid", "t", "price", "price_change"]]
    scored = score_table(given, tmp_path / "reg").frame
    np.testing.assert_array_equal(raw["prediction"], scored["prediction"])
    np.testing.assert_allclose(
        scored.sort_values(["pid", "t"])["prediction"], fc["prediction"], rtol=1e-12
    )


def test_score_refuses_a_change_whose_period_before_it_has_no_price(tmp_path: Path) -> None:
    """A raw row two periods past the history, without the row before it in the table, has
    no price to take its change from: one line naming partition and data row, as the router
    refuses such a row; nothing is guessed."""
    df = priced()
    held, _ = _trained(tmp_path / "reg", df)
    rows = held.loc[held["t"] != 25, ["pid", "t", "price"]].reset_index(drop=True)
    said = r"'pid=0' v1: data row 1 \(counting from 1\): 'price_change' needs 'price' of the "
    with pytest.raises(DataError, match=said + "period before 26"):
        score_table(rows, tmp_path / "reg")


ZONE = "Europe/Berlin"
PricedRouter = Callable[[str], tuple[Path, str]]


def _priced(name: str) -> pd.DataFrame:
    """``priced`` at integer periods, at month starts, or daily in ``ZONE``."""
    if name == "zoned":
        return priced(dates=True, times=pd.date_range("2024-01-01", periods=30, freq="D", tz=ZONE))
    return priced(dates=name == "dates")


@pytest.fixture(scope="module")
def priced_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PricedRouter]:
    """A registry trained by ``_trained`` on ``_priced(name)`` and a real router on it, made
    at the first test that asks for that name and kept for the module: the 422 tests below
    each trained one and started a router of their own (9 of each, 3 of them different),
    and a refused row writes nothing."""
    made: dict[str, tuple[Path, str]] = {}
    with contextlib.ExitStack() as stack:

        def router(name: str) -> tuple[Path, str]:
            if name not in made:
                root = tmp_path_factory.mktemp(name) / "reg"
                _trained(root, _priced(name))
                made[name] = root, stack.enter_context(running_server(Settings(registry=root)))
            return made[name]

        yield router


@pytest.mark.parametrize(
    ("times", "bad"),
    [
        (None, [{"t": "NaT", "price": 1.0}, {"t": "", "price": 1.0}]),
        (None, [{"t": None, "price": 1.0}]),
        ("periods", [{"t": 1e300, "price": 1.0}, {"t": float("inf"), "price": 1.0}]),
        ("periods", [{"t": 26.5, "price": 1.0}]),
        ("periods", [{"t": 25, "price": 10**400}]),
    ],
    ids=["not-a-time", "no-time", "beyond-float-steps", "between-steps", "too-large-a-price"],
)
def test_a_row_whose_previous_period_is_no_period_is_a_422(
    priced_router: PricedRouter, times: str | None, bad: list[dict[str, Any]]
) -> None:
    """A row is never its own predecessor: a time that is no period of the series (NaT, a
    time so large that a step back is the same float, one between steps), no time, or a
    price beyond float64 is refused naming the row — over HTTP a 422, never a 500."""
    import httpx

    root, url = priced_router("periods" if times == "periods" else "dates")
    with Registry.open(root) as reg:
        loaded = reg.load_model("pid=0")
    for row in bad:
        with pytest.raises(InvalidRows, match="price"):
            loaded.predict([row])
    t, price = json_time(bad[-1]["t"]), bad[-1]["price"]  # Infinity, 10**400: as JSON
    body = f'{{"rows": [{{"t": {t}, "price": {price}}}]}}'
    got = httpx.post(
        f"{url}/v1/partitions/pid=0/predict",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert got.status_code == 422, got.text
    assert got.json()["detail"][0]["loc"][:3] == ["body", "rows", 0]


def json_time(value: Any) -> str:
    import json

    return "Infinity" if value == float("inf") else json.dumps(value)


def test_periods_of_a_tenth_match_whatever_their_float_rounding(tmp_path: Path) -> None:
    """Times 0.0, 0.1, …: 2.8 - 0.1 is 2.6999999999999997, not 2.7; periods are matched by
    their count of steps from the history's last time."""
    df = priced(times=np.round(np.arange(30) * 0.1, 10))
    held, fc = _trained(tmp_path / "reg", df)
    mine = held[held["pid"] == 0]
    rows = [
        {"t": float(t), "price": float(p)} for t, p in zip(mine["t"], mine["price"], strict=True)
    ]
    with Registry.open(tmp_path / "reg") as reg:
        got = reg.load_model("pid=0").predict(rows)
    np.testing.assert_allclose(got, fc.loc[fc["pid"] == 0, "prediction"], rtol=1e-12)
    # a history ending at 2.8: the forecast's third step is 3.1, as the future table writes it
    longer = priced(n=40, times=np.round(np.arange(40) * 0.1, 10))
    with Registry(tmp_path / "early") as reg:
        train(changes_spec(), longer[longer["t"] <= 2.8 + 1e-9], reg, backend="local")
    future = longer[(longer["t"] > 2.85) & (longer["t"] < 3.15)][["pid", "t", "price"]]
    ahead = forecast(tmp_path / "early", horizon=3, future=future)
    assert sorted(set(ahead["t"])) == [2.9, 3.0, 3.1]


def test_a_forecast_of_two_specs_changes_only_the_partitions_that_derive_it(
    tmp_path: Path,
) -> None:
    """Partition 1 has a ``price_change`` column of its own (another spec): forecasting it
    beside partition 0, whose spec derives the change, leaves its column as its future gives."""
    df = priced(partitions=2)
    last = df["t"].max() - 4
    with Registry(tmp_path / "reg") as reg:
        train(changes_spec(), df[(df["t"] < last) & (df["pid"] == 0)], reg, backend="local")
        own = df.assign(price_change=np.linspace(-5, 5, len(df)))
        own_spec = changes_spec(name="own", features=["price", "price_change"], changes=None)
        train(own_spec, own[(own["t"] < last) & (own["pid"] == 1)], reg, backend="local")
    future = own[own["t"] >= last][["pid", "t", "price", "price_change"]]
    both = forecast(tmp_path / "reg", horizon=5, future=future)
    alone = forecast(tmp_path / "reg", ["pid=1"], horizon=5, future=future)
    np.testing.assert_array_equal(
        both.loc[both["pid"] == 1, "prediction"].to_numpy(), alone["prediction"].to_numpy()
    )


def test_a_missing_future_price_is_a_missing_change_in_rows_as_in_the_forecast(
    tmp_path: Path,
) -> None:
    """A ``future`` without step 2's price forecasts steps 2 and 3 from a missing price and a
    missing change (HistGradientBoosting takes them); rows by time sending ``null`` for it
    get the same answers, not a refusal."""
    df = priced()
    hist = "sklearn.ensemble.HistGradientBoostingRegressor"
    spec = changes_spec(candidates=[{"estimator": hist, "params": {"max_iter": 20}}])
    with Registry(tmp_path / "reg") as reg:
        train(spec, df[df["t"] < 25], reg, backend="local")
        loaded = reg.load_model("pid=0")
    future = df[df["t"] >= 25][["pid", "t", "price"]].copy()
    future.loc[future["t"] == 26, "price"] = np.nan
    fc = forecast(tmp_path / "reg", ["pid=0"], horizon=3, future=future)
    mine = future[future["pid"] == 0]
    rows = [{"t": int(t), "price": None if np.isnan(p) else float(p)}
            for t, p in zip(mine["t"], mine["price"], strict=True)][:3]  # fmt: skip
    assert rows[1]["price"] is None
    np.testing.assert_allclose(loaded.predict(rows), fc["prediction"], rtol=1e-12)


def test_a_last_row_without_its_price_is_still_a_known_period(tmp_path: Path) -> None:
    """The last row's price is missing: its change is, and the row is not trained on. Its
    target is still known, so the forecast starts after it and its lags read it. The history
    ended at the last row trained on, and the forecast predicted that known period again,
    its real value left out of the next step's lag."""
    df = priced(partitions=1)
    df.loc[df.index[-1], "price"] = np.nan
    hist = "sklearn.ensemble.HistGradientBoostingRegressor"  # takes a missing change
    spec = changes_spec(
        candidates=[{"estimator": hist, "params": {"max_iter": 20}}], lags=[1], min_rows=8
    )
    with Registry(tmp_path / "reg") as reg:
        train(spec, df, reg, backend="local")
        version = reg.get_version("pid=0")
    assert version.validation["dropped"] == {"undefined_lags": 2}  # the first row and the last
    history = version.schema.history
    assert history is not None and history.time == 29
    assert history.target == [pytest.approx(df["y"].iloc[-1])]
    fc = forecast(tmp_path / "reg", ["pid=0"], horizon=2)
    assert fc["t"].tolist() == [30, 31]
    assert history.features == {"price": pytest.approx(df["price"].iloc[-2])}  # unchanged
    # a model that refuses missing values forecasts too, from that last known price
    with Registry(tmp_path / "linear") as reg:
        train(changes_spec(lags=[1], min_rows=8), df, reg, backend="local")
        loaded = reg.load_model("pid=0")
    future = pd.DataFrame({"pid": 0, "t": [30, 31], "price": [150.0, 160.0]})
    fc = forecast(tmp_path / "linear", ["pid=0"], horizon=2, future=future)
    assert fc["t"].tolist() == [30, 31]
    step1 = {"price": 150.0, "price_change": 150.0 - df["price"].iloc[-2],
             "y_lag1": df["y"].iloc[-1]}  # fmt: skip
    assert set(loaded.features) == set(step1)
    row = [[step1[f] for f in loaded.features]]
    assert fc["prediction"].iloc[0] == pytest.approx(float(loaded.model.predict(row)[0]))


@pytest.mark.parametrize(
    ("dates", "zone", "time"),
    [(False, None, [1]), (False, None, {"a": 1}), (True, None, [1]), (True, ZONE, -1)],
    ids=["list", "object", "dated-list", "zoned-negative-number"],
)
def test_a_time_that_is_no_time_is_a_422_never_a_500(
    priced_router: PricedRouter, dates: bool, zone: str | None, time: Any
) -> None:
    import httpx

    assert zone in (None, ZONE)
    _, url = priced_router("zoned" if zone else "dates" if dates else "periods")
    for path, row in [("/v1/partitions/pid=0/predict", {}), ("/v1/predict", {"pid": 0})]:
        got = httpx.post(f"{url}{path}", json={"rows": [{**row, "t": time, "price": 1.0}]})
        assert got.status_code == 422, (path, got.text)


def test_two_rows_at_the_period_before_with_two_prices_are_refused(tmp_path: Path) -> None:
    """Which of two rows at period 25 is the row before period 26? The request does not say:
    refused, naming the row; two rows agreeing on the price are no question."""
    _trained(tmp_path / "reg", priced())
    with Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model("pid=0")
    with pytest.raises(InvalidRows, match="period before 26, which has 2 values"):
        loaded.predict(
            [{"t": 25, "price": 100.0}, {"t": 25, "price": 130.0}, {"t": 26, "price": 1.0}]
        )
    same = loaded.predict(
        [{"t": 25, "price": 100.0}, {"t": 25, "price": 100.0}, {"t": 26, "price": 1.0}]
    )
    alone = loaded.predict([{"t": 25, "price": 100.0}, {"t": 26, "price": 1.0}])
    assert same[2] == alone[1]


def test_a_forecast_beside_a_spec_whose_source_column_is_text(tmp_path: Path) -> None:
    """Partition 1's spec has ``price`` as a category: the forecast of both still runs, and
    partition 0's changes are those of its own prices."""
    df = priced(partitions=2)
    with Registry(tmp_path / "reg") as reg:
        train(changes_spec(), df[(df["t"] < 25) & (df["pid"] == 0)], reg, backend="local")
        text = df.assign(price=np.where(df["t"] % 2 == 0, "lo", "hi"))
        text_spec = changes_spec(name="text", categorical=["price"], changes=None)
        train(text_spec, text[(text["t"] < 25) & (text["pid"] == 1)], reg, backend="local")
    both = forecast(tmp_path / "reg", horizon=3)
    alone = forecast(tmp_path / "reg", ["pid=0"], horizon=3)
    np.testing.assert_array_equal(
        both.loc[both["pid"] == 0, "prediction"].to_numpy(), alone["prediction"].to_numpy()
    )


def test_the_fallback_sampled_from_a_parquet_directory_learns_changes_within_partitions(
    tmp_path: Path,
) -> None:
    """The streamed fallback samples whole partitions when the spec derives changes: a
    sample of rows made each change the one from the previous *sampled* row (a coefficient
    of 0.39 where the data says 2)."""
    rng = np.random.default_rng(3)
    frames = []
    for p in range(6):
        price = rng.normal(100, 10, 60)
        change = np.concatenate([[0.0], np.diff(price)])
        frames.append(
            pd.DataFrame({"pid": p, "t": np.arange(60), "price": price, "y": 3 + 2 * change})
        )
    df = pd.concat(frames, ignore_index=True)
    folder = tmp_path / "parts"
    folder.mkdir()
    for pid, part in df.groupby("pid"):
        part.to_parquet(folder / f"part-{pid}.parquet", index=False)
    spec = changes_spec(fallback={"max_rows": 100})
    with Registry(tmp_path / "reg") as reg:
        train(spec, folder, reg, backend="local")
        fallback = reg.load_model("__fallback__").model
    at = ["price", "price_change"].index("price_change")
    assert fallback.coef_[at] == pytest.approx(2.0, rel=1e-9)
