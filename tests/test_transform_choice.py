"""A target transform chosen per partition (``target_transform = ["none", "difference"]``)
beside global candidates: one global model per transform, each competing under its own."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry.client import Registry

BOTH = ["none", "difference"]


def panel(n: int = 40) -> pd.DataFrame:
    """Six random walks with drift and six noisy levels, daily."""
    rng = np.random.default_rng(11)
    days = pd.date_range("2024-01-01", periods=n)
    frames = []
    for k in range(12):
        noise = rng.normal(0, 1.0, n)
        y = 20.0 + np.cumsum(1.5 + noise) if k < 6 else 50.0 + 5 * k + noise
        frames.append(pd.DataFrame({"shop": f"s{k:02d}", "day": days, "y": y}))
    return pd.concat(frames, ignore_index=True)


def spec(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "walks",
        "partition_by": ["shop"],
        "target": "y",
        "time_column": "day",
        "lags": [3, 4],
        "target_transform": BOTH,
        "validation": {"strategy": "kfold", "size": 3, "folds": 2},
        "fallback": {"enabled": False},
        "candidates": [
            {"estimator": "sklearn.linear_model.LinearRegression"},
            {"estimator": "sklearn.linear_model.Ridge", "scope": "global", "params": {"alpha": 1}},
        ],
    }
    out.update(overrides)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("choice") / "reg"
    train(spec(), panel(), root, backend="local")
    return root


def _kind(version: Any) -> str:
    return str((version.feature_schema["history"].get("transform") or {}).get("kind", "none"))


def test_one_global_model_per_transform_each_chosen_under_its_own(trained: Path) -> None:
    with Registry.open(trained) as reg:
        records = reg.list_runs(limit=1)[0].options["global"]
        versions = [reg.get_version(p.key) for p in reg.list_partitions(limit=100)]
    by_kind = {r["transform"]: r["sha256"] for r in records}
    assert sorted(by_kind) == sorted(BOTH) and len(set(by_kind.values())) == 2
    assert any(v.validation.get("scope") == "global" and _kind(v) == "difference" for v in versions)
    kinds = {_kind(v) for v in versions}
    assert kinds == set(BOTH), kinds  # the walks learn changes, the levels their level
    for v in versions:
        assert set(v.validation["transforms"]) == set(BOTH)
        if v.validation.get("scope") == "global":
            assert v.artifact_sha256 == by_kind[_kind(v)]  # the model of its own transform
        scores = v.validation["transforms"]
        best = max(s for s in scores.values() if s is not None)
        # the first transform keeps its partition unless another beats it by the margin
        first = scores["none"]
        wins = first is None or best > first + 0.1 * abs(first)
        assert v.score == (best if wins else first)
        ranked = {k: -math.inf if s is None else s for k, s in scores.items()}
        assert _kind(v) == (max(ranked, key=lambda k: ranked[k]) if wins else "none")


def test_another_transform_is_served_only_when_it_wins_by_the_margin(tmp_path: Path) -> None:
    """``[selection] transform_margin``: a model of changes serves a partition only when it
    beats the first transform's by that fraction of its score — pinned by reading a run's
    recorded scores and setting the margin either side of one partition's gap."""
    margin0 = spec(selection={"transform_margin": 0.0})
    train(margin0, panel(), tmp_path / "m0", backend="local")
    with Registry.open(tmp_path / "m0") as reg:
        versions = [reg.get_version(p.key) for p in reg.list_partitions(limit=100)]
    gaps = {
        v.key: (v.validation["transforms"]["difference"] - v.validation["transforms"]["none"])
        / abs(v.validation["transforms"]["none"])
        for v in versions
        if _kind(v) == "difference"
    }
    assert gaps and all(g > 0 for g in gaps.values())  # margin 0: strictly better wins
    key, gap = min(gaps.items(), key=lambda kv: kv[1])  # the narrowest win
    assert gap < 0.9  # a margin above it must stay below 1
    for margin, served in ((gap * 0.99, "difference"), (gap * 1.01, "none")):
        root = tmp_path / f"m{margin}"
        train(spec(selection={"transform_margin": margin}), panel(), root, backend="local")
        with Registry.open(root) as reg:
            v = reg.get_version(key)
        assert _kind(v) == served, (margin, gap)
        assert v.score == v.validation["transforms"][served]


def test_forecasts_of_every_partition_are_in_the_targets_units(trained: Path) -> None:
    with Registry.open(trained) as reg:
        ahead = forecast(reg, horizon=3)
    assert len(ahead) == 12 * 3 and np.isfinite(ahead["prediction"]).all()
    last = panel().groupby("shop")["y"].last()
    first_step = ahead.groupby("shop")["prediction"].first()
    assert (first_step - last).abs().max() < 15  # levels, not changes of ~1.5


def test_retraining_one_partition_rescores_each_transforms_global_model(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    train(spec(), panel(), root, backend="local")
    with Registry(root) as reg:
        before = {r["transform"]: r["sha256"] for r in reg.list_runs(limit=1)[0].options["global"]}
    # six new days: both folds' validation rows come after every row the global fit saw
    summary = train(spec(), panel(46), root, backend="local", only=["shop=s00"])
    after = {r["transform"]: r["sha256"] for r in summary.run.options["global"]}
    assert after == before  # re-scored under each transform, never refitted
    with Registry(root) as reg:
        v = max(reg.list_versions("shop=s00"), key=lambda m: m.version)
    assert v.version == 2
    scored = [c for c in v.candidates if c["label"] == "Ridge (global)"]
    assert scored and all(c["score"] is not None for c in scored)


def test_models_show_says_which_transform_won(
    trained: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways of drawing ``models show`` (the fast path and the typer command) name the
    transform a partition kept and every transform's validation score."""
    from typer.testing import CliRunner

    from manymodels import plaintable
    from manymodels.cli import app
    from manymodels.cli.fastpath import answer

    with Registry.open(trained) as reg:
        v = reg.get_version("shop=s00")
    want = (
        f"target transform: {_kind(v)}, the best of "
        f"none {-v.validation['transforms']['none']:.4g}, "
        f"difference {-v.validation['transforms']['difference']:.4g} (mean_absolute_error)"
    )
    argv = ["models", "show", "shop=s00", "--registry", str(trained)]
    assert answer(argv) == 0
    fast = capsys.readouterr().out
    monkeypatch.setattr(plaintable, "ENABLED", False)
    typed = CliRunner().invoke(app, argv)
    assert typed.exit_code == 0, typed.output
    assert want in fast.splitlines() and fast == typed.stdout


def test_a_global_model_recorded_before_transforms_were_is_rescored_under_its_own(
    tmp_path: Path,
) -> None:
    """A run's global models recorded without their transform (before it was recorded)
    learnt the run spec's: a retrain under a list scores each under that transform's view."""
    import json
    import sqlite3

    root = tmp_path / "reg"
    train(spec(target_transform="difference"), panel(), root, backend="local")
    with sqlite3.connect(root / "registry.db") as conn:
        (options,) = conn.execute("SELECT options_json FROM runs").fetchone()
        old = json.loads(options)
        for record in old["global"]:
            del record["transform"]
        conn.execute("UPDATE runs SET options_json = ?", (json.dumps(old),))
    summary = train(spec(), panel(41), root, backend="local", only=["shop=s00"])
    (record,) = summary.run.options["global"]
    assert record["transform"] == "difference" and record["sha256"] == old["global"][0]["sha256"]


def test_interval_errors_come_from_the_transform_chosen_without_each_fold(tmp_path: Path) -> None:
    """A version's bands come from its transform's held-out choices, except on folds where,
    without that fold, another transform would have won (``training.heldout``): against runs
    with each transform alone, most partitions' records are their own transform's, and at
    least one that kept its level took a fold's errors from its model of changes."""
    folds = {"strategy": "kfold", "size": 3, "folds": 4}
    levels = {"levels": [50, 80]}
    train(spec(intervals=levels, validation=folds), panel(), tmp_path / "both", backend="local")
    for kind in BOTH:
        alone = spec(intervals=levels, validation=folds, target_transform=kind)
        train(alone, panel(), tmp_path / kind, backend="local")
    same, moved = 0, []
    with Registry.open(tmp_path / "both") as reg:
        for p in reg.list_partitions(limit=100):
            v = reg.get_version(p.key)
            record = v.feature_schema["intervals"]
            assert record["held_out"] is True and record["rows"] == 12
            with Registry.open(tmp_path / _kind(v)) as alone_reg:
                own = alone_reg.get_version(p.key).feature_schema["intervals"]
            if record["quantiles"] == own["quantiles"]:
                same += 1
            else:
                moved.append((_kind(v), p.key))
    assert same >= 8 and ("none", "shop=s01") in moved, moved


def test_only_the_chosen_transforms_model_is_fitted_on_all_rows(tmp_path: Path) -> None:
    """Every transform's candidates are fitted on its folds, but only the model of the
    transform that won is fitted on all of a partition's rows: the loser's refit was half of
    the final fits of a "level or changes" run. The fits noted show it: 36 rows of levels or
    35 of changes (one row goes to the first difference) against at most 33 on a fold."""
    from factories import RowCountingRidge

    RowCountingRidge.fits.clear()
    local = [{"estimator": "factories.RowCountingRidge"}]
    train(spec(candidates=local), panel(), tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        kinds = [_kind(reg.get_version(p.key)) for p in reg.list_partitions(limit=100)]
    assert len(kinds) == 12 and set(kinds) == {"none", "difference"}
    on_folds = [n for n, _ in RowCountingRidge.fits if n <= 33]
    on_all = [(n, mean) for n, mean in RowCountingRidge.fits if n > 33]
    assert len(on_folds) >= 12 * 2 * 2  # two folds, two transforms, every partition
    assert len(on_all) == 12  # one per partition: its chosen transform's
    assert sum(n == 36 for n, _ in on_all) == kinds.count("none")
    assert all(abs(mean) < 10 for n, mean in on_all if n == 35)  # changes, not levels


def test_a_chosen_transform_whose_model_cannot_fit_all_rows_gives_way(tmp_path: Path) -> None:
    """A model of levels that fits its folds but not all rows: the partitions whose levels
    won validation are served by their model of changes, which fits, and say why — as when a
    transform fails on its folds, never a failed partition."""
    plain = tmp_path / "plain"
    train(spec(candidates=[{"estimator": "sklearn.linear_model.Ridge"}]), panel(), plain,
          backend="local")  # fmt: skip
    with Registry.open(plain) as reg:
        levels = {p.key for p in reg.list_partitions(limit=100)
                  if _kind(reg.get_version(p.key)) == "none"}  # fmt: skip
    assert levels  # the noisy levels: their model of levels wins validation

    root = tmp_path / "refused"
    local = [{"estimator": "factories:levels_fail_on_all_rows", "params": {"limit": 33}}]
    summary = train(spec(candidates=local), panel(), root, backend="local")
    assert summary.run.n_done == 12 and not summary.failures
    with Registry.open(root) as reg:
        versions = {p.key: reg.get_version(p.key) for p in reg.list_partitions(limit=100)}
    for key in levels:
        v = versions[key]
        assert _kind(v) == "difference", key
        assert v.validation["transforms"]["none"] is None
        assert v.score == v.validation["transforms"]["difference"]
        assert any("target_transform 'none' not fitted" in w and "36 rows of levels" in w
                   for w in v.warnings), v.warnings  # fmt: skip


def _walk_then_level() -> pd.DataFrame:
    """One partition: a random walk for 60 periods (levels learn it), then a flat level
    (changes learn it), with a feature ``x`` in both."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 100)
    level = np.concatenate([100 + np.cumsum(rng.normal(0, 30, 60)), np.full(40, 100.0)])
    y = level + 3 * x + rng.normal(0, 0.5, 100)
    return pd.DataFrame({"k": "a", "t": np.arange(100), "x": x, "y": y})


def _flip_spec(transform: Any) -> dict[str, Any]:
    return {
        "name": "flip", "partition_by": ["k"], "target": "y", "time_column": "t",
        "features": ["x"], "lags": [1], "target_transform": transform,
        "metric": "neg_mean_absolute_error", "min_rows": 10,
        "validation": {"strategy": "last", "size": 8},
        "candidates": [{"estimator": "sklearn.linear_model.LinearRegression"}],
        "selection": {"transform_margin": 0.0}, "fallback": {"enabled": False},
    }  # fmt: skip


def test_a_retrain_choosing_the_other_transform_is_compared_with_its_champion(
    tmp_path: Path,
) -> None:
    """A champion of levels, retrained on newer rows where changes win: it was "could not be
    evaluated (the champion learnt target_transform 'none', this version 'difference')" and
    the better model was kept as a candidate at every retrain. The champion is judged on the
    new rows as served, from its own transform's features; its MAE there is computed here by
    hand from its own model (true lags, as it serves one step)."""
    df, flip = _walk_then_level(), _flip_spec(BOTH)
    root = tmp_path / "registry"
    train(flip, df.iloc[:60], root, backend="local")
    train(flip, df.iloc[60:], root, backend="local", append=True)
    with Registry(root) as reg:
        v1, v2 = sorted(reg.list_versions("k=a"), key=lambda v: v.version)
        assert (_kind(v1), _kind(v2)) == ("none", "difference")
        champion = reg.load_model("k=a", version=1)
        held = df.iloc[92:]  # v2's validation rows, all newer than v1's data
        rows = pd.DataFrame({"x": held["x"], "y_lag1": df["y"].shift(1).iloc[92:]})
        mae = float(np.mean(np.abs(champion.predict(rows) - held["y"].to_numpy())))
        evaluation = v2.evaluation
        assert evaluation["basis"] == "unseen", evaluation
        assert evaluation["champion_score"] == pytest.approx(-mae, rel=1e-9), evaluation
        assert evaluation["challenger_score"] > evaluation["champion_score"]
        assert evaluation["promote"] and reg.get_partition("k=a").aliases["production"] == 2


@pytest.mark.parametrize("missing_target", ["drop", "error"])
def test_a_differenced_partitions_first_row_is_counted_as_what_it_is(
    tmp_path: Path, missing_target: str
) -> None:
    """Every target given, ``difference``: the first row has no change to learn, and was
    counted as a "missing target" under ``missing_target = "drop"`` (one a partition), as
    "undefined lags" under ``"error"``: the reason moved with an unrelated setting. A row
    whose target is missing still counts as missing."""
    df = panel()
    df.loc[df.index[20], "y"] = np.nan  # a missing target of s00, mid-series
    if missing_target == "error":
        df = df.dropna()
    one = spec(target_transform="difference", missing_target=missing_target,
               candidates=spec()["candidates"][:1])  # fmt: skip
    with Registry(tmp_path / "reg") as reg:
        train(one, df, reg, backend="local")
        dropped = {k: reg.get_partition(k).production.validation["dropped"]  # type: ignore[union-attr]
                   for k in ("shop=s00", "shop=s01")}  # fmt: skip
    lags = 4 + 1  # the deepest lag, and the first change
    expected_s00 = {"undefined_lags": lags}
    if missing_target == "drop":
        # after it: the next row's change (1), and lags 3 and 4 of the two changes it leaves
        # undefined (rows 23, 24 and 25: 3)
        expected_s00 = {"missing_target": 1, "undefined_lags": lags + 1 + 3}
    assert dropped == {"shop=s00": expected_s00, "shop=s01": {"undefined_lags": lags}}


def test_a_champion_of_changes_is_judged_on_the_periods_its_view_holds(tmp_path: Path) -> None:
    """After a missing target a view of changes lacks the next periods (no change, then no
    lag of one), where a view of levels has them: judging a champion of changes on a levels
    challenger's rows read "could not be evaluated (KeyError: 97)", and kept the champion.
    Both are judged on the periods both views hold."""
    df, changes = _walk_then_level(), _flip_spec("difference")
    df.loc[95, "y"] = np.nan  # in the retrain's validation rows
    root = tmp_path / "registry"
    train(changes, df.iloc[:60], root, backend="local")
    either = {**changes, "target_transform": BOTH}
    train(either, df.iloc[60:], root, backend="local", append=True)
    with Registry(root) as reg:
        v1, v2 = sorted(reg.list_versions("k=a"), key=lambda v: v.version)
    assert (_kind(v1), _kind(v2)) == ("difference", "none")
    evaluation = v2.evaluation
    assert evaluation["basis"] == "unseen" and evaluation["champion_score"] is not None, evaluation
    assert 0 < evaluation["compared_rows"] < 8  # the periods the champion's view lacks left out
    assert evaluation["promote"], evaluation
