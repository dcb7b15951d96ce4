"""Champion vs challenger: does a retrained version replace the one in production?

Both are scored on the *same* validation rows of the new data — the challenger as fitted on the
training rows, the champion as it is in production — so the comparison is like for like. The
spec's promotion policy turns the two scores into a ``Decision`` whose reason is recorded with
the version and in the alias history.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from manymodels.spec import Promotion


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    policy: str
    challenger_score: float
    champion_version: int | None = None
    champion_score: float | None = None
    improvement: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
) -> Decision:
    """Apply the policy; every outcome carries a reason a person can read."""

    def verdict(promote: bool, reason: str, gain: float | None = None) -> Decision:
        return Decision(
            promote, reason, promotion.policy, challenger, champion_version, champion, gain
        )

    if champion_version is None:
        return verdict(True, "first version")
    if promotion.policy == "always":
        return verdict(True, "policy 'always'")
    if promotion.policy == "manual":
        return verdict(False, "policy 'manual': awaiting promotion")
    if champion is None:
        why = champion_error or "no score"
        return verdict(False, f"champion v{champion_version} could not be evaluated ({why}); kept")
    gain = improvement(challenger, champion)
    needed = promotion.min_improvement
    better = challenger > champion and gain >= needed
    return verdict(
        better,
        f"{'promoted' if better else 'kept champion'}: {metric} {challenger:.6g} vs champion "
        f"v{champion_version} {champion:.6g} ({gain:+.1%}; policy 'if_better' needs > 0 "
        f"and ≥ {needed:.1%})",
        gain,
    )
