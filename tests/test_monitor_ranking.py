"""``report.ranked`` by ``error`` and ``naive`` puts the partitions flagged ``degraded`` first,
whatever their ratio in that order: a regressor chosen by R² has no validation error in the
units of its live error (R² does not decompose per row), so its live / validation ratio is
undefined — yet beaten by the naive answer it is degraded, and it was listed after every
partition that had a ratio."""

from __future__ import annotations

from manymodels.monitoring.report import PartitionHealth, Thresholds, ranked


def row(
    key: str, metric: str, live: float, validation: float | None, naive: float
) -> PartitionHealth:
    """A partition with 400 rows of actuals, its errors known to their noise (se 0.01)."""
    return PartitionHealth(
        key=key, version=1, metric=metric, trained_at="2026-01-01T00:00:00+00:00",
        model_age_days=1.0, validation_error=validation, live_metric="neg_mean_absolute_error",
        live_rows=400, live_error=live, naive_error=naive,
        error_ratio=None if validation is None else live / validation, naive_ratio=live / naive,
        drift=None, drift_feature=None, sampled_rows=0.0, validation_rows=400,
        live_error_se=0.01, validation_error_se=0.01, naive_error_se=0.01,
    )  # fmt: skip


def test_a_degraded_partition_without_a_ratio_in_that_order_is_still_listed_first() -> None:
    limits = Thresholds()
    r2 = row("a-r2", "r2", live=3.0, validation=None, naive=1.0)  # 3 × naive's error
    fine = row("b-mae", "neg_mean_absolute_error", live=1.2, validation=1.0, naive=2.0)
    worse = row("c-mae", "neg_mean_absolute_error", live=1.4, validation=1.0, naive=2.0)
    assert r2.flags(limits) == ["degraded"] and not fine.flags(limits) + worse.flags(limits)
    assert [r.key for r in ranked([fine, worse, r2], "error", limits)] == [
        "a-r2", "c-mae", "b-mae",
    ]  # fmt: skip
    assert ranked([fine, worse, r2], "naive", limits)[0].key == "a-r2"
