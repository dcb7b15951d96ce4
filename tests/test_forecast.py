"""Tests for manymodels.forecasting, the ``forecast`` command and the router's forecast route,
on the per-store sales sample with its forecasting spec (calendar parts and target lags)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import DECIDED, linear_frame, open_client, pumps_spec, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError, PartitionNotFound
from manymodels.forecasting import forecast
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import sensor_readings
from serving.settings import Settings

KEY = "store=2,brand=tropicana"
OTHER = "store=5,brand=dominicks"
RIDGE_KEY = "store=5,brand=minute_maid"  # a Ridge model: every lag moves its prediction
SKIPPED = "store=2,brand=minute_maid"  # 10 weeks < min_rows: served by the fallback
WEEK = pd.Timedelta(days=7)
FUTURE_WEEKS = ["2025-02-24", "2025-03-03", "2025-03-10"]


@pytest.fixture(scope="module")
def sales(samples_dir: Path) -> pd.DataFrame:
    df = pd.read_csv(samples_dir / "store_sales.csv")
    return df.assign(week=pd.to_datetime(df["week"])).sort_values(["store", "brand", "week"])


@pytest.fixture(scope="module")
def registry(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("forecast") / "registry"
    spec = samples_dir / "store_sales_forecast.toml"
    summary = train(spec, samples_dir / "store_sales.csv", root, backend="local")
    assert (summary.run.n_trained, summary.run.n_skipped, summary.run.n_failed) == (34, 2, 0)
    return root


def series(sales: pd.DataFrame, key: str) -> pd.DataFrame:
    store, brand = (part.split("=")[1] for part in key.split(","))
    return sales[(sales["store"] == int(store)) & (sales["brand"] == brand)]


def by_hand(
    root: Path, part: pd.DataFrame, exogenous: list[list[float]], *, recursive: bool = True
) -> list[float]:
    """The recursive forecast computed step by step with the registry's own model: calendar
    parts of each new week, and lags that take the previous steps' predictions (or, with
    ``recursive=False``, wrongly keep the last observed targets)."""
    with Registry.open(root) as reg:
        model = reg.load_model(part.iloc[0][["store", "brand"]].to_dict()).model
    recent = part["units"].tolist()
    week = part["week"].iloc[-1]
    out = []
    for x in exogenous:
        week += WEEK
        row = [*x, week.isocalendar().week, week.month, recent[-1], recent[-2]]
        pred = float(model.predict(np.array([row], dtype=np.float64))[0])
        out.append(pred)
        if recursive:
            recent.append(pred)
    return out


def future_rows(key: str, weeks: list[Any], price: float = 1.49) -> pd.DataFrame:
    store, brand = (part.split("=")[1] for part in key.split(","))
    n = len(weeks)
    return pd.DataFrame(
        {"store": int(store), "brand": brand, "week": weeks, "price": [price] * n,
         "deal": [1] * n, "feat": [1] * n}
    )  # fmt: skip


# ------------------------------------------------------------------------------ the library
def test_one_row_per_partition_and_step_continuing_the_weekly_cadence(
    registry: Path, sales: pd.DataFrame
) -> None:
    frame = forecast(registry, horizon=5)
    assert list(frame.columns) == ["store", "brand", "week", "prediction", "model_version"]
    assert len(frame) == 34 * 5
    assert (frame.groupby(["store", "brand"]).size() == 5).all()
    assert (frame["model_version"] == 1).all()
    keys = set(zip(frame["store"], frame["brand"], strict=True))
    assert (2, "minute_maid") not in keys  # skipped partitions are not forecast
    last = sales.groupby(["store", "brand"])["week"].max()
    for (store, brand), weeks in frame.groupby(["store", "brand"])["week"]:
        expected = [last[store, brand] + WEEK * k for k in range(1, 6)]
        assert list(weeks) == expected
    assert frame["prediction"].notna().all()


def test_lags_are_recursive(registry: Path, sales: pd.DataFrame) -> None:
    part = series(sales, RIDGE_KEY)
    last = part.iloc[-1]
    carried = [[last["price"], last["deal"], last["feat"]]] * 3
    with Registry.open(registry) as reg:
        assert reg.get_version(RIDGE_KEY).estimator.endswith("Ridge")
    frame = forecast(registry, [RIDGE_KEY], horizon=3)
    assert frame["prediction"].tolist() == pytest.approx(by_hand(registry, part, carried))
    stale = by_hand(registry, part, carried, recursive=False)
    assert frame["prediction"].iloc[0] == pytest.approx(stale[0])
    assert frame["prediction"].iloc[1] != pytest.approx(stale[1])  # step 2 saw step 1


def test_future_times_that_are_not_iso_8601_are_one_line(registry: Path) -> None:
    """pandas' message about a non-ISO date ends in three lines of advice ("You might want
    to try: - passing `format`…"): the CLI printed four lines, the router a detail with
    newlines. Now its first line only."""
    rows = future_rows(KEY, ["03/04/1997"])
    with pytest.raises(DataError) as caught:
        forecast(registry, [KEY], horizon=1, future=rows)
    said = str(caught.value)
    assert "'week' must hold dates: '03/04/1997' in data row 1 (counting from 1) (Time " in said
    assert "(Time data 03/04/1997 is not ISO8601 format.)" in said
    assert "\n" not in said


def test_future_rows_replace_the_carried_forward_values(
    registry: Path, sales: pd.DataFrame
) -> None:
    plain = forecast(registry, [KEY, OTHER], horizon=3)
    promo = forecast(registry, [KEY, OTHER], horizon=3,
                     future=future_rows(KEY, FUTURE_WEEKS))  # fmt: skip
    expected = by_hand(registry, series(sales, KEY), [[1.49, 1, 1]] * 3)
    mine = promo[promo["brand"] == "tropicana"]
    assert mine["prediction"].tolist() == pytest.approx(expected)
    assert mine["prediction"].tolist() != pytest.approx(
        plain[plain["brand"] == "tropicana"]["prediction"].tolist()
    )
    # a partition without rows in `future` carries its last values forward
    others = promo["brand"] == "dominicks"
    assert promo.loc[others, "prediction"].tolist() == pytest.approx(
        plain.loc[plain["brand"] == "dominicks", "prediction"].tolist()
    )


def test_future_file_and_extra_rows(registry: Path, tmp_path: Path) -> None:
    later = future_rows(KEY, [*FUTURE_WEEKS, "2025-03-17"]).sample(frac=1.0, random_state=0)
    path = tmp_path / "future.csv"
    later.to_csv(path, index=False)
    from_file = forecast(registry, [KEY], horizon=3, future=path)
    from_frame = forecast(registry, [KEY], horizon=3, future=future_rows(KEY, FUTURE_WEEKS))
    pd.testing.assert_frame_equal(from_file, from_frame)


@pytest.mark.parametrize(
    ("future", "text"),
    [
        (future_rows(KEY, FUTURE_WEEKS[:2]), "has rows for some forecast steps but not for"),
        (future_rows(KEY, FUTURE_WEEKS).drop(columns="deal"), "missing column(s) 'deal'"),
        (future_rows(KEY, [FUTURE_WEEKS[0]] * 2 + [FUTURE_WEEKS[1]]), "more than one row"),
        (
            future_rows(KEY, FUTURE_WEEKS).assign(price="cheap"),
            "'price' must be a number, not text 'cheap'",
        ),
        (future_rows(KEY, ["2025-02-24", "soon", "later"]), "must hold dates"),
        # numbers where the version's times are dates: pandas read 20250224 as "20250224"
        # with a Pandas4Warning (an error under -W error; pandas 4 reads them as epochs)
        (future_rows(KEY, [20250224, 20250303, 20250310]), "holds 20250224, a number, where"),
        (future_rows(KEY, ["2025-02-24", 20250303, "2025-03-10"]), "holds 20250303, a number"),
        (future_rows(KEY, [2025.5, 2026.0, 2027.0]), "holds 2025.5, a number"),
        # a Sunday among weekly Mondays: its values were never used, the last ones carried
        (future_rows(KEY, ["2025-03-02"]), "has a row at 2025-03-02, which is not one"),
        (future_rows(KEY, [*FUTURE_WEEKS, "2025-03-04"]), "which is not one of its forecast steps"),
        # rows of the partition, none at its steps (a year off, after a gap): they were
        # ignored, and the last values carried forward as for a partition without rows
        (future_rows(KEY, ["2024-02-26", "2024-03-04", "2024-03-11"]), "none at its forecast"),
        (future_rows(KEY, ["2025-03-24", "2025-03-31", "2025-04-07"]), "none at its forecast"),
    ],
)
def test_bad_future_tables(registry: Path, future: pd.DataFrame, text: str) -> None:
    with pytest.raises(DataError) as info:
        forecast(registry, [KEY], horizon=3, future=future)
    assert text in str(info.value)


@pytest.mark.parametrize("horizon", [0, -1, 1001, 2.5, True])
def test_bad_horizon(registry: Path, horizon: Any) -> None:
    with pytest.raises(DataError, match="horizon must be"):
        forecast(registry, [KEY], horizon=horizon)


def test_unknown_skipped_and_fallback_partitions(registry: Path) -> None:
    with pytest.raises(PartitionNotFound, match="store=99"):
        forecast(registry, ["store=99,brand=tropicana"], horizon=2)
    with pytest.raises(PartitionNotFound, match="minute_maid"):
        forecast(registry, [SKIPPED], horizon=2)
    with pytest.raises(DataError, match="fallback model"):
        forecast(registry, [FALLBACK_KEY], horizon=2)


def test_keys_as_mappings(registry: Path) -> None:
    frame = forecast(registry, [{"brand": "tropicana", "store": 2}], horizon=2)
    assert frame[["store", "brand"]].drop_duplicates().values.tolist() == [[2, "tropicana"]]


def test_numbered_periods_and_partitions_without_a_time_column(tmp_path: Path) -> None:
    df = linear_frame(2, 30)
    with Registry(tmp_path / "timed") as reg:
        train(spec_dict(lags=[1]), df, reg, backend="local")
        frame = forecast(reg, horizon=3)
    assert frame["t"].tolist() == [30, 31, 32] * 2
    assert frame["pid"].tolist() == [0, 0, 0, 1, 1, 1]

    untimed = spec_dict(time_column=None, validation={"strategy": "holdout"})
    with Registry(tmp_path / "untimed") as reg:
        train(untimed, df, reg, backend="local")
        with pytest.raises(DataError, match="without a time_column"):
            forecast(reg, horizon=3)


def test_a_forecast_of_every_partition_leaves_out_one_without_a_time_column(
    tmp_path: Path,
) -> None:
    """One partition whose production version has no time column (an MLflow import, here a
    spec without one) refused the forecast of every other partition: `manymodels forecast
    --horizon 8` after the README's `manymodels import … --promote` was one error line. It is
    left out now, and said; named, or alone, it is refused as before."""
    df = linear_frame(3, 30)
    root = tmp_path / "reg"
    with Registry(root) as reg:
        train(spec_dict(), df, reg, backend="local")
        untimed = spec_dict(time_column=None, validation={"strategy": "holdout"},
                            promotion={"policy": "always"})  # fmt: skip
        train(untimed, df, reg, backend="local", only=["pid=1"])
        assert reg.get_version("pid=1").schema.time_column is None  # production, untimed
        frame = forecast(reg, horizon=2)
        assert frame["pid"].tolist() == [0, 0, 2, 2]
        assert frame.attrs["left_out"] == ["pid=1"]
        with pytest.raises(DataError, match="'pid=1': trained from a spec without a time_col"):
            forecast(reg, ["pid=1", "pid=2"], horizon=2)  # named: refused
    out = tmp_path / "next.csv"
    result = CliRunner().invoke(
        app, ["forecast", "--horizon", "2", "--registry", str(root), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"forecast 2 period(s) of 2 partition(s) → {out}"
    assert result.stderr.splitlines()[0] == (  # then the note of the features held
        "note: left out 1 partition(s) trained without a time_column (an MLflow import, or "
        "another spec's): 'pid=1'"
    )
    assert pd.read_csv(out)["pid"].tolist() == [0, 0, 2, 2]
    shown = CliRunner().invoke(app, ["forecast", "--horizon", "1", "--registry", str(root),
                                     "--json"])  # fmt: skip
    assert shown.exit_code == 0 and json.loads(shown.stdout)["left_out"] == ["pid=1"]


def test_classification_forecasts_classes(tmp_path: Path) -> None:
    spec = pumps_spec(
        calendar=["day_of_week"],
        lags=[1],
        metric="accuracy",
        candidates=[
            {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": [1.0]}}
        ],
    )
    with Registry(tmp_path / "reg") as reg:
        summary = train(spec, sensor_readings(n_assets=2, readings=80), reg, backend="local")
        assert summary.run.n_failed == 0, summary.failures
        frame = forecast(reg, horizon=4)
    assert len(frame) == 8
    assert set(frame["prediction"].tolist()) <= {0, 1}
    assert frame["prediction"].dtype.kind == "i"
    assert (frame.groupby("asset")["ts"].diff().dropna() == pd.Timedelta(hours=1)).all()


def test_a_classifier_with_a_decision_forecasts_its_labels_as_the_router_labels_rows(
    tmp_path: Path,
) -> None:
    """A binary classifier with a ``[decision]``: ``/v1/predict`` answers each row's label at
    the version's threshold, ``manymodels score`` writes it as ``decision_label``, but a
    forecast (the library, ``manymodels forecast``, the router's forecast route) gave only
    the most probable class. Now each step's label and the threshold, the router's labels of
    the same rows (the last row's features carried forward) and the model's probabilities at
    the threshold, directly and recursively (a lag of the target)."""
    spec = pumps_spec(decision=DECIDED)
    data = sensor_readings(n_assets=3, readings=120)
    for lags in ([], [1]):
        root = tmp_path / f"registry{len(lags)}"
        summary = train({**spec, **({"lags": lags} if lags else {})}, data, root, backend="local")
        assert summary.run.n_trained == 3, summary.failures
        frame = forecast(root, horizon=3)
        assert frame.columns[2:5].tolist() == ["prediction", "decision_label", "decision_threshold"]
        result = runner.invoke(
            app, ["forecast", "--registry", str(root), "--horizon", "3", "--json"]
        )
        assert result.exit_code == 0, result.output
        listed = json.loads(result.stdout)["forecast"]
        assert [r["decision_label"] for r in listed] == frame["decision_label"].tolist()
        with Registry.open(root) as reg, open_client(Settings(registry=root)) as c:
            for asset, steps in frame.groupby("asset"):
                key = f"asset={asset}"
                r = c.post(f"/v1/partitions/{key}/forecast", json={"horizon": 3})
                assert r.status_code == 200, r.text
                body = r.json()
                assert [p["label"] for p in body["forecast"]] == steps["decision_label"].tolist()
                assert body["threshold"] == steps["decision_threshold"].iloc[0]
                last = data[data["asset"] == asset].iloc[-1]
                row = {"temperature": last["temperature"], "vibration": last["vibration"]}
                if not lags:  # the same row scored: the router's label of it
                    scored = c.post(f"/v1/partitions/{key}/predict", json={"rows": [row]}).json()
                    assert scored["labels"] * 3 == steps["decision_label"].tolist()
                    assert scored["threshold"] == body["threshold"]
                    continue
                # recursive: each step's lag is the step before's class (the last target's
                # first); its label is its probability of class 1 at the threshold
                loaded = reg.load_model(key)
                history = loaded.version.schema.history
                assert history is not None
                lag = [history.target[-1], *steps["prediction"].tolist()[:-1]]
                rows = [{**row, "failure_within_24h_lag1": v} for v in lag]
                p1 = loaded.predict_proba(rows)[:, loaded.classes.index(1)]
                expected = (p1 >= body["threshold"]).astype(int).tolist()
                assert steps["decision_label"].tolist() == expected


# ------------------------------------------------------------------------------ the command
runner = CliRunner()


def test_cli_forecast_json_and_file(registry: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["forecast", "--horizon", "3", "--registry", str(registry), "--partitions", KEY,
              "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["horizon"], out["partitions"]) == (3, 1)
    # dates as the CSV and the errors write them (before: 2024-01-01T00:00:00 here alone)
    assert [r["week"] for r in out["forecast"]] == FUTURE_WEEKS
    expected = forecast(registry, [KEY], horizon=3)["prediction"].tolist()
    assert [r["prediction"] for r in out["forecast"]] == pytest.approx(expected)
    assert {r["store"] for r in out["forecast"]} == {2}

    path = tmp_path / "forecast.csv"
    result = runner.invoke(
        app, ["forecast", "--horizon", "2", "--registry", str(registry), "--out", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert "34 partition(s)" in result.stdout
    written = pd.read_csv(path)
    assert len(written) == 68
    # the sample's weeks are dates (2024-01-01), and the forecast's are written so too
    assert written["week"].head(2).tolist() == FUTURE_WEEKS[:2]
    result = runner.invoke(app, ["forecast", "--horizon", "2", "--registry", str(registry)])
    assert result.exit_code == 0 and FUTURE_WEEKS[1] in result.stdout
    assert "00:00:00" not in result.stdout


def test_cli_forecast_errors_are_one_line(registry: Path) -> None:
    for args, text in (
        (["--horizon", "0"], "horizon must be between 1 and 1000"),
        (["--horizon", "2", "--partitions", "store=99,brand=x"], "no production model"),
    ):
        result = runner.invoke(app, ["forecast", "--registry", str(registry), *args])
        assert result.exit_code == 2
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0]


# ------------------------------------------------------------------------------ the router
@pytest.fixture(scope="module")
def client(registry: Path) -> Iterator[Any]:
    with open_client(Settings(registry=registry)) as c:
        yield c


def test_route_forecasts_like_the_library(client: Any, registry: Path) -> None:
    r = client.post(f"/v1/partitions/{KEY}/forecast", json={"horizon": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["partition"], body["version"]) == (KEY, 1)
    # dates, as its 422s name a step (before: 2024-01-01T00:00:00, but "not for 2024-01-01")
    assert [p["time"] for p in body["forecast"]] == FUTURE_WEEKS
    expected = forecast(registry, [KEY], horizon=3)["prediction"].tolist()
    assert [p["prediction"] for p in body["forecast"]] == pytest.approx(expected)


def test_route_future_rows_by_position_or_time(client: Any, registry: Path) -> None:
    rows = future_rows(KEY, FUTURE_WEEKS)
    expected = forecast(registry, [KEY], horizon=3, future=rows)["prediction"].tolist()
    exogenous = rows[["price", "deal", "feat"]].to_dict(orient="records")
    timed = rows[["week", "price", "deal", "feat"]].iloc[::-1].to_dict(orient="records")
    for future in (exogenous, timed):
        r = client.post(f"/v1/partitions/{KEY}/forecast", json={"horizon": 3, "future": future})
        assert r.status_code == 200, r.text
        assert [p["prediction"] for p in r.json()["forecast"]] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("key", "body", "status", "text"),
    [
        ("store=99,brand=tropicana", {"horizon": 2}, 404, "no partition"),
        (SKIPPED, {"horizon": 2}, 404, "no partition"),
        (FALLBACK_KEY, {"horizon": 2}, 422, "not forecast"),
        (KEY, {"horizon": 0}, 422, "greater than or equal to 1"),
        (KEY, {"horizon": 1001}, 422, "less than or equal to 1000"),
        (KEY, {"horizon": 3, "future": [{"price": 2.0, "deal": 0, "feat": 0}]}, 422, "1 row(s)"),
        (
            KEY,
            {"horizon": 1, "future": [{"price": "x", "deal": 0, "feat": 0}]},
            422,
            "must be a number, not text 'x'",
        ),
        (
            KEY,
            {"horizon": 1, "future": [{"week": 20250224, "price": 9.9, "deal": 1, "feat": 1}]},
            422,
            "time column 'week' holds 20250224, a number, where the version's times are dates",
        ),
        (
            KEY,
            {"horizon": 1, "future": [{"week": "2025-03-31", "price": 9.9, "deal": 1, "feat": 1}]},
            422,
            "has rows, but none at its forecast steps (2025-02-24 … 2025-02-24,",
        ),
    ],
)
def test_route_errors(client: Any, key: str, body: dict[str, Any], status: int, text: str) -> None:
    r = client.post(f"/v1/partitions/{key}/forecast", json=body)
    assert r.status_code == status, r.text
    assert text in r.text


def test_forecast_starts_after_the_last_row_trained_on(tmp_path: Path) -> None:
    """The last weeks have no target yet: they are left out of training, and the forecast
    (with its lags) continues from the last week that has one, not from NaN."""

    df = linear_frame(1, 40)
    df.loc[df.t >= 37, "y"] = np.nan
    train(spec_dict(lags=[1, 2]), df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        history = reg.get_version("pid=0").feature_schema["history"]
    assert history["time"] == 36
    assert history["target"] == pytest.approx(df.y[df.t.isin([35, 36])].tolist())
    frame = forecast(tmp_path / "reg", horizon=3)
    assert frame["t"].tolist() == [37, 38, 39]
    assert frame["prediction"].notna().all()


def test_a_missing_target_its_lags_read_is_named(tmp_path: Path) -> None:
    """``missing_target = "drop"`` trains without a row whose target is missing, but the
    forecast's lags still read that period: a model that takes no NaN (LinearRegression)
    then cannot forecast, and the error says which history is missing and what to do."""
    rng = np.random.default_rng(3)
    days = pd.date_range("2024-01-01", periods=30)
    frames = []
    for k in range(3):
        y = 50.0 + k + rng.normal(0, 1.0, len(days))
        if k == 1:
            y[-2] = np.nan  # the last row still trains (its lags 2 and 3 are known), but the
            # forecast's first step reads this period as its lag 2
        frames.append(pd.DataFrame({"shop": f"s{k}", "day": days, "y": y}))
    spec = {
        "name": "gaps", "partition_by": ["shop"], "target": "y", "time_column": "day",
        "lags": [2, 3], "validation": {"strategy": "last", "size": 3},
        "fallback": {"enabled": False},
        "candidates": [{"estimator": "sklearn.linear_model.LinearRegression"}],
    }  # fmt: skip
    root = tmp_path / "reg"
    assert train(spec, pd.concat(frames), root, backend="local").run.n_trained == 3
    assert len(forecast(root, ["shop=s0", "shop=s2"], horizon=2)) == 4
    with pytest.raises(DataError) as e:
        forecast(root, horizon=2)
    assert "partition 'shop=s1' v1 could not forecast" in str(e.value)
    assert "1 of the last 3 training targets its lags read are missing" in str(e.value)


def test_cli_forecast_never_writes_over_its_future_table(registry: Path, tmp_path: Path) -> None:
    future = tmp_path / "future.csv"
    future.write_text("store,brand,week,price,deal,feat\n")
    result = runner.invoke(
        app, ["forecast", "--horizon", "1", "--registry", str(registry), "--future", str(future),
              "--out", str(future)],
    )  # fmt: skip
    assert result.exit_code == 2 and "is the input table" in result.stderr, result.output
    assert future.read_text() == "store,brand,week,price,deal,feat\n"


def test_monthly_data_on_the_15th_is_forecast_on_the_15th(tmp_path: Path) -> None:
    """The spacing of the 15th of each month is 28–31 days: its median (31D) drifted a
    forecast off the calendar, and a future table with the real dates was refused."""
    months = pd.date_range("2022-01-01", periods=30, freq="MS") + pd.Timedelta(days=14)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"pid": 1, "month": months, "x": rng.normal(size=30)})
    frame["y"] = 2.0 * frame["x"] + rng.normal(scale=0.1, size=30)
    spec = {
        "name": "mid", "partition_by": ["pid"], "target": "y", "time_column": "month",
        "features": ["x"], "candidates": [{"estimator": "sklearn.linear_model.Ridge"}],
    }  # fmt: skip
    train(spec, frame, tmp_path / "reg", backend="local")
    ahead = pd.date_range("2024-07-01", periods=3, freq="MS") + pd.Timedelta(days=14)
    future = pd.DataFrame({"pid": 1, "month": ahead, "x": [0.5, 1.0, 1.5]})
    out = forecast(tmp_path / "reg", horizon=3, future=future)
    assert list(out["month"].dt.strftime("%Y-%m-%d")) == ["2024-07-15", "2024-08-15", "2024-09-15"]
    assert out["prediction"].tolist() == pytest.approx([1.0, 2.0, 3.0], abs=0.15)


def test_zone_aware_daily_data_stays_at_local_midnight_across_daylight_saving(
    tmp_path: Path,
) -> None:
    """Europe/Berlin daily data ending 2024-03-25: steps of a fixed 24 hours landed at 01:00
    local after the change on 03-31, in a fixed +01:00 zone, and a future table with the real
    local midnights was refused."""
    times = pd.date_range("2024-02-20", "2024-03-25", freq="D", tz="Europe/Berlin")
    n = len(times)
    frame = pd.DataFrame(
        {"pid": 1, "day": times, "x": np.arange(n, 0.0, -1), "y": np.arange(n) * 1.0}
    )
    spec = {
        "name": "tz", "partition_by": ["pid"], "target": "y", "time_column": "day",
        "features": ["x"], "candidates": [{"estimator": "sklearn.linear_model.Ridge"}],
    }  # fmt: skip
    train(spec, frame, tmp_path / "reg", backend="local")
    out = forecast(tmp_path / "reg", horizon=9)
    assert str(out["day"].dt.tz) == "Europe/Berlin"
    assert (out["day"].dt.hour == 0).all() and out["day"].iloc[-1].day == 3
    ahead = pd.date_range("2024-03-26", periods=9, freq="D", tz="Europe/Berlin")
    future = pd.DataFrame({"pid": 1, "day": ahead, "x": 1.0})
    assert (forecast(tmp_path / "reg", horizon=9, future=future)["day"] == ahead).all()
    # times without their zone: said in words, naming the file (pandas' merge message was)
    naive = tmp_path / "naive.csv"
    future.assign(day=ahead.tz_localize(None)).to_csv(naive, index=False)
    with pytest.raises(DataError) as info:
        forecast(tmp_path / "reg", horizon=9, future=naive)
    text = str(info.value)
    assert text.startswith("future (") and "naive.csv" in text, text
    assert "the forecast's times carry a time zone and its own do not" in text
    assert "merge" not in text
    # the example is one of the forecast's own steps, in its zone: it was a fixed
    # 2024-03-01T00:00:00+01:00, whatever the model's zone
    assert "with their UTC offset (2024-03-26T00:00:00+01:00, one of the forecast's" in text


def test_route_future_cells_are_judged_as_a_predict_rows_cells(client: Any) -> None:
    """JSON future rows mixing numbers, booleans and nulls in a column: each cell is what a
    ``/predict`` row's would be (a boolean counts as a number, null as missing), not a whole
    column of objects refused as text."""
    rows = [{"price": 2.0, "deal": True, "feat": 0}, {"price": None, "deal": 1, "feat": False},
            {"price": 3, "deal": 0, "feat": None}]  # fmt: skip
    r = client.post(f"/v1/partitions/{KEY}/forecast", json={"horizon": 3, "future": rows})
    assert r.status_code == 200, r.text
    as_numbers = [{"price": 2.0, "deal": 1.0, "feat": 0.0}, {"price": None, "deal": 1.0,
                   "feat": 0.0}, {"price": 3.0, "deal": 0.0, "feat": None}]  # fmt: skip
    same = client.post(f"/v1/partitions/{KEY}/forecast", json={"horizon": 3, "future": as_numbers})
    assert same.status_code == 200, same.text
    assert r.json()["forecast"] == same.json()["forecast"]
    bad = [{"price": 2.0, "deal": "yes", "feat": 0}] * 3
    refused = client.post(f"/v1/partitions/{KEY}/forecast", json={"horizon": 3, "future": bad})
    assert refused.status_code == 422 and "deal" in refused.text
    # an integer past float64: refused naming its value and row, as /v1/predict refuses it
    # (it was the column's "must be numeric … found dtype object" message)
    huge = '{"price": 2.0, "deal": 0, "feat": 0}'
    body = f'{{"horizon": 3, "future": [{huge}, {huge.replace("2.0", "1" + "0" * 400)}, {huge}]}}'
    r = client.post(f"/v1/partitions/{KEY}/forecast", content=body,
                    headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("future: feature 'price' is too large a number (1000")
    assert r.json()["detail"].endswith(") in row 1: it does not fit a float")


KILLED_WRITER = """
import os, signal, sys
import pandas as pd
from manymodels.tables import write_tables

def frames():
    yield pd.DataFrame({"k": ["a"] * 1000, "prediction": [1.5] * 1000})
    os.kill(os.getpid(), signal.SIGKILL)  # killed mid-write: the OOM killer, a kill -9

write_tables(frames(), __import__("pathlib").Path(sys.argv[1]))
"""


def test_a_forecast_killed_mid_write_leaves_nothing_after_the_next(
    registry: Path, tmp_path: Path
) -> None:
    """A forecast --out killed between its first chunk and its rename left a hidden partial
    table beside the output for good (`.next.csv.1a2b3c4d.tmp`; one per kill, as large as the
    forecast got). The next forecast into the directory removes a dead writer's, never a
    running one's."""
    import subprocess
    import sys

    from manymodels.tempnames import writer_tag

    path = tmp_path / "next.csv"
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], capture_output=True)
    assert killed.returncode == -9, killed.stderr
    left = [p for p in tmp_path.iterdir()]
    assert len(left) == 1, left  # the killed writer's partial table (its buffer unwritten)
    running = tmp_path / f".tmp-out-{writer_tag()}-0a1b2c3d-other.csv"  # a live writer's
    running.write_text("being written")
    result = runner.invoke(
        app, ["forecast", "--horizon", "2", "--registry", str(registry), "--out", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(path)) == 68
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, running.name])


@pytest.mark.parametrize(
    ("renamed", "asked", "clash"),
    [
        ({"pid": "prediction"}, {}, "key column 'prediction'"),
        ({"pid": "model_version"}, {}, "key column 'model_version'"),
        ({"t": "proba-0"}, {"probabilities": True}, "time column 'proba-0'"),
    ],
    ids=["key-prediction", "key-model_version", "time-proba"],
)
def test_a_key_or_time_column_named_as_an_output_column_is_refused_not_overwritten(
    tmp_path: Path, renamed: dict[str, str], asked: dict[str, Any], clash: str
) -> None:
    """A partition column named ``prediction`` trained (the router keys partitions by their
    path), but a forecast wrote its predictions over it: every row's key was gone, the
    steps of partitions told apart by nothing, without a word (``score`` refuses such a
    table). The forecast was then refused naming the column, before any model loads; now
    training refuses the name (``written_columns.reserved``), and the forecast still
    refuses it for a registry trained before."""
    from manymodels.exceptions import SpecError
    from manymodels.forecast_output import refuse_overwritten
    from manymodels.forecast_select import Selection

    df = linear_frame(2, 30).rename(columns=renamed)
    key, time = renamed.get("pid", "pid"), renamed.get("t", "t")
    spec = spec_dict(partition_by=[key], time_column=time)
    if asked:  # probabilities: a classifier of the sign of y
        df = df.assign(y=(df["y"] > df["y"].median()).astype(int))
        logistic = [{"estimator": "sklearn.linear_model.LogisticRegression"}]
        spec = {**spec, "task": "classification", "metric": "accuracy", "candidates": logistic}
    name = clash.split("'")[1]
    with pytest.raises(SpecError, match=f"column '{name}' is a name scoring"):
        train(spec, df, tmp_path / "reg", backend="local")
    assert not (tmp_path / "reg").exists()
    chosen = Selection(
        alias="production", pairs=[(f"{key}=0", 1)], key_columns=[key], time_column=time,
        levels=[], schemas=[], classes=["0", "1"] if asked else None,
    )  # fmt: skip
    with pytest.raises(DataError) as e:
        refuse_overwritten(chosen)
    assert str(e.value) == (
        f"the forecast would overwrite its {clash} with a column it writes: rename it in "
        "the table and train again"
    )


def test_an_error_quoting_a_huge_value_is_cut_short(client: Any) -> None:
    """A forecast's future time of 5 MB of text: pandas' error quotes the value, and the 422
    carried all of it (5,000,091 bytes over uvicorn). Now a library's error line is cut to
    1,000 characters (``exceptions.first_line``)."""
    future = future_rows(KEY, ["x" * 5_000_000]).to_dict("records")
    r = client.post(f"/v1/partitions/{KEY}/forecast", json={"horizon": 1, "future": future})
    assert r.status_code == 422, r.text[:300]
    assert "'week' must hold dates: 'xxxx" in r.text, r.text[:300]
    assert "... in data row 1 (counting from 1) (Time data xxxx" in r.text, r.text[:300]
    assert len(r.content) < 2000, r.text[:300]
