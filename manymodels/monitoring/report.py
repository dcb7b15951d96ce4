"""The monitor: every partition in production with its drift, live accuracy and age, worst
first, and the partitions a triggered retrain (``retrain --when``) selects from it.

One pass over the production aliases (key, version, metric, score, created) joined in memory
with the drift rows and the live sums: small columns only, so 100,000 partitions cost one
query each and well under a second of Python. The data age needs the version's profile (in
its feature schema), so it is read only for the partitions shown, and for all of them only
when staleness by data age is asked for.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Engine, and_, select

from manymodels.feature_schema import FeatureSchema
from manymodels.keys import FALLBACK_KEY
from manymodels.monitoring import evidence, store
from manymodels.monitoring.live import (
    label_error,
    live_error,
    live_metric,
    ratio,
    validation_error,
)
from manymodels.registry import pg_silence
from manymodels.registry import schema as t
from manymodels.registry.engine import batches
from manymodels.stamps import seconds_between

PAIRS = 250  # (key, version) pairs per read: their keys and versions, two IN lists, ≤ 500 values
SortBy = Literal["drift", "error", "naive", "age", "key"]
Trigger = Literal["drifted", "stale", "degraded", "changed"]
SORTS: tuple[str, ...] = ("drift", "error", "naive", "age", "key")
CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1", "roc_auc", "precision",
                          "recall", "neg_log_loss", "average_precision")  # fmt: skip


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: a non-finite ratio (an error against a perfect one) is ``None``."""
        return {
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in asdict(self).items()
        }

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


def health(
    engine: Engine, *, at: datetime | None = None, keys: Sequence[str] | None = None
) -> list[PartitionHealth]:
    """Every partition in production (not the fallback), unsorted, without data ages; with
    ``keys``, only those (read by key: a partition page's health row costs a few lookups)."""
    at = at or datetime.now(UTC)
    a, v = t.aliases.c, t.model_versions.c
    q = (
        select(a.key, a.version, v.metric, v.score, v.created_at)
        .join(t.model_versions, and_(v.key == a.key, v.version == a.version))
        .where(and_(a.alias == "production", a.key != FALLBACK_KEY))
    )
    with engine.connect() as conn:
        if keys is None:
            production = conn.execute(q).all()
        else:
            production = [
                r for chunk in batches(keys) for r in conn.execute(q.where(a.key.in_(chunk)))
            ]
    drifts = store.drift_rows(engine, keys)
    sums = store.live_sums(engine, None if keys is None else [(r[0], r[1]) for r in production])
    held_out = _validation_records(
        engine, [(r[0], r[1]) for r in production if (r[0], r[1]) in sums]
    )
    out = []
    for key, version, metric, score, created in production:
        d = drifts.get(key)
        if d is not None and d.version != version:
            d = None  # sampled from a version production no longer points at
        live = sums.get((key, version))
        task = _task(metric, live[0] if live else None)
        name = live_metric(metric, task)
        err = naive = labels = err_se = naive_se = None
        rows = 0
        n_val, val_rate = held_out.get((key, version), (None, None))
        val = validation_error(metric, score) if name == metric else None
        if val is None and name == "accuracy":  # another classification metric: its error rate
            val = val_rate
        if live is not None:
            rows = live[0].rows
            err = live_error(metric, task, live[0])
            naive = live_error(metric, task, live[0], naive=True)
            labels = label_error(task, live[0])
            err_se = _se(evidence.live_spread(name, live[0]), rows)
            naive_se = _se(evidence.live_spread(name, live[0], naive=True), rows)
        out.append(
            PartitionHealth(
                key=key,
                version=version,
                metric=metric,
                trained_at=created,
                model_age_days=_days(at, created) or 0.0,
                validation_error=val,
                live_metric=name,
                live_rows=rows,
                live_error=err,
                naive_error=naive,
                error_ratio=ratio(err, val),
                naive_ratio=ratio(err, naive),
                drift=d.score if d else None,
                drift_feature=d.feature if d else None,
                sampled_rows=round(d.rows, 1) if d else 0.0,
                label_error=labels,
                validation_rows=n_val,
                live_error_se=err_se,
                validation_error_se=evidence.validation_se(
                    name, val, n_val, live[0] if live else None
                ),
                naive_error_se=naive_se,
            )
        )
    return out


def _se(spread: float | None, rows: int) -> float | None:
    return None if spread is None or rows <= 0 else spread / math.sqrt(rows)


def _validation_records(
    engine: Engine, pairs: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], tuple[int | None, float | None]]:
    """The held-out rows of each version of ``pairs`` and, for a classifier, the error rate of
    its most probable class on them (its validation record's ``rows`` and ``error_rate``):
    read for the versions with actuals only, whose ``degraded`` weighs the validation error's
    noise (``monitoring.evidence``) — one small JSON column, batched by key."""
    v = t.model_versions.c
    wanted = set(pairs)
    out: dict[tuple[str, int], tuple[int | None, float | None]] = {}
    with engine.connect() as conn:
        for chunk in batches(sorted(wanted), PAIRS):
            q = select(v.key, v.version, v.validation_json).where(*_these(chunk))
            for key, version, raw in conn.execute(q):
                if (key, version) in wanted:
                    out[key, version] = _record_of(raw)
    return out


def _these(pairs: Iterable[tuple[str, int]]) -> tuple[Any, Any]:
    """A ``model_versions`` filter on ``pairs``' keys and versions, for reads of one version
    of each key (its JSON columns): by key alone it read every version of each — a partition
    retrained daily for a year, 365 feature schemas (profiles) to show one — while
    production's versions are a handful of numbers, probed along (key, version)'s unique
    index. What it lets through beyond ``pairs`` (another key's version number) is dropped
    by the caller."""
    pairs = list(pairs)
    v = t.model_versions.c
    return v.key.in_(sorted({k for k, _ in pairs})), v.version.in_(sorted({n for _, n in pairs}))


def _record_of(raw: str | None) -> tuple[int | None, float | None]:
    try:
        record = json.loads(raw or "{}")
    except ValueError:
        return None, None
    if not isinstance(record, dict):
        return None, None
    rows: Any = record.get("rows")
    rate: Any = record.get("error_rate")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        rows = None  # 0: none held out (``training.small``'s constant), which ``note`` says
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
        rate = None  # NaN fails the range too
    return rows, None if rate is None else float(rate)


def _task(metric: str, sums: Any) -> str:
    """The versions table keeps the metric, not the task: a classification scorer, or wrong
    answers counted, mean classification (a perfect score reads the same either way)."""
    known = _classifies(metric)
    if known is not None:
        return "classification" if known else "regression"
    if sums is not None and sums.wrong + sums.naive_wrong:
        return "classification"
    return "regression"


REGRESSION_METRICS = ("neg_mean_absolute_error", "neg_mean_squared_error", "r2",
                      "neg_root_mean_squared_error", "neg_mean_absolute_percentage_error",
                      "neg_median_absolute_error", "explained_variance")  # fmt: skip


@functools.cache
def _classifies(metric: str) -> bool | None:
    """Whether ``metric`` scores classifiers, ``None`` when it is no scikit-learn scorer.
    Only the common names were known: a classifier chosen by any other scorer the spec
    accepts (``f1_macro``, ``roc_auc_ovr``, the ``neg_brier_score`` a ``fallback_metric``
    records) read as a regression whenever its most probable class and the naive answer were
    both right on every actual — its labels at a ``[decision]`` threshold then counted as a
    mean absolute error against naive's 0, and flagged ``degraded``. Asked of scikit-learn
    once per metric name: where its scoring function lives (``_regression`` or not)."""
    if metric in CLASSIFICATION_METRICS:
        return True
    if metric in REGRESSION_METRICS:
        return False
    try:
        from sklearn.metrics import get_scorer

        scorer = get_scorer(metric)
    except (ImportError, ValueError):
        return None
    module = getattr(getattr(scorer, "_score_func", None), "__module__", None)
    return None if module is None else not module.endswith("._regression")


def ranked(
    rows: Iterable[PartitionHealth], by: str = "drift", limits: Thresholds | None = None
) -> list[PartitionHealth]:
    """Worst first by ``by``: drift, live error over validation (``error``), over naive
    (``naive``), model ``age``; unknown values last. ``key`` sorts by key.

    ``error`` and ``naive`` put the partitions flagged ``degraded`` (at ``limits``) first,
    then the rest, each by its ratio: the raw ratio ranked a partition of three actuals and
    an infinite ratio (against a perfect validation) above every degraded one, although its
    live error is noise the degraded test (``monitoring.evidence``) does not flag."""
    if by == "key":
        return sorted(rows, key=lambda r: r.key)
    if by not in SORTS:
        raise ValueError(f"sort by one of {', '.join(SORTS)}, not {by!r}")
    limits = limits or Thresholds()
    by_flag = by in ("error", "naive")

    def worst(r: PartitionHealth) -> tuple[bool, bool, float, str]:
        value = {"drift": r.drift, "error": r.error_ratio, "naive": r.naive_ratio,
                 "age": r.model_age_days}[by]  # fmt: skip
        flagged = by_flag and r.live_rows >= limits.min_actuals and r.degraded(limits)
        # flagged first even without a ratio in this order (an R² regressor has no
        # validation error per row, yet is degraded when naive beats it): it came after
        # every partition with a ratio
        return (not flagged, value is None, -(value if value is not None else 0.0), r.key)

    return sorted(rows, key=worst)


def with_data_age(
    engine: Engine, rows: Sequence[PartitionHealth], *, at: datetime | None = None
) -> list[PartitionHealth]:
    """``rows`` with the newest training time of each version (its profile) and its age."""
    at = at or datetime.now(UTC)
    v = t.model_versions.c
    times: dict[tuple[str, int], Any] = {}
    with engine.connect() as conn:
        for chunk in batches(list(rows), PAIRS):
            wanted = {(r.key, r.version) for r in chunk}
            q = select(v.key, v.version, v.feature_schema_json).where(*_these(wanted))
            for key, version, schema in conn.execute(q):
                if (key, version) in wanted:
                    profile = FeatureSchema.from_json(schema).profile or {}
                    times[(key, version)] = profile.get("last_time")
    out = []
    for r in rows:
        when = times.get((r.key, r.version))
        out.append(replace(r, data_time=when, data_age_days=_days(at, when)))
    return out


def select_keys(
    rows: Sequence[PartitionHealth], when: Iterable[str], limits: Thresholds
) -> list[str]:
    """Keys meeting any of ``when`` (drifted, degraded, stale), worst drift first."""
    wanted = set(when)
    return [r.key for r in ranked(rows) if wanted & set(r.flags(limits))]


def _days(at: datetime, when: Any) -> float | None:
    """Days from ``when`` (ISO text) to ``at``; ``None`` for a period number or bad text."""
    seconds = seconds_between(at, when)
    return None if seconds is None else seconds / 86400.0


def flagged(registry: Any, when: Iterable[str], limits: Thresholds) -> list[str]:
    """The keys of ``registry`` (a ``Registry``) meeting any of ``when`` (drifted, degraded,
    stale), worst drift first: what ``retrain --when`` and a ``[schedule] when`` retrain.
    Their whole-table reads are silent until answered (seconds at 100,000s of partitions):
    not a request, they wait as long as PostgreSQL says it is at work on them
    (``pg_silence.long_statements``)."""
    wanted = set(when)
    with pg_silence.long_statements():
        rows = health(registry.store.engine)
        if "stale" in wanted and limits.max_data_age_days is not None:
            rows = with_data_age(registry.store.engine, rows)
    return select_keys(rows, wanted, limits)
