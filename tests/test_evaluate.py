"""Tests for manymodels.evaluate: the promotion policy's decision and its reason."""

from __future__ import annotations

import pytest

from manymodels.evaluate import decide, improvement
from manymodels.spec import Promotion
from manymodels.version_records import Decision

IF_BETTER = Promotion(policy="if_better")
METRIC = "neg_mean_absolute_error"
NAN = float("nan")


def test_a_tie_promotes_the_fresher_model() -> None:
    d = decide(IF_BETTER, metric=METRIC, challenger=-1.0, champion_version=1, champion=-1.0,
               basis="unseen")  # fmt: skip
    assert d.promote and d.improvement == 0.0 and d.basis == "unseen"
    assert d.reason == (
        "promoted: neg_mean_absolute_error -1 vs champion v1 -1 (+0.0%; policy 'if_better' "
        "needs ≥ 0.0%)"
    )


def test_worse_is_kept_and_min_improvement_is_relative() -> None:
    worse = decide(IF_BETTER, metric=METRIC, challenger=-1.1, champion_version=2, champion=-1.0)
    assert not worse.promote and worse.reason.startswith("kept champion:")
    strict = Promotion(policy="if_better", min_improvement=0.1)
    assert not decide(strict, metric=METRIC, challenger=-1.0, champion_version=1,
                      champion=-1.0).promote  # fmt: skip
    assert decide(strict, metric=METRIC, challenger=-0.85, champion_version=1,
                  champion=-1.0).promote  # fmt: skip
    assert improvement(-0.9, -1.0) == pytest.approx(0.1)


def test_the_refit_basis_says_what_was_compared() -> None:
    d = decide(IF_BETTER, metric=METRIC, challenger=-0.5, champion_version=3, champion=-0.8,
               basis="refit")  # fmt: skip
    assert d.promote and d.basis == "refit"
    assert "vs champion v3 refitted on the same training rows (no validation row is newer " in (
        d.reason
    )


def test_an_unscored_champion_is_kept_with_the_cause() -> None:
    d = decide(IF_BETTER, metric=METRIC, challenger=-0.5, champion_version=1, champion=None,
               champion_error="ArtifactCorrupted: artifact x is corrupted")  # fmt: skip
    assert not d.promote
    assert d.reason == (
        "champion v1 could not be evaluated (ArtifactCorrupted: artifact x is corrupted); kept"
    )


@pytest.mark.parametrize(("challenger", "champion"), [(NAN, -0.5), (-0.5, NAN), (NAN, NAN)])
def test_an_undefined_score_is_no_comparison(challenger: float, champion: float) -> None:
    """A metric undefined on the rows compared gave "roc_auc nan vs champion v1 nan (+nan%)";
    such a score compares with nothing."""
    d = decide(IF_BETTER, metric="roc_auc", challenger=challenger, champion_version=1,
               champion=champion)  # fmt: skip
    assert not d.promote
    assert d.reason == "champion v1 could not be evaluated (a score is undefined); kept"


def test_a_refitted_tie_skips_min_improvement_only_for_the_same_method() -> None:
    """The champion refitted on a corrected history ties its own method exactly: promoted
    whatever min_improvement asks. Another method tying exactly (accuracy on a small window)
    is still held to min_improvement."""
    strict = Promotion(policy="if_better", min_improvement=0.05)
    args = {"metric": METRIC, "challenger": -1.0, "champion_version": 1, "champion": -1.0}
    same = decide(strict, **args, basis="refit", same_method=True)  # type: ignore[arg-type]
    assert same.promote and "the same method: the challenger has the corrected rows" in same.reason
    other = decide(strict, **args, basis="refit", same_method=False)  # type: ignore[arg-type]
    assert not other.promote and "needs ≥ 5.0%" in other.reason
    unseen = decide(strict, **args, basis="unseen", same_method=True)  # type: ignore[arg-type]
    assert not unseen.promote


def test_outcome_reads_a_recorded_decision() -> None:
    promotion = Promotion(policy="if_better")
    first = decide(promotion, metric=METRIC, challenger=-1.0, champion_version=None, champion=None)
    better = decide(promotion, metric=METRIC, challenger=-1.0, champion_version=3, champion=-2.0)
    worse = decide(promotion, metric=METRIC, challenger=-2.0, champion_version=3, champion=-1.0)
    recorded = [Decision.parse(d.to_dict()) for d in (first, better, worse)]
    assert recorded == [first, better, worse]
    assert [d.outcome for d in recorded] == ["first", "promoted", "kept"]
