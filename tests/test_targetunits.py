"""Every answer of a model trained with a ``target_transform`` is in the target's units:
validation metrics (candidates, naive, interval residuals), ``LoadedModel.predict``, batch
``score``, and the router's ``/predict`` and ``/v1/predict`` over real HTTP — each checked
against a hand-computed inversion, and against the same model trained without a transform on
a linear trend, where every variant is exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from factories import spec_dict
from sklearn.linear_model import LinearRegression

from manymodels.exceptions import DataError, InvalidRows, PartitionNotFound, SpecError
from manymodels.explain import explain
from manymodels.inputs import model_input
from manymodels.lagfeatures import LagPlan, TargetTransform, fit_transforms, table_features
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.scoring import score
from manymodels.spec import Spec
from manymodels.targetunits import RawTarget
from serving.local import running_server
from serving.settings import Settings

OLS = "sklearn.linear_model.LinearRegression"
ROWS, VALID = 40, 8


def trend(noise: float = 0.0) -> pd.DataFrame:
    """Two partitions on their own linear trends (levels 100 apart), ``t`` = 0 … 39."""
    rng = np.random.default_rng(3)
    t = np.arange(ROWS)
    frames = [
        pd.DataFrame({"pid": p, "t": t, "y": 50.0 + 100 * p + 3.0 * t + rng.normal(0, noise, ROWS)})
        for p in (0, 1)
    ]
    return pd.concat(frames, ignore_index=True)


def spec(kind: str | list[str], **extra: Any) -> dict[str, Any]:
    return spec_dict(
        candidates=[{"estimator": OLS}],
        lags=[1, 2],
        validation={"strategy": "last", "size": VALID},
        **({"target_transform": kind} if kind != "none" else {}),
        **extra,
    )


def trained(root: Path, kind: str, noise: float = 0.0, **extra: Any) -> Path:
    with Registry(root) as reg:
        train(spec(kind, **extra), trend(noise), reg, backend="local")
    return root


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("kind", ["scale", "difference"])
def test_validation_scores_are_in_the_targets_units(tmp_path: Path, kind: str) -> None:
    """The version's MAE, its naive MAE and its interval residuals equal a hand computation:
    the model fitted on the transformed training rows, its validation predictions turned back
    (``difference``: summed onto the last training target, as a forecast of the fold) and
    compared with the raw target."""
    df = trend(noise=2.0)
    raw = df.loc[df["pid"] == 1, "y"].to_numpy()
    z, fitted = fit_transforms(raw, np.array([0, ROWS]), kind)  # type: ignore[arg-type]
    X = table_features(z, np.array([0, ROWS]), LagPlan.from_spec(Spec.from_dict(spec(kind))))
    ok = np.isfinite(X).all(axis=1) & np.isfinite(z)  # rows the model trains on
    X, z, y, before = X[ok], z[ok], raw[ok], np.concatenate([[np.nan], raw[:-1]])[ok]
    tr, va = slice(0, len(z) - VALID), slice(len(z) - VALID, len(z))

    def back(p: np.ndarray) -> np.ndarray:
        if kind == "difference":  # a forecast from the fold's origin, not row by row
            return before[va][0] + np.cumsum(p)
        return p * fitted[0].spread + fitted[0].center

    model = back(LinearRegression().fit(X[tr], z[tr]).predict(X[va]))
    naive = back(np.zeros(VALID) if kind == "difference" else np.full(VALID, z[tr][-1]))
    with Registry(tmp_path / "reg") as reg:
        train(spec(kind, intervals={"levels": [80]}), df, reg, backend="local")
        version = reg.get_version("pid=1")
    assert version.score == pytest.approx(-np.abs(model - y[va]).mean(), rel=1e-9)
    assert version.naive_score == pytest.approx(-np.abs(naive - y[va]).mean(), rel=1e-9)
    record = version.feature_schema["intervals"]
    assert record["units"] == "target"
    assert record.get("chained") == (VALID if kind == "difference" else None)  # steps judged
    assert record["quantiles"][0] <= np.abs(model - y[va]).max() + 1e-9
    assert record["quantiles"][0] >= np.sort(np.abs(model - y[va]))[VALID // 2] - 1e-9


def test_scores_compare_across_transforms_on_an_exact_trend(tmp_path: Path) -> None:
    """On a noiseless trend every variant is exact, so each scores ~0 in the target's units.
    The naive baseline is the last value whatever the transform (3, 6, … 24 off): with
    ``scale`` the last scaled value turned back, with ``difference`` no change."""
    naive = {}
    for kind in ("none", "scale", "difference"):
        with Registry(trained(tmp_path / kind, kind)) as reg:
            version = reg.get_version("pid=0")
        assert abs(version.score) < 1e-8, kind
        naive[kind] = version.naive_score
    assert naive["none"] == pytest.approx(-3.0 * np.arange(1, VALID + 1).mean())
    assert naive["scale"] == pytest.approx(naive["none"], rel=1e-9)
    assert naive["difference"] == pytest.approx(naive["none"], rel=1e-9)


def test_auto_difference_differences_only_the_partition_whose_level_wanders(
    tmp_path: Path,
) -> None:
    """Partition 0 trends (the KPSS test rejects a stable level), partition 1 is noise around
    one level: ``auto_difference`` trains 0 as ``difference`` does and 1 as no transform does —
    the same scores, histories and forecasts, and 1's version records no transform at all."""
    from manymodels.forecasting import forecast

    rng = np.random.default_rng(5)
    t = np.arange(60)
    df = pd.concat(
        [
            pd.DataFrame({"pid": 0, "t": t, "y": 50.0 + 3.0 * t + rng.normal(0, 2.0, 60)}),
            pd.DataFrame({"pid": 1, "t": t, "y": 200.0 + rng.normal(0, 2.0, 60)}),
        ],
        ignore_index=True,
    )
    got: dict[str, Any] = {}
    for kind in ("auto_difference", "difference", "none"):
        with Registry(tmp_path / kind) as reg:
            train(spec(kind), df, reg, backend="local")
            versions = {key: reg.get_version(key) for key in ("pid=0", "pid=1")}
            ahead = forecast(reg, horizon=3).set_index(["pid", "t"])["prediction"]
            got[kind] = (versions, ahead)
    (auto, auto_ahead), (diff, diff_ahead), (none, none_ahead) = got.values()
    assert auto["pid=0"].feature_schema["history"]["transform"]["kind"] == "difference"
    assert "transform" not in auto["pid=1"].feature_schema["history"]
    assert auto["pid=0"].score == pytest.approx(diff["pid=0"].score, rel=1e-12)
    assert auto["pid=1"].score == pytest.approx(none["pid=1"].score, rel=1e-12)
    np.testing.assert_allclose(auto_ahead.loc[0], diff_ahead.loc[0], rtol=1e-12)
    np.testing.assert_allclose(auto_ahead.loc[1], none_ahead.loc[1], rtol=1e-12)
    assert auto_ahead.loc[0].min() > 200  # the trend carried on (t = 60: ~230)


def test_a_list_of_transforms_keeps_each_partitions_best(tmp_path: Path) -> None:
    """``target_transform = ["none", "difference"]`` fits each partition both ways and keeps
    the better validation score: the version is the one that transform alone trains (score,
    history, forecast), and records both scores. With lags of 8 and more (direct: both judged
    as 8-step forecasts) the random walk learns its changes and the level stays a level."""
    from manymodels.forecasting import forecast

    rng = np.random.default_rng(5)
    t = np.arange(60)
    df = pd.concat(
        [
            pd.DataFrame({"pid": 0, "t": t, "y": 50.0 + np.cumsum(3.0 + rng.normal(0, 2.0, 60))}),
            pd.DataFrame({"pid": 1, "t": t, "y": 200.0 + rng.normal(0, 2.0, 60)}),
        ],
        ignore_index=True,
    )
    got: dict[str, Any] = {}
    for name, kind in (("both", ["none", "difference"]), ("difference", "difference"),
                       ("none", "none")):  # fmt: skip
        with Registry(tmp_path / name) as reg:
            train({**spec(kind), "lags": [8, 9]}, df, reg, backend="local")
            versions = {key: reg.get_version(key) for key in ("pid=0", "pid=1")}
            ahead = forecast(reg, horizon=3).set_index(["pid", "t"])["prediction"]
            got[name] = (versions, ahead)
    (both, both_ahead), (diff, diff_ahead), (none, none_ahead) = got.values()
    for key, alone, alone_ahead, pid in (("pid=0", diff, diff_ahead, 0),
                                         ("pid=1", none, none_ahead, 1)):  # fmt: skip
        scores = both[key].validation["transforms"]
        assert scores == {
            "none": pytest.approx(none[key].score, rel=1e-12),
            "difference": pytest.approx(diff[key].score, rel=1e-12),
        }
        assert both[key].score == pytest.approx(alone[key].score, rel=1e-12)
        assert both[key].score == max(scores.values())
        np.testing.assert_allclose(both_ahead.loc[pid], alone_ahead.loc[pid], rtol=1e-12)
    assert both["pid=0"].feature_schema["history"]["transform"]["kind"] == "difference"
    assert "transform" not in both["pid=1"].feature_schema["history"]
    assert (
        both["pid=0"].n_rows == diff["pid=0"].n_rows == none["pid=0"].n_rows - 1
    )  # one change less


class Ones:
    """A model of changes that answers 1 for every row, whatever its features."""

    def predict(self, X: Any) -> np.ndarray:
        return np.ones(len(X))


def rising() -> tuple[np.ndarray, np.ndarray]:
    """A target that rises by 1, 2, 3 and 4, and each row's previous target (none for the
    first): new arrays at each call."""
    return np.array([10.0, 11.0, 13.0, 16.0, 20.0]), np.array([np.nan, 10.0, 11.0, 13.0, 16.0])


def test_a_fold_is_judged_as_a_forecast_only_when_its_rows_follow_in_time() -> None:
    """A differenced fold is summed from its origin when its rows are consecutive periods of
    folds ordered in time; a row dropped inside it, or folds not in time order (a holdout),
    leave each row turned back on its own previous target."""
    changes = TargetTransform("difference")
    y, before = rising()

    def judged(periods: np.ndarray | None) -> list[float]:
        raw = RawTarget(y, before, changes, periods)
        return raw.judged(Ones(), slice(2, 5)).predict(np.zeros((3, 1))).tolist()

    assert judged(np.arange(5)) == [12.0, 13.0, 14.0]  # 11 + 1, + 1, + 1: a forecast
    assert judged(np.array([0, 1, 2, 4, 5])) == [12.0, 14.0, 17.0]  # a period missing: by row
    assert judged(None) == [12.0, 14.0, 17.0]  # not in time order
    assert RawTarget(y, before, changes, np.arange(5)).chained(slice(2, 5))
    assert not RawTarget(y, before, TargetTransform("scale"), np.arange(5)).chained(slice(2, 5))


def test_a_folds_forecast_answer_is_kept_for_its_own_rows_only() -> None:
    """Whether a differenced fold is a forecast is worked out once a fold (every option is
    judged on it); rows that are not a fold's own shared, read-only rows — a writeable
    array, changed between calls — are worked out each time, as before."""
    changes = TargetTransform("difference")
    y, before = rising()
    raw = RawTarget(y, before, changes, np.array([0, 1, 2, 3, 5]))  # a period missing at 4

    def answer(rows: Any) -> list[float]:
        return raw.judged(Ones(), rows).predict(np.zeros((3, 1))).tolist()

    fold, across = np.array([1, 2, 3]), np.array([2, 3, 4])
    fold.flags.writeable = across.flags.writeable = False
    for _ in range(2):  # the second answers are the remembered ones
        assert answer(fold) == answer(slice(1, 4)) == [11.0, 12.0, 13.0]  # from 10: a forecast
        assert answer(across) == answer(slice(2, 5)) == [12.0, 14.0, 17.0]  # across the gap
    rows = np.array([2, 3, 4])
    assert answer(rows) == [12.0, 14.0, 17.0]
    rows[:] = [1, 2, 3]  # the same array, now rows that follow in time
    assert answer(rows) == [11.0, 12.0, 13.0]


def test_a_champion_left_as_it_is_by_auto_difference_is_scored(tmp_path: Path) -> None:
    """``auto_difference`` leaves a level series as it is: its champion learnt no transform,
    and neither does the challenger, so the two are compared as usual."""
    rng = np.random.default_rng(2)
    t = np.arange(ROWS + VALID)
    df = pd.DataFrame({"pid": 1, "t": t, "y": 200.0 + rng.normal(0, 2.0, ROWS + VALID)})
    with Registry(tmp_path / "reg") as reg:
        train(spec("auto_difference"), df.iloc[:ROWS], reg, backend="local")
        train(spec("auto_difference"), df, reg, backend="local")
        version = reg.get_version("pid=1", 2)
    assert "transform" not in version.feature_schema["history"]
    assert version.evaluation["champion_score"] is not None, version.evaluation


def test_a_champion_of_another_transform_is_kept_unscored(tmp_path: Path) -> None:
    """Retrained under another transform, the challenger cannot score the champion on its own
    features and units: the comparison says why and the champion is kept."""
    df = trend(noise=2.0)
    with Registry(tmp_path / "reg") as reg:
        train(spec("none"), df, reg, backend="local")
        train(spec("difference"), df.assign(y=df["y"] + 0.5), reg, backend="local")
        version = reg.get_version("pid=1", 2)
        assert reg.get_version("pid=1").version == 1
    assert version.evaluation["promote"] is False
    assert version.evaluation["champion_score"] is None
    assert "target_transform 'none'" in version.evaluation["reason"]


def test_a_list_of_transforms_is_checked() -> None:
    with pytest.raises(SpecError, match="lists a transform twice"):
        Spec.from_dict(spec(["difference", "difference"]))
    with pytest.raises(SpecError, match="target_transform"):
        Spec.from_dict(spec(["none", "auto_difference"]))


# ------------------------------------------------------------------- answers in raw units
@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("units")
    return {kind: trained(root / kind, kind) for kind in ("none", "scale", "difference")}


def level(pid: int, t: float) -> float:
    return 50.0 + 100 * pid + 3.0 * t


@pytest.mark.parametrize("kind", ["scale", "difference"])
def test_loaded_model_predicts_in_the_targets_units(registries: dict[str, Path], kind: str) -> None:
    rows: list[dict[str, Any]] = [{"t": 40, "y": level(1, 40)}, {"t": 41}]
    with Registry.open(registries[kind]) as reg:
        loaded = reg.load_model("pid=1")
        got = loaded.predict(rows)
        framed = loaded.predict(pd.DataFrame(rows))
        own = loaded.model.predict(model_input(rows, loaded.version.schema))
        if kind == "difference":
            with pytest.raises(InvalidRows, match="must give its time"):
                loaded.predict([{"y_lag1": 3.0, "y_lag2": 3.0}])
            with pytest.raises(InvalidRows, match="period before this row"):
                loaded.predict([{"t": 42, "y_lag1": 3.0, "y_lag2": 3.0}])
    with Registry.open(registries["none"]) as reg:
        untransformed = reg.load_model("pid=1").predict(rows)
    np.testing.assert_allclose(got, [level(1, 40), level(1, 41)], rtol=1e-9)
    np.testing.assert_allclose(got, untransformed, rtol=1e-9)
    np.testing.assert_allclose(framed, got, rtol=1e-12)
    assert np.abs(own - got).min() > 10  # the estimator itself answers in transformed units


def test_batch_score_is_in_the_targets_units(registries: dict[str, Path]) -> None:
    """``score`` rows carry the lag features in the model's units (as the version was
    trained); the answers come back in the target's."""
    with Registry.open(registries["scale"]) as reg:
        history = reg.get_version("pid=0").feature_schema["history"]
    lag1, lag2 = history["target"][-1], history["target"][-2]
    table = pd.DataFrame({"pid": [0], "t": [40], "y_lag1": [lag1], "y_lag2": [lag2]})
    got = score(table, registries["scale"], backend="local")["prediction"].to_numpy()
    np.testing.assert_allclose(got, [level(0, 40)], rtol=1e-9)

    table = pd.DataFrame({"pid": [0, 0], "t": [40, 41], "y": [level(0, 40), np.nan],
                          "y_lag1": [3.0, 3.0], "y_lag2": [3.0, 3.0]})  # fmt: skip
    got = score(table, registries["difference"], backend="local")["prediction"].to_numpy()
    np.testing.assert_allclose(got, [level(0, 40), level(0, 41)], rtol=1e-9)
    # the table's second row, counted from 1 as train counts rows (it said row 1)
    said = r"data row 2 \(counting from 1\) \(partition 'pid=0' v1\).*period 1 after"
    with pytest.raises(DataError, match=said):
        score(table.drop(columns="y"), registries["difference"], backend="local")


@pytest.mark.parametrize("kind", ["scale", "difference"])
def test_batch_score_turns_each_partition_back_with_its_own_transform(
    registries: dict[str, Path], kind: str
) -> None:
    """Partitions whose schemas share their feature kinds share one schema in the scoring
    plan: every partition's answers were turned back with the first one's ``center`` and
    ``spread`` (``scale``), or from its last target (``difference``): pid=1, 100 above pid=0,
    came back at pid=0's level."""
    with Registry.open(registries[kind]) as reg:
        lags = {p: reg.get_version(f"pid={p}").feature_schema["history"]["target"] for p in (0, 1)}
    rows = [
        {"pid": p, "t": 40, "y": level(p, 40), "y_lag1": lags[p][-1], "y_lag2": lags[p][-2]}
        for p in (1, 0)
    ]
    if kind == "difference":  # the lags are changes; the next row's previous target is known
        rows += [{"pid": p, "t": 41, "y_lag1": 3.0, "y_lag2": 3.0} for p in (1, 0)]
    table = pd.DataFrame(rows)
    got = score(table, registries[kind], backend="local")["prediction"].to_numpy()
    np.testing.assert_allclose(got, [level(r["pid"], r["t"]) for r in rows], rtol=1e-9)


@pytest.mark.slow  # two routers started per transform (~5 s each on a busy machine)
@pytest.mark.parametrize("kind", ["scale", "difference"])
def test_router_answers_in_the_targets_units(registries: dict[str, Path], kind: str) -> None:
    """``/predict``, the batch ``/v1/predict`` and posted actuals' live error over real HTTP,
    against the version trained without a transform and the trend itself; a row whose
    previous target is unknown is a 422 naming it."""
    one = [{"t": 40, "y": level(1, 40)}, {"t": 41}]
    many = [{"pid": 0, "t": 40, "y": level(0, 40)}, {"pid": 1, "t": 40}, {"pid": 0, "t": 41}]
    answers: dict[str, tuple[list[float], list[float]]] = {}
    for name in (kind, "none"):
        with running_server(Settings(registry=registries[name])) as url:
            single = httpx.post(f"{url}/v1/partitions/pid=1/predict", json={"rows": one})
            batch = httpx.post(f"{url}/v1/predict", json={"rows": many})
            assert single.status_code == 200 and batch.status_code == 200, single.text + batch.text
            posted = [{"t": 40, "y": level(1, 40) + 1.0}]  # live error from posted actuals
            live = httpx.post(f"{url}/v1/partitions/pid=1/actuals", json={"rows": posted})
            assert live.status_code == 200, live.text
            if live.json()["already_counted"]:  # the "none" registry is the module's: the
                assert name == "none" and live.json()["rows"] == 0  # other kind posted it
            else:
                assert abs(live.json()["error"]) == pytest.approx(1.0, rel=1e-9), name
            answers[name] = (
                single.json()["predictions"],
                [a["prediction"] for a in batch.json()["predictions"]],
            )
            if name == "difference":
                bad = httpx.post(
                    f"{url}/v1/predict", json={"rows": [{"pid": 1, "y_lag1": 3, "y_lag2": 3}]}
                )
                assert bad.status_code == 422, bad.text
                assert bad.json()["detail"][0]["loc"] == ["body", "rows", 0, "t"]
                assert "must give its time" in bad.text
    expected_one = [level(1, 40), level(1, 41)]
    expected_many = [level(0, 40), level(1, 40), level(0, 41)]
    np.testing.assert_allclose(answers[kind][0], expected_one, rtol=1e-9)
    np.testing.assert_allclose(answers[kind][1], expected_many, rtol=1e-9)
    np.testing.assert_allclose(answers[kind][0], answers["none"][0], rtol=1e-9)
    np.testing.assert_allclose(answers[kind][1], answers["none"][1], rtol=1e-9)


def test_no_fallback_answers_in_no_partitions_units(registries: dict[str, Path]) -> None:
    """A pooled fallback has no partition's transform to turn its answers back with: with a
    target transform none is trained (skipped, saying why), so an unknown key is refused."""
    with Registry.open(registries["none"]) as reg:
        assert reg.get_version(FALLBACK_KEY).key == FALLBACK_KEY
    with Registry.open(registries["scale"]) as reg:
        with pytest.raises(PartitionNotFound):
            reg.get_version(FALLBACK_KEY)
        with pytest.raises(DataError, match="no fallback"):
            score(
                pd.DataFrame({"pid": [7], "y_lag1": [0.0], "y_lag2": [0.0]}), reg, backend="local"
            )


@pytest.mark.parametrize("kind", ["scale", "difference"])
def test_champion_and_challenger_compare_in_the_targets_units(tmp_path: Path, kind: str) -> None:
    """Retrained on 8 new periods, the challenger's comparison score is its validation score
    (same rows, same units), and the champion's is its own error on those rows in the
    target's units (``difference``: by hand, its changes summed from the rows' origin)."""
    df = trend(noise=2.0)
    t = np.arange(ROWS + VALID)
    rng = np.random.default_rng(5)
    newer = pd.DataFrame({"pid": 1, "t": t[ROWS:], "y": 150.0 + 3.0 * t[ROWS:]
                          + rng.normal(0, 2.0, VALID)})  # fmt: skip
    both = pd.concat([df, newer], ignore_index=True)
    with Registry(tmp_path / "reg") as reg:
        train(spec(kind), df, reg, backend="local")
        champion = reg.load_model("pid=1").model
        train(spec(kind), both, reg, backend="local")
        version = reg.get_version("pid=1", 2)
    evaluation = version.evaluation
    assert evaluation["basis"] == "unseen"
    assert evaluation["challenger_score"] == pytest.approx(version.score, rel=1e-12)
    if kind == "difference":
        raw = both.loc[both["pid"] == 1, "y"].to_numpy()
        z = np.concatenate([[np.nan], np.diff(raw)])
        X = table_features(z, np.array([0, len(z)]), LagPlan("y", lags=(1, 2)))[-VALID:]
        mine = raw[-VALID - 1] + np.cumsum(champion.predict(X))
        assert evaluation["champion_score"] == pytest.approx(-np.abs(mine - raw[-VALID:]).mean())


@pytest.mark.parametrize("kind", ["scale", "difference"])
def test_explain_says_its_weights_are_in_the_transformed_targets_units(
    registries: dict[str, Path], kind: str
) -> None:
    """The coefficients are the estimator's (transformed units); ``units`` says how to read
    them, with the numbers that turn a scaled answer back into the target."""
    rows: list[dict[str, Any]] = [{"t": 40, "y": level(1, 40)}, {"t": 41}]
    with Registry.open(registries[kind]) as reg:
        loaded = reg.load_model("pid=1")
        why = explain(loaded.version, loaded.model)
        got = loaded.predict(rows)
        x = np.asarray(model_input(rows, loaded.version.schema), dtype=np.float64)
        names = [str(f) for f in loaded.version.feature_schema["features"]]
    with Registry.open(registries["none"]) as reg:
        plain = reg.load_model("pid=1")
        assert "target" not in explain(plain.version, plain.model).units
    coef = {term.feature: term.value for term in why.terms}
    answer = why.intercept[0] + x @ np.array([coef[name] for name in names])
    if kind == "scale":
        transform = loaded.version.feature_schema["history"]["transform"]
        assert f"{transform['spread']:.6g} + {transform['center']:.6g}" in why.units
        np.testing.assert_allclose(answer * transform["spread"] + transform["center"], got)
    else:
        assert "change of the target from the previous period" in why.units
        np.testing.assert_allclose(answer[0] + level(1, 39), got[0], rtol=1e-9)
