"""What the monitor says of one partition: its production version's numbers
(``PartitionHealth``), the limits they are judged by (``Thresholds``) and the judgements
(drifted, degraded, stale) ``retrain --when`` acts on, and ``unseen``, which it does not.

Apart from the report, which reads the registry to build these rows: the judgements read
the row alone, no query per partition, and are what tests and the dashboard call directly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from manymodels.monitoring import evidence


@dataclass(frozen=True)
class Thresholds:
    """When a partition counts as drifted, degraded or stale (``retrain --when``)."""

    drift: float = 0.25
    """Drift score of its worst feature (PSI less its sampling noise, where significant:
    ``profile``): > 0.25 is a major shift by the usual convention."""
    error_ratio: float = 1.5
    """Live error over validation error."""
    naive_ratio: float = 1.0
    """Live error over the naive answer's on the same rows: above 1, naive does better."""
    min_actuals: int = 20
    """Rows of actuals needed before live accuracy counts."""
    confidence: float = 0.95
    """Degraded: how sure (one-sided) that the live error is above ``error_ratio`` ×
    validation's, or ``naive_ratio`` × naive's, and not the noise of few rows
    (``monitoring.evidence``)."""
    max_age_days: float = 30.0
    """Model age (since its version was trained)."""
    max_data_age_days: float | None = None
    """Age of its newest training row (a time column's dates only)."""
    unseen: float = 0.05
    """Unseen: share of sampled rows whose value of a text feature no training row had
    (``monitoring.unseen``; from ``MIN_DRIFT_ROWS`` such rows on, as drift). Not a retrain
    trigger: it tells that requests carry new categories."""


@dataclass(frozen=True)
class PartitionHealth:
    """One partition's production version as the monitor sees it."""

    key: str
    version: int
    metric: str
    trained_at: str
    model_age_days: float
    validation_error: float | None
    live_metric: str
    live_rows: int
    live_error: float | None
    naive_error: float | None
    error_ratio: float | None
    naive_ratio: float | None
    drift: float | None
    drift_feature: str | None
    sampled_rows: float
    data_time: Any = None
    data_age_days: float | None = None
    label_error: float | None = None  # a [decision] classifier's labels at its threshold
    validation_rows: int | None = None
    """Held-out rows the validation error was measured on (read only when it can matter)."""
    live_error_se: float | None = None
    validation_error_se: float | None = None
    naive_error_se: float | None = None
    """Standard errors of the three errors (``monitoring.evidence``): what ``degraded``
    weighs the ratios against."""
    unseen_share: float | None = None
    unseen_feature: str | None = None
    unseen_rows: float = 0.0
    """The worst text feature's share of sampled rows with a value its training rows never
    had, and the rows it is of (``monitoring.unseen.with_unseen``, read for rows shown);
    ``None`` when no text feature's training values are all known or too few were sampled."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: a non-finite ratio (an error against a perfect one) is ``None``; with
        ``unseen_reason``, the unseen share as ``manymodels monitor`` words it."""
        out = {
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in asdict(self).items()
        }
        return {**out, "unseen_reason": self.unseen_reason()}

    def unseen_reason(self) -> str | None:
        """``unseen values in 'promo': 12 % of 64 sampled rows``, or ``None`` (not judged)."""
        share, feature = self.unseen_share, self.unseen_feature
        if share is None or feature is None:
            return None
        percent = f"{share * 100:.0f}" if share == 0 or share >= 0.01 else f"{share * 100:.1g}"
        return f"unseen values in '{feature}': {percent} % of {self.unseen_rows:.0f} sampled rows"

    def degraded(self, limits: Thresholds) -> bool:
        """The live error is above ``error_ratio`` × validation's, or ``naive_ratio`` ×
        naive's, by more than its and their noise at ``limits.confidence``."""
        z = evidence.z_of(limits.confidence)
        live, se = self.live_error, self.live_error_se
        return evidence.worse(
            live, se, self.validation_error, self.validation_error_se,
            ratio=limits.error_ratio, z=z,
        ) or (self.naive_is_a_bar and evidence.worse(
            live, se, self.naive_error, self.naive_error_se,
            ratio=limits.naive_ratio, z=z, strict=True,
        ))  # fmt: skip

    @property
    def naive_is_a_bar(self) -> bool:
        """Whether the naive answer's live error is one this model was chosen to beat: not
        for a classifier chosen by another metric than accuracy, whose live error is the
        error rate of its most probable class — a model chosen by balanced accuracy (or F1,
        ROC AUC) on rare positives answers the rare class more often than the majority
        class does, and is wrong more often by design (9 of 10 such partitions were flagged
        on actuals like their training rows). Its validation error rate is its bar."""
        return not (self.live_metric == "accuracy" and self.metric != "accuracy")

    def note(self, limits: Thresholds) -> str | None:
        """Why this partition cannot be flagged ``degraded`` whatever its actuals say, or
        ``None``: a classifier chosen by another metric than accuracy is held to its
        validation error rate only (``naive_is_a_bar``), and a version trained before that
        rate was recorded (``validation.error_rate``) has none — it was silently never
        flagged. Read from the row alone: no query per partition."""
        if self.live_rows < limits.min_actuals or self.naive_is_a_bar:
            return None
        if self.validation_error is not None:
            return None
        if self.validation_rows == 0:  # a constant of a partition below min_rows (small.py)
            return (
                "not judged degraded: a constant-probability model of a partition below "
                "min_rows, which had no rows to validate on (it gets a model with more rows)"
            )
        return (
            f"not judged degraded: a classifier chosen by {self.metric}, trained before its "
            "validation error rate was recorded (retrain it to record one)"
        )

    def flags(self, limits: Thresholds) -> list[str]:
        """Which triggers this partition meets."""
        out = []
        if self.drift is not None and self.drift >= limits.drift:
            out.append("drifted")
        if self.unseen_share and self.unseen_share >= limits.unseen:
            out.append("unseen")
        if self.live_rows >= limits.min_actuals and self.degraded(limits):
            out.append("degraded")
        old_data = (
            limits.max_data_age_days is not None
            and self.data_age_days is not None
            and self.data_age_days >= limits.max_data_age_days
        )
        if self.model_age_days >= limits.max_age_days or old_data:
            out.append("stale")
        return out
