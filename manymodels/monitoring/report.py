"""The monitor: every partition in production with its drift, live accuracy and age, worst
first, and the partitions a triggered retrain (``retrain --when``) selects from it.

One pass over the production aliases (key, version, metric, score, created) joined in memory
with the drift rows and the live sums: small columns only, so 100,000 partitions cost one
query each and well under a second of Python. The data age needs the version's profile (in
its feature schema), so it is read only for the partitions shown, and for all of them only
when staleness by data age is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
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
from manymodels.monitoring.metric_task import task_of
from manymodels.monitoring.partition_health import PartitionHealth, Thresholds
from manymodels.monitoring.version_records import PAIRS, these, validation_records
from manymodels.registry import pg_silence
from manymodels.registry import schema as t
from manymodels.registry.engine import batches
from manymodels.stamps import seconds_between

SortBy = Literal["drift", "error", "naive", "age", "key"]
Trigger = Literal["drifted", "stale", "degraded", "changed"]
SORTS: tuple[str, ...] = ("drift", "error", "naive", "age", "key")


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
    held_out = validation_records(
        engine, [(r[0], r[1]) for r in production if (r[0], r[1]) in sums]
    )
    out = []
    for key, version, metric, score, created in production:
        d = drifts.get(key)
        if d is not None and d.version != version:
            d = None  # sampled from a version production no longer points at
        live = sums.get((key, version))
        task = task_of(metric, live[0] if live else None)
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
            q = select(v.key, v.version, v.feature_schema_json).where(*these(wanted))
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
