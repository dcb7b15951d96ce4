"""A mean or median ``DummyRegressor``'s validation fits made without scikit-learn
(``constant_fits``) are scikit-learn's fits to the last bit: the same predictions, the same
scores, the same choice — and anything the shortcut does not cover goes to scikit-learn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import noisy_panel, retrained_to_a_tie
from sklearn.dummy import DummyRegressor
from sklearn.metrics import mean_absolute_error

from manymodels.spec import Spec
from manymodels.spec_sections import Candidate
from manymodels.training import constant_fits
from manymodels.training.select import fit_partition
from manymodels.training.splits import validation_splits

DUMMY = "sklearn.dummy.DummyRegressor"


def data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 3))
    y = np.round(rng.gamma(2.0, 3.0, size=rows), 1) + 0.1 * rng.normal(size=rows)
    return X, y


@pytest.mark.parametrize("strategy", ["mean", "median"])
@pytest.mark.parametrize("rows", [1, 2, 7, 50])  # odd and even counts: a median of two values
def test_fold_fits_predict_what_scikit_learn_predicts(strategy: str, rows: int) -> None:
    X, y = data(rows + 4, seed=rows)
    splits = [(np.arange(rows), np.arange(rows, rows + 4)), (np.arange(2, rows + 2), [0, 1])]
    fits = constant_fits.fold_fits(y, splits, [strategy])
    assert fits is not None
    for fit, (tr, va) in zip(fits[0], splits, strict=True):
        theirs = DummyRegressor(strategy=strategy).fit(X[tr], y[tr]).predict(X[va])
        ours = fit.predict(X[va])
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert ours.tobytes() == theirs.tobytes()  # the same bits, not merely close


@pytest.mark.parametrize(
    ("candidate", "grid", "expected"),
    [
        ({"estimator": DUMMY}, [{}], ["mean"]),
        ({"estimator": DUMMY}, [{"strategy": "median"}, {"strategy": "mean"}], ["median", "mean"]),
        ({"estimator": DUMMY, "scale": True}, [{"strategy": "median"}], None),  # a scaler first
        ({"estimator": DUMMY}, [{"strategy": "quantile", "quantile": 0.9}], None),
        ({"estimator": DUMMY}, [{"strategy": "constant", "constant": 3.0}], None),
        ({"estimator": DUMMY}, [{"strategy": "median"}, {"strategy": "bogus"}], None),
        ({"estimator": "sklearn.dummy.DummyClassifier"}, [{"strategy": "prior"}], None),
    ],
)
def test_only_mean_and_median_dummies_take_the_shortcut(
    candidate: dict[str, Any], grid: list[dict[str, Any]], expected: list[str] | None
) -> None:
    assert constant_fits.strategies(Candidate(**candidate), grid) == expected


@pytest.mark.parametrize(
    "target",
    [
        np.array([1.0, np.nan, 3.0, 4.0]),
        np.array([1.0, np.inf, 3.0, 4.0]),
        np.array([1, 2, 3, 4]),  # integers: scikit-learn's own dtype rules apply
    ],
)
def test_targets_scikit_learn_must_judge_go_to_it(target: np.ndarray) -> None:
    splits = [(np.arange(3), np.array([3]))]
    assert constant_fits.fold_fits(target, splits, ["median"]) is None
    assert constant_fits.no_change_fits(target, splits) is None


def test_an_empty_fold_goes_to_scikit_learn() -> None:
    _, y = data(6)
    splits = [(np.arange(0), np.arange(3)), (np.arange(3), np.arange(3, 6))]
    assert constant_fits.fold_fits(y, splits, ["median"]) is None
    assert constant_fits.no_change_fits(y, splits) is None


def test_the_no_change_baseline_predicts_what_scikit_learn_predicts() -> None:
    """A differenced target's naive baseline, ``DummyRegressor(strategy="constant",
    constant=0.0)``: its fold fits made here give scikit-learn's predictions, bit for bit."""
    X, y = data(20, seed=3)
    splits = [(np.arange(10), np.arange(10, 15)), (np.arange(15), np.arange(15, 20))]
    fits = constant_fits.no_change_fits(y - y.mean(), splits)
    assert fits is not None and len(fits) == 2
    for fit, (tr, va) in zip(fits, splits, strict=True):
        baseline = DummyRegressor(strategy="constant", constant=0.0)
        theirs = baseline.fit(X[tr], y[tr]).predict(X[va])
        assert fit.predict(X[va]).tobytes() == theirs.tobytes()


def spec(**validation: Any) -> Spec:
    return Spec.from_dict(
        {
            "name": "dummies",
            "partition_by": ["pid"],
            "target": "y",
            "time_column": "t",
            "features": ["x0", "x1", "x2"],
            "metric": "neg_mean_absolute_error",
            "candidates": [
                {"estimator": DUMMY, "params": {"strategy": ["mean", "median"]}},
            ],
            "validation": validation,
            "selection": {"naive_candidate": False},
            "fallback": {"enabled": False},
        }
    )


@pytest.mark.parametrize(
    "validation",
    [{"strategy": "kfold", "size": 6, "folds": 3}, {"strategy": "last", "size": 8}],
)
def test_selection_scores_each_strategy_as_scikit_learn_fits_score_it(
    validation: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = data(48, seed=3)
    s = spec(**validation)
    splits = validation_splits(len(y), s, key="pid=1")
    expected = {
        strategy: -float(
            np.mean(
                [
                    mean_absolute_error(
                        y[va], DummyRegressor(strategy=strategy).fit(X[tr], y[tr]).predict(X[va])
                    )
                    for tr, va in splits
                ]
            )
        )
        for strategy in ("mean", "median")
    }
    fitted_rows: list[int] = []
    real_fit = DummyRegressor.fit

    def counted(self: DummyRegressor, X: Any, y: Any, *a: Any, **k: Any) -> DummyRegressor:
        fitted_rows.append(len(y))
        return real_fit(self, X, y, *a, **k)

    monkeypatch.setattr(DummyRegressor, "fit", counted)
    fitted = fit_partition(X, y, s, key="pid=1")
    scores = {c.params["strategy"]: c.score for c in fitted.candidates}
    assert scores == expected  # exactly: the same constants, the same metric
    best = max(expected, key=lambda k: expected[k])
    assert fitted.params == {"strategy": best}
    # scikit-learn fitted only the chosen strategy, on every row: the stored model is its own
    assert fitted_rows == [48]
    assert type(fitted.model) is DummyRegressor
    theirs = real_fit(DummyRegressor(strategy=best), X, y)
    assert fitted.model.predict(X).tobytes() == theirs.predict(X).tobytes()


def test_a_target_scikit_learn_rejects_fails_as_scikit_learn_says() -> None:
    """Each grid point fails with scikit-learn's own words (not a score that is not finite,
    which an infinite mean would give had the shortcut taken the target)."""
    X, y = data(48)
    y[5] = np.inf
    with pytest.raises(
        ValueError,
        match=r"all 2 candidate fit\(s\) failed; first: ValueError: Input y contains infinity",
    ):
        fit_partition(X, y, spec(strategy="last", size=8), key="pid=1")


def test_a_retrain_on_the_same_rows_ties_exactly(tmp_path: Path) -> None:
    """The champion, refitted by scikit-learn, against the challenger's constant fits: the
    same median on the same rows scores the same to the last bit, alone or in a top-2 mean
    with a Ridge — a comparison must not promote or keep on rounding."""
    df = noisy_panel(data, ["x0", "x1", "x2"], seed=7)
    s = spec(strategy="kfold", size=6, folds=3).model_dump(mode="json", exclude_none=True)
    s["candidates"] = [
        {"estimator": DUMMY, "params": {"strategy": ["median"]}},
        {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [1e6]}},  # near constant
    ]
    s["selection"] = {"naive_candidate": False, "ensemble": "top2"}
    s["promotion"] = {"policy": "if_better"}
    second = retrained_to_a_tie(s, df, tmp_path / "reg")
    assert len(second) == 6
    assert {v.validation["chosen"] for v in second} & {"ensemble", "candidate"}


def awkward_targets(seed: int) -> list[np.ndarray]:
    """Odd and even lengths of values where a median's bits can go astray: ties, zeros of
    both signs at the middle, subnormals, values whose sum overflows, magnitudes far apart."""
    rng = np.random.default_rng(seed)
    pools = [
        np.array([0.0, -0.0, 1.0, -1.0]),
        np.array([1.7e308, -1.7e308, 5e-324, -5e-324, 0.0, -0.0]),
        np.array([-0.0]),
    ]
    out = []
    for n in (1, 2, 3, 4, 5, 30, 31, 90, 105):
        out.append(rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, size=n))
        out.append(rng.integers(-3, 3, size=n).astype(np.float64))
        out += [rng.choice(pool, size=n) for pool in pools]
    return out


@pytest.mark.parametrize("seed", range(20))
def test_the_median_is_numpys_to_the_bit(seed: int) -> None:
    """``constant_fits.median`` replaced ``np.median`` in every fold fit (~10 µs against ~60):
    the same bits, a middle -0.0 coming out 0.0 as ``np.mean``'s sum from 0.0 makes it."""
    for y in awkward_targets(seed):
        with np.errstate(over="ignore"):
            theirs = np.median(np.reshape(y, (-1, 1)), axis=0)[0]
            ours = constant_fits.median(y.copy())
        assert np.float64(ours).tobytes() == np.float64(theirs).tobytes(), (y, ours, theirs)
