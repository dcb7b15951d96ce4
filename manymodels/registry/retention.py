"""Which versions ``gc --keep N`` deletes, as one set-based query: each exception to the
retention is a join on an index or a window over the same scan, never a ``NOT IN`` of row
values, which SQLite evaluates by scanning the whole list for every version (``LIST
SUBQUERY``: 8 s for 24,000 versions, quadratic beyond).

The alias grace is not one of its filters but a column: ``gc`` says how many versions past the
retention the grace kept, and counting them with the same query run again without the grace
was a second full scan of ``model_versions`` (at 100,000 partitions, the cost of the prune
twice over).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, case, exists, false, func, or_, select, union

from manymodels.registry import schema as t


@dataclass(frozen=True)
class Pruned:
    """What a prune deleted (or, dry, would delete), and how many versions past the retention
    it kept because an alias moved onto or off them since ``moved_since``: both from one read
    of ``past_retention``."""

    deleted: list[tuple[str, int, str]]  # (key, version, artifact_sha256)
    spared: int


def past_retention(keep: int, moved_since: str | None) -> Select[Any]:
    """``(id, key, version, artifact_sha256, spared)`` of the versions older than their
    partition's ``keep`` newest, except: aliased ones (a primary-key probe of ``aliases``),
    and each partition's newest version that kept its training rows (a window over the scan
    that ranks them). ``spared`` is true of those an alias moved onto or off after
    ``moved_since`` (an outer join on that set, read once): the grace keeps them, the others
    are doomed. ROW_NUMBER and aggregate windows: SQLite ≥ 3.25 and PostgreSQL."""
    c, a = t.model_versions.c, t.aliases.c
    with_rows = case((c.data_sha256.is_not(None), c.version))
    ranked = select(
        c.id,
        c.key,
        c.version,
        c.artifact_sha256,
        func.row_number().over(partition_by=c.key, order_by=c.version.desc()).label("rank"),
        func.max(with_rows).over(partition_by=c.key).label("newest_with_rows"),
    ).subquery("ranked")
    v = ranked.c
    aliased = exists().where(a.key == v.key, a.version == v.version)
    past = (
        v.rank > keep,
        or_(v.newest_with_rows.is_(None), v.newest_with_rows != v.version),
        ~aliased,
    )
    if moved_since is None:
        return select(v.id, v.key, v.version, v.artifact_sha256, false().label("spared")).where(
            *past
        )
    h = t.alias_history.c
    ends = [
        select(h.key.label("key"), end.label("version")).where(h.at > moved_since, end.is_not(None))
        for end in (h.from_version, h.to_version)
    ]
    moved = union(*ends).subquery("moved")  # UNION: each (key, version) once
    on = and_(moved.c.key == v.key, moved.c.version == v.version)
    spared = moved.c.key.is_not(None).label("spared")
    return (
        select(v.id, v.key, v.version, v.artifact_sha256, spared)
        .select_from(ranked.outerjoin(moved, on))
        .where(*past)
    )
