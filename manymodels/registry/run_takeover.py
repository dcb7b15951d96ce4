"""Who owns a run: a process that resumed another's run (``manymodels train --resume``, or
the router's retrain of it) takes it over, and the process it was taken from must stop
writing to it. Read inside the writer's own transaction, under the write lock, so a reopen
cannot land between the look and the write.

Apart from ``registry.runs`` (the runs' rows) because the rule of ownership is read by every
write to a run and said by the process that lost it (``run_globals``), not by the store alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from manymodels.exceptions import RunTakenOver
from manymodels.registry import schema as t
from manymodels.run_busy import on_host
from manymodels.tempnames import owner_here, owner_pid


def stored_options(conn: Connection, run_id: str) -> dict[str, Any]:
    """The run's options as stored (``{}`` for no such run)."""
    q = select(t.runs.c.options_json).where(t.runs.c.run_id == run_id)
    return dict(json.loads(conn.execute(q).scalar_one_or_none() or "{}"))


def taken_from(conn: Connection, run_id: str, owner: str | None) -> str | None:
    """The process that now owns the run, when it is no longer ``owner`` (another process
    resumed it); ``None`` while it is still ``owner``'s, or when no owner is asked for or
    recorded. Read inside the caller's write transaction, which holds the write lock: a
    reopen cannot land between this look and the caller's write."""
    if owner is None:
        return None
    recorded = stored_options(conn, run_id).get("owner")
    return recorded if recorded is not None and recorded != owner else None


def refuse_if_taken(conn: Connection, run_id: str, owner: str | None) -> None:
    """``RunTakenOver`` when another process now owns the run (``taken_from``)."""
    if taken_from(conn, run_id, owner) is not None:
        options = stored_options(conn, run_id)
        if options.get("abandoned"):
            raise RunTakenOver(
                f"run {run_id} was abandoned (`manymodels runs abandon`) while this process "
                "ran it: this process stopped and wrote nothing more to it"
            )
        raise RunTakenOver(taken_over_message(run_id, options))


def taken_over_message(run_id: str, options: Mapping[str, Any]) -> str:
    """What a process whose run another one resumed says as it stops: one line naming the
    process that now owns it (``options``, the run's: its ``owner`` and ``host``)."""
    other = options.get("owner")
    pid = owner_pid(other)
    here = owner_here(other)
    who = "another process" if pid is None else f"process {pid}"
    where = (
        "" if pid is None else " on this machine" if here else f" {on_host(options.get('host'))}"
    )
    return (
        f"run {run_id} was resumed by {who}{where} while this one ran it: this process "
        f"stopped and wrote nothing more to it; see `manymodels runs show {run_id}`"
    )
