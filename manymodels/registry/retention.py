"""Which versions ``gc --keep N`` deletes, as one set-based query: each exception to the
retention is a join on an index or a window over the same scan, never a ``NOT IN`` of row
values, which SQLite evaluates by scanning the whole list for every version (``LIST
SUBQUERY``: 8 s for 24,000 versions, quadratic beyond).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, case, exists, func, or_, select, union

from manymodels.registry import schema as t


def doomed_versions(keep: int, moved_since: str | None) -> Select[Any]:
    """``(id, key, version, artifact_sha256)`` of the versions older than their partition's
    ``keep`` newest, except: aliased ones (a primary-key probe of ``aliases``), each
    partition's newest version that kept its training rows (a window over the scan that
    ranks them), and, with ``moved_since``, those an alias moved onto or off after it (an
    anti-join on that set, read once). ROW_NUMBER and aggregate windows: SQLite ≥ 3.25 and
    PostgreSQL."""
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
    q = select(v.id, v.key, v.version, v.artifact_sha256).where(
        v.rank > keep,
        or_(v.newest_with_rows.is_(None), v.newest_with_rows != v.version),
        ~aliased,
    )
    if moved_since is None:
        return q
    h = t.alias_history.c
    ends = [
        select(h.key.label("key"), end.label("version")).where(h.at > moved_since, end.is_not(None))
        for end in (h.from_version, h.to_version)
    ]
    moved = union(*ends).subquery("moved")  # UNION: each (key, version) once
    on = and_(moved.c.key == v.key, moved.c.version == v.version)
    return q.select_from(ranked.outerjoin(moved, on)).where(moved.c.key.is_(None))
