"""The run of a scheduled firing, found by one ``meta`` row (``manymodels scheduler``).

A scheduler started after another was killed in its firing's run resumes that run; one whose
scheduler died after its run ended learns from the run what became of the firing
(``cli.schedule_runs``). The run used to be looked for among the 50 newest runs: on a registry
where router retrain jobs, ``train`` and other schedules add runs, a firing's run fell out of
them within a day, and the firing was run afresh beside its killed run (every partition again
for ``when = ["all"]``), or a firing that had completed was taken for one killed before its
run began and run a second time. Now the run records itself, in the transaction that creates
it, under its schedule (``<schedule>:run``, the firing's instant and the run's id): one read by
primary key, whatever the number of runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from manymodels.registry.base import put_meta

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from manymodels.registry.store import SqlStore


def _name(schedule: str) -> str:
    return f"{schedule}:run"


def note_firing_run(conn: Connection, run_id: str, options: Mapping[str, Any]) -> None:
    """Record run ``run_id`` as its firing's (``create_run``), when its options name one: the
    ``schedule`` (``firings.schedule_id``) and the firing's instant (``due``)."""
    schedule, due = options.get("schedule"), options.get("due")
    if options.get("trigger") != "schedule" or not isinstance(schedule, str) or not (
        isinstance(due, str) and schedule.startswith("schedule:")
    ):  # fmt: skip
        return
    put_meta(conn, _name(schedule), json.dumps({"due": due, "run_id": run_id}))


def firing_run_id(store: SqlStore, schedule: str, due: str) -> str | None:
    """The id of the newest run of ``schedule``'s firing at ``due`` (as the run's ``due``
    option writes it); ``None`` when the newest run of the schedule is another firing's, or
    none recorded itself."""
    found = store.get_meta(_name(schedule))
    try:
        o = json.loads(found) if found is not None else None
        return str(o["run_id"]) if o is not None and o.get("due") == due else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
