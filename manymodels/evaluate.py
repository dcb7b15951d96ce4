"""Champion vs challenger: does a retrained version replace the one in production?

Both are scored on the *same* validation rows of the new data, so the comparison is like for
like. The challenger is scored as fitted on the training rows. The champion is scored as it is
in production on the validation rows it never saw (basis ``unseen``); when none of them is newer
than its training data (a corrected history, or the same data again), its estimator and
parameters are refitted on the challenger's training rows instead (basis ``refit``): scoring it
as it is would grade it on its own training rows. The spec's promotion policy turns the two
scores into a ``Decision`` whose reason is recorded with the version and in the alias history.
"""

from __future__ import annotations

import math

from manymodels.spec import Promotion
from manymodels.version_records import Basis, Decision


def improvement(challenger: float, champion: float) -> float:
    """Relative gain of the challenger (scores are "greater is better": 0.1 = 10 % better)."""
    if champion == challenger:
        return 0.0
    if champion == 0:
        return math.copysign(math.inf, challenger - champion)
    return (challenger - champion) / abs(champion)


def decide(
    promotion: Promotion,
    *,
    metric: str,
    challenger: float,
    champion_version: int | None,
    champion: float | None,
    champion_error: str | None = None,
    basis: Basis | None = None,
    same_method: bool = False,
) -> Decision:
    """Apply the policy; every outcome carries a reason a person can read.

    A tie promotes (unless ``min_improvement`` asks for more): scored on the same rows, the
    challenger's method is then as good as the champion's, and the challenger is fitted on the
    newer (or corrected) data. A consumer posting exactly ``size`` new rows gets such a tie
    whenever the same candidate wins: the challenger's validation fit is trained on the very
    rows the champion was, and a strict "better" kept the stale champion forever. A champion
    refitted on the challenger's rows (basis ``refit``) that is the challenger's own method
    (``same_method``) and ties exactly promotes whatever ``min_improvement`` says, or a
    corrected history would never replace the model trained on the wrong one.
    """

    def verdict(promote: bool, reason: str, gain: float | None = None) -> Decision:
        return Decision(
            promote, reason, promotion.policy, challenger, champion_version, champion, gain,
            basis,
        )  # fmt: skip

    if champion_version is None:
        return verdict(True, "first version")
    if promotion.policy == "always":
        return verdict(True, "policy 'always'")
    if promotion.policy == "manual":
        return verdict(False, "policy 'manual': awaiting promotion")
    if champion is None or math.isnan(champion) or math.isnan(challenger):
        why = champion_error or ("no score" if champion is None else "a score is undefined")
        return verdict(False, f"champion v{champion_version} could not be evaluated ({why}); kept")
    gain = improvement(challenger, champion)
    needed = promotion.min_improvement
    refit = basis == "refit"
    # Refitted on the challenger's rows, the challenger's own estimator and parameters: only
    # the rows differ (a corrected history), and min_improvement would keep the stale model
    # for ever on the tie that follows
    same = refit and same_method and challenger == champion
    better = challenger >= champion and (gain >= needed or same)
    what = (
        f"champion v{champion_version} refitted on the same training rows (no validation row "
        "is newer than its training data)"
        if refit
        else f"champion v{champion_version}"
    )
    rule = (
        "the same method: the challenger has the corrected rows"
        if same and gain < needed
        else f"policy 'if_better' needs ≥ {needed:.1%}"
    )
    return verdict(
        better,
        f"{'promoted' if better else 'kept champion'}: {metric} {challenger:.6g} vs {what} "
        f"{champion:.6g} ({gain:+.1%}; {rule})",
        gain,
    )
