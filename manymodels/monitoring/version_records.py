"""Reads of one version's JSON columns for many production partitions: the validation
record (held-out rows, a classifier's error rate) and the feature schema (the data's age).

Apart from the report because these are the monitor's only reads of wide columns, and each
must stay bounded at 100,000 partitions: batched by ``PAIRS`` and filtered by (key, version)
so a partition retrained daily for a year costs one row, not 365.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, select

from manymodels.registry import schema as t
from manymodels.registry.engine import batches

PAIRS = 250  # (key, version) pairs per read: their keys and versions, two IN lists, ≤ 500 values


def validation_records(
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
            q = select(v.key, v.version, v.validation_json).where(*these(chunk))
            for key, version, raw in conn.execute(q):
                if (key, version) in wanted:
                    out[key, version] = record_of(raw)
    return out


def these(pairs: Iterable[tuple[str, int]]) -> tuple[Any, Any]:
    """A ``model_versions`` filter on ``pairs``' keys and versions, for reads of one version
    of each key (its JSON columns): by key alone it read every version of each — a partition
    retrained daily for a year, 365 feature schemas (profiles) to show one — while
    production's versions are a handful of numbers, probed along (key, version)'s unique
    index. What it lets through beyond ``pairs`` (another key's version number) is dropped
    by the caller."""
    pairs = list(pairs)
    v = t.model_versions.c
    return v.key.in_(sorted({k for k, _ in pairs})), v.version.in_(sorted({n for _, n in pairs}))


def record_of(raw: str | None) -> tuple[int | None, float | None]:
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
