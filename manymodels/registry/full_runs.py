"""Where a spec's newest full run is: a ``meta`` row per spec and option, so that a retrain of
one partition finds the run its pool or global models come from in two indexed reads, not by
walking every one-partition retrain recorded since (each of which records the option too).

The row is written in the transaction that completes a full run (``finish_run``, and
``record_run_options`` should one complete before its options are recorded), and only moves
forward (to a run started later: ties by run id, the order ``runs_with`` reads in). A
registry written before it has none: the first lookup walks the runs once, newest first, and
records the newest full run it met, so every later one is two reads again. Where the pointed
run is no longer a full run (resumed: running again, or ended failed) the walk's newest full
run replaces it; where the caller cannot use the pointed run, the lookup walks as before —
once, by keyset, never re-reading pages as OFFSET did.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from manymodels.exceptions import RegistryError
from manymodels.registry import schema as t
from manymodels.registry.base import StoreBase, meta_value, put_meta
from manymodels.registry.entities import Run
from manymodels.registry.rows import run_entity

OPTIONS = ("global", "interval_pool")
"""The options a full run is looked up by (``newest_full_run``)."""

PAGE = 200


def global_runs(*columns: Any) -> Select[Any]:
    """``columns`` of the runs that recorded global models, newest first (ties by run id):
    the one order in which ``newest_global_run`` and ``gc`` meet a spec's current run."""
    return runs_with("global", *columns)


def runs_with(option: str, *columns: Any) -> Select[Any]:
    """``columns`` of the runs whose options name ``option``, newest first (ties by run id)."""
    r = t.runs.c
    return (
        select(*columns)
        .where(r.options_json.like(f'%"{option}"%'))
        .order_by(r.started_at.desc(), r.run_id.desc())
    )


def current_global(status: str, options: Mapping[str, Any]) -> bool:
    """Whether a run of these ``status`` and ``options`` may be its spec's source of current
    global models (the newest such run is): completed, full (no ``only``), with a list of
    them recorded. One rule for ``newest_global_run`` and for what ``gc`` keeps."""
    return full_run_with("global", status, options)


def full_run_with(option: str, status: str, options: Mapping[str, Any]) -> bool:
    """Completed, full (no ``only``), and ``option`` recorded: a non-empty list (global
    models) or mapping (an interval pool)."""
    value = options.get(option)
    kind = list if option == "global" else dict  # a list of global models; a pool's mapping
    return (
        status == "completed" and "only" not in options and isinstance(value, kind) and bool(value)
    )


def pointer_name(spec_name: str, option: str) -> str:
    """The ``meta`` row naming ``spec_name``'s newest full run with ``option``: the spec name
    hashed, as it may be longer than a ``meta`` name."""
    digest = hashlib.sha256(spec_name.encode()).hexdigest()[:32]
    return f"full_run:{option}:{digest}"


def point_if_newer(conn: Connection, spec_name: str, option: str, run_id: str) -> None:
    """Make ``run_id`` the newest full run of ``spec_name`` with ``option`` unless the one
    recorded started later (inside the caller's write transaction)."""
    name = pointer_name(spec_name, option)
    r = t.runs.c
    found = meta_value(conn, name)
    if found is not None:
        rows = conn.execute(
            select(r.run_id, r.started_at).where(r.run_id.in_([found, run_id]))
        ).all()
        order = {row.run_id: (row.started_at, row.run_id) for row in rows}
        if found in order and run_id in order and order[found] > order[run_id]:
            return
    put_meta(conn, name, run_id)


def record_full(conn: Connection, run_id: str) -> None:
    """Point at a run just completed (in its transaction), for each option it is a full run
    with."""
    r = t.runs.c
    row = conn.execute(
        select(r.spec_name, r.status, r.options_json).where(r.run_id == run_id)
    ).first()
    if row is None:
        return
    options = json.loads(row.options_json or "{}")
    for option in OPTIONS:
        if full_run_with(option, row.status, options):
            point_if_newer(conn, row.spec_name, option, run_id)


def remember(store: StoreBase, spec_name: str, option: str, run_id: str) -> None:
    """Record the newest full run a walk found (a registry from before the pointer): a
    cache, so a registry this process may not write is simply walked again next time."""
    try:
        with store._begin() as conn:
            point_if_newer(conn, spec_name, option, run_id)
    except (RegistryError, SQLAlchemyError):  # read-only, or the write lock not had in time
        pass


def replace_stale(
    store: StoreBase, spec_name: str, option: str, stale: str, newest: str | None
) -> None:
    """Point at ``newest`` (none: no pointer) where the pointer still names ``stale``, a run
    that is no longer full (resumed, then failed or interrupted): ``point_if_newer`` would keep
    it, as it started later, and every lookup would walk until a newer full run completes. A
    pointer moved meanwhile (a full run completed), or naming a run that completed again, is
    left as it is."""
    name = pointer_name(spec_name, option)
    try:
        with store._begin() as conn:
            if meta_value(conn, name) != stale or pointed(conn, spec_name, option) is not None:
                return  # moved, or the run it names completed again meanwhile
            put_meta(conn, name, newest)
    except (RegistryError, SQLAlchemyError):  # read-only, or the write lock not had in time
        pass


def pointed(conn: Connection, spec_name: str, option: str) -> Run | None:
    """The run the pointer names, if there is one and it is still a full run with ``option``."""
    found = meta_value(conn, pointer_name(spec_name, option))
    if found is None:
        return None
    row = conn.execute(select(t.runs).where(t.runs.c.run_id == found)).first()
    if row is None or row.spec_name != spec_name:
        return None
    run = run_entity(row)
    return run if full_run_with(option, run.status, run.options) else None


def walk_full(
    conn: Connection, spec_name: str, option: str, usable: Callable[[Run], bool] | None
) -> tuple[Run | None, Run | None]:
    """The newest full run with ``option``, and the newest one ``usable`` accepts, read a page
    at a time, newest first, each page after the last run of the one before (keyset: one pass
    over the spec's runs, never re-reading the pages before as OFFSET does). The first is what
    the pointer may record; the second is the answer."""
    r = t.runs.c
    q = runs_with(option, t.runs).where(r.spec_name == spec_name, r.status == "completed")
    newest: Run | None = None
    after: tuple[str, str] | None = None
    while True:
        page = q if after is None else q.where(tuple_(r.started_at, r.run_id) < after)
        rows = conn.execute(page.limit(PAGE)).all()
        for row in rows:
            options = json.loads(row.options_json or "{}")
            if full_run_with(option, row.status, options):
                run = run_entity(row)
                newest = newest or run
                if usable is None or usable(run):
                    return newest, run
        if len(rows) < PAGE:
            return newest, None
        after = (rows[-1].started_at, rows[-1].run_id)


def newest_full(
    store: StoreBase, spec_name: str, option: str, usable: Callable[[Run], bool] | None
) -> Run | None:
    """``newest_full_run``: the pointed run when it is still full and usable, else a walk
    (which records its newest full run where no pointer was)."""
    with store.engine.connect() as conn:
        run = pointed(conn, spec_name, option)
        if run is not None and (usable is None or usable(run)):
            return run
        named = None if run is not None else _pointer(conn, spec_name, option)
        newest, found = walk_full(conn, spec_name, option, usable)
    if run is None and named is None and newest is not None:
        remember(store, spec_name, option, newest.run_id)
    elif run is None and named is not None:  # it names a run that is no longer full
        replace_stale(store, spec_name, option, named, newest.run_id if newest else None)
    return found


def _pointer(conn: Connection, spec_name: str, option: str) -> str | None:
    return meta_value(conn, pointer_name(spec_name, option))
