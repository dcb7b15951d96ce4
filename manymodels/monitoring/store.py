"""The monitoring tables (``registry.schema.monitor_drift`` / ``monitor_actuals``): reads and
writes by key, each write one transaction that touches only the partitions it names.

Storage is bounded per partition: one drift row (bin counts decayed by ``HALF_LIFE_DAYS`` as
samples are added, so recent traffic weighs most and the row never grows), and at most
``live.WINDOWS`` day rows of actuals per version. Two routers adding samples of one partition
at once are serialised by the write transaction (SQLite's write lock; a row lock elsewhere).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, insert, select, update

from manymodels.keys import FALLBACK_KEY
from manymodels.monitoring import counted
from manymodels.monitoring.drift import MIN_DRIFT_ROWS, drift
from manymodels.monitoring.live import WINDOWS, ErrorSums
from manymodels.registry import schema as t
from manymodels.registry.engine import WriteTransaction, batches, now
from manymodels.registry.reads import pairs_in

HALF_LIFE_DAYS = 7.0
"""Sampled counts lose half their weight per week: drift reflects recent traffic."""
FEATURE_CHARS = t.FEATURE_CHARS
"""The longest drift feature name a row holds: PostgreSQL refuses a longer value (SQLite
ignores a column's length), and one refused row failed the flush of every partition with it."""
RECENT = 64
"""Actuals kept as points per day window (time, actual, the version's prediction), for the
dashboard's forecast-vs-actual chart: bounded like the sums, never one row per prediction."""

Point = tuple[Any, Any, Any]  # (time or None, actual, prediction)


def _decode(raw: str | None) -> tuple[Any, list[Any]]:
    """``last_actual``'s JSON: ``{"last": …, "recent": [[time, actual, prediction], …]}``, or
    a bare value as written before points were kept (no points then)."""
    if raw is None:
        return None, []
    value = json.loads(raw)
    if isinstance(value, dict) and "recent" in value:  # an actual itself is never an object
        return value.get("last"), list(value["recent"])
    return value, []


@dataclass(frozen=True)
class Sample:
    """Bin counts of rows one router scored with one version since its last flush."""

    key: str
    version: int
    rows: int
    counts: dict[str, list[int]]
    profile: Mapping[str, Any]


@dataclass(frozen=True)
class DriftRow:
    key: str
    version: int
    rows: float
    score: float | None
    feature: str | None
    updated_at: str


def _decay(since: str, stamp: str) -> float:
    try:
        days = (datetime.fromisoformat(stamp) - datetime.fromisoformat(since)).total_seconds()
    except ValueError:
        return 1.0
    return 0.5 ** (max(days, 0.0) / 86400.0 / HALF_LIFE_DAYS)


def add_samples(engine: Engine, samples: Sequence[Sample]) -> None:
    """Fold samples into each partition's drift row and score it, in one transaction. A row
    of another version (production moved) is replaced: drift is against the serving version.

    A partition has one drift row, so of several samples of one key (a router that scored two
    versions of it since its last flush: a promotion, then a rollback) the last one counts;
    the caller puts the version it serves last. Two inserts of one key failed the whole
    flush on the table's unique key."""
    samples = list({s.key: s for s in samples}.values())
    d = t.monitor_drift.c
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    with WriteTransaction(engine) as conn:
        stamp = now()
        for chunk in batches(samples):
            found = {
                row.key: row
                for row in conn.execute(
                    select(d.key, d.version, d.rows, d.counts_json, d.updated_at).where(
                        d.key.in_([s.key for s in chunk])
                    )
                )
            }
            for s in chunk:
                old = found.get(s.key)
                rows = float(s.rows)
                counts: dict[str, list[float]] = {
                    f: [float(c) for c in v] for f, v in s.counts.items()
                }
                if old is not None and old.version == s.version:
                    w = _decay(old.updated_at, stamp)
                    rows += old.rows * w
                    for f, prev in json.loads(old.counts_json).items():
                        mine = counts.get(f)
                        if mine is None or len(mine) != len(prev):
                            counts[f] = [c * w for c in prev] if mine is None else mine
                        else:
                            counts[f] = [a + b * w for a, b in zip(mine, prev, strict=True)]
                score, feature = (
                    drift(s.profile, counts) if rows >= MIN_DRIFT_ROWS else (None, None)
                )
                values = {
                    "version": s.version,
                    "rows": rows,
                    "counts_json": json.dumps(counts),
                    "score": score,
                    "feature": _shown(feature) if feature else None,
                    "updated_at": stamp,
                }
                if old is None:
                    inserts.append({"key": s.key, **values})
                else:
                    updates.append({"k": s.key, **{f"new_{k}": v for k, v in values.items()}})
        # one statement per kind, many rows each: a flush of 2,000 partitions is two round trips
        if inserts:
            conn.execute(insert(t.monitor_drift), inserts)
        if updates:
            columns = ("version", "rows", "counts_json", "score", "feature", "updated_at")
            conn.execute(
                update(t.monitor_drift)
                .where(d.key == bindparam("k"))
                .values({c: bindparam(f"new_{c}") for c in columns}),
                updates,
            )


def _shown(name: str) -> str:
    """A feature's name as its drift row holds it: cut to ``FEATURE_CHARS`` with a final
    "…" when longer. The row only names the feature for a person (``monitor``, the
    dashboard); widening the column would make every process sharing the registry upgrade
    together for a label."""
    return name if len(name) <= FEATURE_CHARS else name[: FEATURE_CHARS - 1] + "…"


def drift_rows(engine: Engine, keys: Sequence[str] | None = None) -> dict[str, DriftRow]:
    d = t.monitor_drift.c
    q = select(d.key, d.version, d.rows, d.score, d.feature, d.updated_at)
    out: dict[str, DriftRow] = {}
    with engine.connect() as conn:
        for chunk in [None] if keys is None else batches(keys):
            where = q if chunk is None else q.where(d.key.in_(chunk))
            for row in conn.execute(where):
                out[row.key] = DriftRow(*row)
    return out


def previous_actual(engine: Engine, key: str, version: int) -> Any:
    """The last actual recorded for a version (JSON-decoded), or ``None``."""
    a = t.monitor_actuals.c
    q = (
        select(a.last_actual)
        .where(and_(a.key == key, a.version == version))
        .order_by(a.day.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        raw = conn.execute(q).scalar()
    return _decode(raw)[0]


def previous_actuals(
    engine: Engine, pairs: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], Any]:
    """``previous_actual`` of many versions in batched queries (the day rows of a version are
    at most ``live.WINDOWS``): those without one are left out."""
    a = t.monitor_actuals.c
    newest: dict[tuple[str, int], tuple[str, str | None]] = {}
    with engine.connect() as conn:
        for batch in batches(list(dict.fromkeys(pairs))):
            q = select(a.key, a.version, a.day, a.last_actual).where(pairs_in(a, batch))
            for key, version, day, raw in conn.execute(q):
                seen = newest.get((key, version))
                if seen is None or day > seen[0]:
                    newest[key, version] = (day, raw)
    wanted = set(pairs)
    return {p: _decode(raw)[0] for p, (_, raw) in newest.items() if p in wanted}


def recent_actuals(engine: Engine, key: str, version: int, limit: int = RECENT) -> list[Point]:
    """The newest ``limit`` actual points of a version (oldest first): what the dashboard
    draws against the forecast. Reads the version's kept day rows by primary key."""
    a = t.monitor_actuals.c
    q = select(a.last_actual).where(and_(a.key == key, a.version == version))
    points: list[Point] = []
    with engine.connect() as conn:
        for raw in conn.execute(q.order_by(a.day.desc())).scalars():
            points = [(p[0], p[1], p[2]) for p in _decode(raw)[1]] + points
            if len(points) >= limit:
                break
    return points[-limit:]


_SUMS = (
    "rows",
    "abs_error",
    "sq_error",
    "wrong",
    "naive_abs_error",
    "naive_sq_error",
    "naive_wrong",
)

Batch = (
    tuple[str, int, ErrorSums, Any, Sequence["Point"]]
    | tuple[str, int, ErrorSums, Any, Sequence["Point"], Sequence[str]]
)
"""One partition's actuals: ``(key, version, sums, last actual, points)``, and the digests
of the rows counted (``monitoring.counted``) when its caller told them apart."""


def last_of(raw: str | None) -> Any:
    """The last actual a window's ``last_actual`` JSON holds (``None``: none)."""
    return _decode(raw)[0]


def add_many_actuals(engine: Engine, day: str, batches_: Sequence[Batch]) -> None:
    """``write_actuals`` in a write transaction of its own."""
    with WriteTransaction(engine) as conn:
        write_actuals(conn, day, batches_)


def write_actuals(conn: Connection, day: str, batches_: Sequence[Batch]) -> None:
    """Add each partition's batch (its error sums, its newest ``RECENT`` points and the
    digests of its rows) to its window of ``day`` and drop windows past the newest ``WINDOWS``
    of its version, in the caller's write transaction: a file of actuals is recorded whole or
    not at all, so a command killed half-way and run again counts no row twice. Its
    statements are batched — one read of the day's windows, one insert and one update of many
    rows, one count of windows per ``engine.BATCH`` partitions — so the write lock is held for
    milliseconds per thousand partitions, not 3–4 statements each (20,000 partitions held it
    15 s, and every other writer waited)."""
    a = t.monitor_actuals.c
    merged: dict[tuple[str, int], list[Any]] = {}
    for key, version, sums, last_actual, points, *told in batches_:  # a pair twice: one row
        rows = told[0] if told else ()
        seen = merged.get((key, version))
        if seen is None:
            merged[key, version] = [sums, last_actual, [list(p) for p in points], list(rows)]
        else:
            seen[0] = seen[0] + sums
            seen[1] = last_actual
            seen[2] += [list(p) for p in points]
            seen[3] += list(rows)
    pairs = list(merged)
    stamp = now()
    held: dict[tuple[str, int], Any] = {}
    for chunk in batches(pairs):
        q = select(a.key, a.version, *(a[n] for n in _SUMS), a.counted, a.last_actual).where(
            a.day == day, pairs_in(a, chunk)
        )
        wanted = set(chunk)
        for found in conn.execute(q):
            if (found[0], found[1]) in wanted:
                held[found[0], found[1]] = found
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for pair, (sums, last_actual, points, rows) in merged.items():
        row = held.get(pair)
        total = sums if row is None else sums + from_row(row[2 : 2 + len(_SUMS)])
        values: dict[str, Any] = dict(zip(_SUMS, total.astuple(), strict=True))
        kept = ([] if row is None else _decode(row[-1])[1]) + points
        stored = {"last": last_actual, "recent": kept[-RECENT:]}
        values |= {"last_actual": json.dumps(stored, default=str), "updated_at": stamp}
        values["counted"] = counted.joined(counted.split(None if row is None else row[-2]), rows)
        if row is None:
            new.append({"key": pair[0], "version": pair[1], "day": day, **values})
        else:
            changed.append({"k": pair[0], "v": pair[1], "d": day, **values})
    if new:
        conn.execute(insert(t.monitor_actuals), new)
    if changed:
        where = and_(a.key == bindparam("k"), a.version == bindparam("v"), a.day == bindparam("d"))
        written = (*_SUMS, "last_actual", "counted", "updated_at")
        conn.execute(
            update(t.monitor_actuals).where(where).values({n: bindparam(n) for n in written}),
            changed,
        )
    if new:  # only a new day can push a version past ``WINDOWS`` of them
        _drop_old_windows(conn, [(r["key"], r["version"]) for r in new])


def _drop_old_windows(conn: Connection, pairs: Sequence[tuple[str, int]]) -> None:
    """Delete the day windows past the newest ``WINDOWS`` of each of ``pairs``: one count per
    batch finds the few versions that have more, then their oldest days go."""
    a = t.monitor_actuals.c
    over: list[tuple[str, int]] = []
    for chunk in batches(list(pairs)):
        wanted = set(chunk)
        q = (
            select(a.key, a.version)
            .where(pairs_in(a, chunk))
            .group_by(a.key, a.version)
            .having(func.count() > WINDOWS)
        )
        over += [(k, v) for k, v in conn.execute(q) if (k, v) in wanted]
    for key, version in over:
        where = and_(a.key == key, a.version == version)
        old = [
            d
            for (d,) in conn.execute(
                select(a.day).where(where).order_by(a.day.desc()).offset(WINDOWS)
            )
        ]
        if old:
            conn.execute(delete(t.monitor_actuals).where(and_(where, a.day.in_(old))))


def live_sums(
    engine: Engine, pairs: Iterable[tuple[str, int]] | None = None
) -> dict[tuple[str, int], tuple[ErrorSums, int]]:
    """``{(key, version): (sums over its kept windows, number of windows)}``."""
    a = t.monitor_actuals.c
    columns = [func.sum(a[n]) for n in _SUMS]
    q = select(a.key, a.version, *columns, func.count()).group_by(a.key, a.version)
    wanted = None if pairs is None else set(pairs)
    out: dict[tuple[str, int], tuple[ErrorSums, int]] = {}
    with engine.connect() as conn:
        keys = None if wanted is None else sorted({k for k, _ in wanted})
        for chunk in [None] if keys is None else batches(keys):
            for key, version, *values, n in conn.execute(
                q if chunk is None else q.where(a.key.in_(chunk))
            ):
                if wanted is None or (key, version) in wanted:
                    sums = from_row(values)
                    out[(key, version)] = (sums, int(n))
    return out


def from_row(values: Sequence[Any]) -> ErrorSums:
    """Sums as read back (SUM() may come back as float or Decimal)."""
    n, ae, se, wrong, nae, nse, nwrong = values
    return ErrorSums(int(n), float(ae), float(se), int(wrong), float(nae), float(nse), int(nwrong))


def windows(engine: Engine, key: str, version: int) -> list[dict[str, Any]]:
    """A version's kept day windows, newest first (what ``GET .../monitor`` shows)."""
    a = t.monitor_actuals.c
    q = select(t.monitor_actuals).where(and_(a.key == key, a.version == version))
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(a.day.desc())).mappings().all()
    hidden = ("key", "last_actual", "counted")
    return [{k: v for k, v in r.items() if k not in hidden} for r in rows]


def is_finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def count_drifted(engine: Engine, threshold: float) -> int:
    """Partitions whose production version's drift score is at least ``threshold`` (an index
    range scan, a primary-key probe of the alias each): the monitor's ``drifted`` flags. A
    drift row of a version production no longer points at (retrained, promoted, rolled back)
    is not drift of what is served — the monitor ignores it, and so does this count; counting
    every row kept ``manymodels_partitions_drifted`` at its value before a ``retrain --when
    drifted`` until traffic to each retrained partition replaced its row. Nor is the
    fallback's row, which the monitor (``report.health``) leaves out too."""
    d, a = t.monitor_drift.c, t.aliases.c
    served = select(a.key).where(a.key == d.key, a.alias == "production", a.version == d.version)
    # the fallback's drift row (the router samples the rows it answers) is not a partition:
    # the monitor lists none for it, and the gauge said 1 drifted where the monitor flagged 0
    q = select(func.count()).where(d.score >= threshold, served.exists(), d.key != FALLBACK_KEY)
    with engine.connect() as conn:
        return int(conn.execute(q).scalar() or 0)
