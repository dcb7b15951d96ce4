"""Interval residuals of the selection (``manymodels.training.heldout``): each fold's errors
come from what the rule chooses on the other folds — the replay against hand-made scores for
each step of the rule, and ``fit_partition``'s record against a hand computation with
scikit-learn."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from sklearn.dummy import DummyRegressor

from manymodels import intervals
from manymodels.candidates import naive_baseline
from manymodels.feature_schema import FeatureSchema
from manymodels.pipeline import train
from manymodels.registry.client import Registry
from manymodels.spec import Spec
from manymodels.training.heldout import (
    HeldOut,
    HeldOutErrors,
    Predicted,
    Rule,
    Trail,
    across_transforms,
    direct_steps,
    rerecorded,
)
from manymodels.training.metrics import metric
from manymodels.training.select import fit_partition
from manymodels.training.splits import take, validation_splits
from tests.test_transform_choice import panel as walk_panel
from tests.test_transform_choice import spec as walk_spec

MAE = metric("neg_mean_absolute_error")
TRUTH = [np.zeros(2), np.zeros(2), np.zeros(2)]
PLAIN = Rule(top2=False, global_margin=0.0, naive_margin=None)


def _trail(options: Sequence[tuple[str, Sequence[float]]]) -> Trail:
    """A trail of options whose fold-``f`` predictions are ``[e, -e]`` for absolute error
    ``e`` (so each fold's MAE is ``e``)."""
    trail = Trail(MAE)
    for kind, errors in options:
        trail.start()
        for f, e in enumerate(errors):
            trail.score(Predicted(np.array([e, -e])), None, TRUTH[f])
        trail.keep(kind)  # type: ignore[arg-type]
    return trail


def _errors(trail: Trail, rule: Rule) -> list[float]:
    folds = trail.held_out(TRUTH[: len(trail.options[0].scores)], rule)
    assert folds is not None
    return [float(np.abs(h.truth - h.prediction).mean()) for h in folds]


def test_each_fold_gets_the_option_chosen_without_it() -> None:
    # A wins overall (mean 2.5 against 3) but only thanks to fold 0: left out, B is chosen
    trail = _trail([("local", [1.0, 4.0]), ("local", [3.0, 3.0])])
    assert _errors(trail, PLAIN) == [3.0, 4.0]  # fold 0: B (by fold 1); fold 1: A (by fold 0)
    held = trail.held_out(TRUTH[:2], PLAIN)
    assert held is not None and [h.score for h in held] == [-3.0, -1.0]  # on the other fold


def test_the_first_of_equal_options_is_chosen_as_selection_does() -> None:
    trail = _trail([("local", [2.0, 2.0, 5.0]), ("local", [2.0, 2.0, 1.0])])
    # folds 0 and 1 left out: the second (1.5 against 3.5) errs by 2 there; fold 2 left out:
    # both score 2, the first is chosen and errs by 5
    assert _errors(trail, PLAIN) == [2.0, 2.0, 5.0]


def test_naive_replaces_the_best_only_by_its_margin() -> None:
    options = [("local", [4.0, 10.0, 10.0]), ("naive", [9.5, 9.5, 1.0])]
    # left out fold 0: local 10 against naive 5.25 (47 % better); fold 1: local 7 against
    # 5.25 (25 % better); fold 2: local 7 against naive 9.5, the local model
    assert _errors(_trail(options), Rule(False, 0.0, 0.1)) == [9.5, 9.5, 10.0]
    # a 30 % margin: naive still wins without fold 0, no longer without fold 1
    assert _errors(_trail(options), Rule(False, 0.0, 0.3)) == [9.5, 10.0, 10.0]
    # naive that does not compete (``naive_candidate = false``) is never chosen
    assert _errors(_trail(options), PLAIN) == [4.0, 10.0, 10.0]


def test_the_global_model_keeps_a_fold_a_local_one_wins_within_the_margin() -> None:
    options = [("global", [5.0, 5.0]), ("local", [4.8, 1.0])]
    # left out fold 0: local 1 against global 5 (a clear win); fold 1: 4.8 against 5, 4 %
    assert _errors(_trail(options), Rule(False, 0.1, None)) == [4.8, 5.0]
    assert _errors(_trail(options), PLAIN) == [4.8, 1.0]  # no margin: any win is a win


def test_the_mean_of_the_two_best_is_chosen_where_it_scores_best() -> None:
    trail = Trail(MAE)
    truth = [np.zeros(1), np.zeros(1)]
    for kind, preds in [("local", [1.0, 1.0]), ("global", [-1.0, -1.0]), ("local", [3.0, 3.0])]:
        trail.start()
        for f, p in enumerate(preds):
            trail.score(Predicted(np.array([p])), None, truth[f])
        trail.keep(kind)  # type: ignore[arg-type]
    folds = trail.held_out(truth, Rule(True, 0.0, None))
    assert folds is not None
    assert [float(h.prediction[0]) for h in folds] == [0.0, 0.0]  # (1 + -1) / 2: error 0
    # without the pair the first local model and the global one tie: a tie goes to the
    # global model, as in selection (a local one must beat it)
    no_pair = trail.held_out(truth, PLAIN)
    assert no_pair is not None and [float(h.prediction[0]) for h in no_pair] == [-1.0, -1.0]


def test_folds_that_share_rows_choose_on_the_others_rows_outside_the_held_out_fold() -> None:
    """Folds a step apart (``[validation] step_size``) share rows: fold 0 validates rows
    0–2, fold 1 rows 1–3. A is perfect on the shared rows 1–2 and errs on rows 0 and 3, B
    errs by 2 everywhere. Judged on fold 1 whole, A wins fold 0's held-out choice with fold
    0's own rows in view (the winner's curse the replay is for); judged on row 3 alone, B
    does — and the same for fold 1 by row 0."""
    truth = [np.zeros(3), np.zeros(3)]
    trail = Trail(MAE)
    for fold_preds in ([[5.0, 0.0, 0.0], [0.0, 0.0, 3.0]], [[2.0] * 3, [2.0] * 3]):
        trail.start()
        for f, pred in enumerate(fold_preds):
            trail.score(Predicted(np.array(pred)), None, truth[f])
        trail.keep("local")
    blind = trail.held_out(truth, PLAIN)  # disjoint folds' rule: A, erring by 5/3 and 1
    assert blind is not None and [float(np.abs(h.prediction).mean()) for h in blind] == [
        pytest.approx(5 / 3),
        1.0,
    ]
    held = trail.held_out(truth, PLAIN, [np.arange(0, 3), np.arange(1, 4)])
    assert held is not None
    assert [h.prediction.tolist() for h in held] == [[2.0] * 3, [2.0] * 3]  # B, both folds
    assert [h.score for h in held] == [-2.0, -2.0]  # on row 3, on row 0
    # disjoint rows: the plain mean of the other folds, as without rows
    apart = trail.held_out(truth, PLAIN, [np.arange(0, 3), np.arange(3, 6)])
    assert apart is not None and [h.score for h in apart] == [h.score for h in blind]


def test_no_replay_with_one_fold_or_without_a_model() -> None:
    assert _trail([("local", [1.0])]).held_out(TRUTH[:1], PLAIN) is None
    assert _trail([("naive", [1.0, 2.0])]).held_out(TRUTH[:2], Rule(False, 0.0, 0.1)) is None


def test_fit_partition_records_the_errors_of_each_folds_held_out_choice() -> None:
    """Two constant models, chosen per fold by hand with scikit-learn: the record's quantiles
    are those of the held-out choices' errors, not of the winner's own."""
    rng = np.random.default_rng(3)
    y = np.concatenate([rng.normal(0, 1, 30), rng.normal(0, 1, 10) + 3, rng.normal(0, 1, 10)])
    X = np.arange(len(y), dtype=np.float64).reshape(-1, 1)
    spec = Spec.model_validate(
        {
            "name": "heldout",
            "partition_by": ["k"],
            "target": "y",
            "features": ["x"],
            "time_column": "t",
            "validation": {"strategy": "kfold", "size": 10, "folds": 2},
            "selection": {"naive_candidate": False},
            "candidates": [
                {
                    "estimator": "sklearn.dummy.DummyRegressor",
                    "params": {"strategy": ["mean", "median"]},
                }
            ],
            "intervals": {"levels": [50, 80]},
        }
    )
    fitted = fit_partition(X, y, spec, key="k=1", time_ordered=True)
    splits = validation_splits(len(y), spec, key="k=1", time_ordered=True)
    fold_preds = [
        [
            DummyRegressor(strategy=s).fit(take(X, tr), y[tr]).predict(take(X, va))
            for tr, va in splits
        ]
        for s in ("mean", "median")
    ]
    maes = np.array(
        [[np.abs(y[va] - p[f]).mean() for f, (_, va) in enumerate(splits)] for p in fold_preds]
    )
    # on each fold alone a different model is better, or the test proves nothing
    picks = [int(np.argmin(maes[:, 1])), int(np.argmin(maes[:, 0]))]  # fold 0 by fold 1, …
    folds = [(y[va], fold_preds[picks[f]][f]) for f, (_, va) in enumerate(splits)]
    expected = intervals.record(folds, [50, 80], ordered=True)
    assert expected is not None and fitted.intervals is not None
    assert fitted.intervals["held_out"] is True
    assert fitted.intervals["quantiles"] == expected["quantiles"]
    winner = int(np.argmin(maes.mean(axis=1)))
    own = [(y[va], fold_preds[winner][f]) for f, (_, va) in enumerate(splits)]
    own_record = intervals.record(own, [50, 80], ordered=True)
    assert own_record is not None and picks != [winner, winner]
    assert own_record["quantiles"] != expected["quantiles"]


def _errors_of(
    scores: Sequence[float], errors: Sequence[float], chained: int | None = None
) -> HeldOutErrors:
    """Held-out choices over ``len(scores)`` folds of one row each, erring by ``errors``."""
    folds = tuple(
        HeldOut(s, np.zeros(1), np.array([e])) for s, e in zip(scores, errors, strict=True)
    )
    return HeldOutErrors(folds, (50.0,), ordered=False, chained=chained)


def test_the_transform_choice_is_replayed_fold_by_fold_with_its_margin() -> None:
    level = _errors_of([-5.0, -5.0], [1.0, 2.0])
    changes = _errors_of([-4.8, -2.0], [3.0, 4.0])  # 4 % better without fold 0, 60 % without 1
    kept = across_transforms([level, changes], first_fitted=True, margin=0.1)
    assert kept is not None and [float(h.prediction[0]) for h in kept.folds] == [1.0, 4.0]
    plain = across_transforms([level, changes], first_fitted=True, margin=0.0)
    assert plain is not None and [float(h.prediction[0]) for h in plain.folds] == [3.0, 4.0]
    # errors of forecasts ``chained`` steps long only where every fold's came from such a model
    assert kept.chained is None and plain.chained is None
    both_chained = across_transforms(
        [_errors_of([-5.0, -5.0], [1.0, 2.0], 3), _errors_of([-4.8, -2.0], [3.0, 4.0], 2)],
        first_fitted=True,
        margin=0.1,
    )
    assert both_chained is not None and both_chained.chained == 2
    # the first transform did not fit: the others compete without a margin
    alone = across_transforms([changes, level], first_fitted=False, margin=0.1)
    assert alone is not None and [float(h.prediction[0]) for h in alone.folds] == [3.0, 4.0]


def test_no_transform_replay_unless_every_transform_has_the_same_folds() -> None:
    level = _errors_of([-5.0, -5.0], [1.0, 2.0])
    assert across_transforms([level, None], first_fitted=True, margin=0.1) is None
    three = _errors_of([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0])
    assert across_transforms([level, three], first_fitted=True, margin=0.1) is None


def test_a_rerecorded_version_keeps_its_units_and_takes_the_new_quantiles() -> None:
    old = {"levels": [50.0], "rows": 9, "quantiles": [0.1], "steps": [[0.1]], "units": "target",
           "chained": 3, "held_out": True}  # fmt: skip
    new = rerecorded(old, _errors_of([-1.0, -1.0, -1.0], [1.0, 2.0, 3.0], chained=3))
    assert new == {"levels": [50.0], "rows": 3, "quantiles": [2.0], "units": "target",
                   "chained": 3, "held_out": True}  # fmt: skip
    # a fold's errors from a level model: one-step errors, the record no longer ``chained``
    mixed = rerecorded(old, _errors_of([-1.0, -1.0, -1.0], [1.0, 2.0, 3.0], chained=None))
    assert "chained" not in mixed and mixed["quantiles"] == [2.0]


def _walk_spec(**overrides: object) -> Spec:
    return Spec.model_validate(
        {
            "name": "heldout-walk",
            "partition_by": ["k"],
            "target": "y",
            "features": ["x"],
            "time_column": "t",
            "validation": {"strategy": "kfold", "size": 5, "folds": 3},
            "candidates": [{"estimator": "sklearn.dummy.DummyRegressor"}],
            "intervals": {"levels": [50, 80]},
            **overrides,
        }
    )


def test_naive_chosen_without_a_fold_gives_that_folds_errors() -> None:
    """A random walk with drift: the last value beats the mean on every fold, so every
    fold's errors are naive's own — the same the naive version would record alone."""
    rng = np.random.default_rng(5)
    y = 50 + np.cumsum(1.0 + rng.normal(0, 1, 40))
    X = np.arange(len(y), dtype=np.float64).reshape(-1, 1)
    spec = _walk_spec()
    fitted = fit_partition(X, y, spec, key="k=1", time_ordered=True)
    assert fitted.chosen == "naive" and fitted.intervals is not None
    splits = validation_splits(len(y), spec, key="k=1", time_ordered=True)
    naive = [
        (y[va], naive_baseline("regression", time_ordered=True).fit(take(X, tr), y[tr]).predict(
            take(X, va)))
        for tr, va in splits
    ]  # fmt: skip
    expected = intervals.record(naive, [50, 80], ordered=True)
    assert expected is not None and fitted.intervals["held_out"] is True
    assert fitted.intervals["quantiles"] == expected["quantiles"]


def test_a_candidate_the_metric_rejects_leaves_the_replay_on() -> None:
    """A negative constant has no squared log error: that candidate fails and is left out,
    and the others' errors are still replayed."""
    rng = np.random.default_rng(6)
    y = 10 + rng.gamma(2.0, 1.0, 40)
    X = np.arange(len(y), dtype=np.float64).reshape(-1, 1)
    spec = _walk_spec(
        metric="neg_mean_squared_log_error",
        selection={"naive_candidate": False},
        candidates=[
            {"estimator": "sklearn.dummy.DummyRegressor", "params": {"strategy": "median"}},
            {
                "estimator": "sklearn.dummy.DummyRegressor",
                "params": {"strategy": "constant", "constant": -3.0},
            },
        ],
    )
    fitted = fit_partition(X, y, spec, key="k=1", time_ordered=True)
    assert [r.error is not None for r in fitted.candidates] == [False, True]
    assert fitted.intervals is not None and fitted.intervals.get("held_out") is True


def test_a_global_model_kept_by_its_margin_gives_every_folds_errors(tmp_path: Path) -> None:
    """With a global margin of 99 % no local model clears, the global model is chosen without
    every fold, so each version's record is the one it gets with the global model alone."""
    levels = {"levels": [50, 80]}
    base = walk_spec(target_transform="none", intervals=levels)
    kept = {**base, "selection": {"global_margin": 0.99, "naive_candidate": False}}
    alone = {
        **base,
        "selection": {"naive_candidate": False},
        "candidates": [c for c in base["candidates"] if c.get("scope") == "global"],
    }
    train(kept, walk_panel(), tmp_path / "kept", backend="local")
    train(alone, walk_panel(), tmp_path / "alone", backend="local")
    with Registry.open(tmp_path / "kept") as reg, Registry.open(tmp_path / "alone") as ref:
        keys = [p.key for p in reg.list_partitions(limit=100)]
        for key in keys:
            record = reg.get_version(key).feature_schema["intervals"]
            assert record["held_out"] is True
            assert record == ref.get_version(key).feature_schema["intervals"], key
        # the local model is better somewhere, or the margin proves nothing
        local_wins = [
            key
            for key in keys
            if (local := reg.get_version(key).candidates[0]["score"]) is not None
            and local > reg.get_version(key).score
        ]
    assert local_wins


def test_a_level_models_folds_are_forecasts_where_every_lag_is_past_them() -> None:
    """Folds of 3 consecutive rows, lags ≥ 3: the 3rd row of a fold reads no target of it, so
    its error is a 3-step forecast's, as a differenced model's chained one is."""
    spec = Spec.model_validate(walk_spec(intervals={"levels": [80]}))  # lags [3, 4], size 3
    splits = validation_splits(30, spec, key="k=1", time_ordered=True)
    assert direct_steps(spec, splits, slice(0, 30), ordered=True) == 3
    rows = np.arange(30) + 100  # the kept rows' indexes in a chunk's table
    assert direct_steps(spec, splits, rows, ordered=True) == 3
    # a row dropped inside the last fold: its last row's lag 3 reads a target of the fold
    assert direct_steps(spec, splits, np.r_[rows[:-1], rows[-1] + 1], ordered=True) is None
    # a lag shorter than a fold: one-step errors
    short = Spec.model_validate(walk_spec(lags=[1, 4], intervals={"levels": [80]}))
    assert direct_steps(short, splits, slice(0, 30), ordered=True) is None
    rolling = walk_spec(rolling=[{"lag": 2, "window": 3, "stat": "mean"}])
    assert direct_steps(Spec.model_validate(rolling), splits, slice(0, 30), ordered=True) is None
    # folds not in time order, or rows not known: nothing is known of them
    assert direct_steps(spec, splits, slice(0, 30), ordered=False) is None
    assert direct_steps(spec, splits, None, ordered=True) is None


def test_a_version_of_changes_whose_folds_chose_the_level_grows_only_past_them(
    tmp_path: Path,
) -> None:
    """Level or changes with lags ≥ the fold (direct): a version of changes whose held-out
    choice was a model of the level on some fold kept no ``chained`` and its widths grew as
    √step from the first step (us_employment: 100 % of its test values inside "80 %" bands);
    those errors are 3-step forecasts too, so it grows only past step 3."""
    root = tmp_path / "reg"
    train(walk_spec(intervals={"levels": [80]}), walk_panel(), root, backend="local")
    with Registry.open(root) as reg:
        versions = [reg.get_version(p.key) for p in reg.list_partitions(limit=100)]
    changes = [
        v for v in versions if FeatureSchema.parse(v.feature_schema).transform_kind == "difference"
    ]
    assert changes
    assert [v.feature_schema["intervals"].get("chained") for v in changes] == [3] * len(changes)
    schema = FeatureSchema.parse(changes[0].feature_schema)
    grown = intervals.widths(schema, [80], steps=4)[0] / intervals.widths(schema, [80])[0, 0]
    assert grown.tolist() == pytest.approx([1.0, 1.0, 1.0, (4 / 3) ** 0.5])
