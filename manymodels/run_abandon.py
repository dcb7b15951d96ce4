"""Giving up on an unfinished run: ``manymodels runs abandon RUN_ID``.

A run killed mid-way is finished by ``--resume``, but only on the spec and data it started
with: once the data file has moved on (next week's rows) it cannot be resumed, and no later
run on the new data counts as doing its work again (``doctor``'s ``_done_again`` compares
the data's fingerprint). It then stayed a problem for ever — a ``doctor`` in cron exiting 1
every night — with no way to say "leave it". Abandoning closes it as given up, the reason
recorded: ``doctor`` no longer lists it, and a ``--resume`` of it is refused. What it
committed stays (versions are never deleted here), as a failed run's does.
"""

from __future__ import annotations

from manymodels.exceptions import DataError
from manymodels.reasons import check_reason
from manymodels.registry.client import Registry
from manymodels.registry.engine import now
from manymodels.registry.entities import Run
from manymodels.run_busy import training_now, whereabouts
from manymodels.tempnames import host_boot, writer_tag


def abandon_run(reg: Registry, run_id: str, reason: str | None = None) -> Run:
    """Close the unfinished run ``run_id`` as abandoned; ``DataError`` for a run that is not
    unfinished (completed, already abandoned) or still training (its process alive on this
    machine, or beating elsewhere: stop it first). Conditional on the run's status and
    heartbeat as read here (``RunTakenOver`` when a resume took it meanwhile)."""
    reg.require_writable("abandon a run")
    run = reg.get_run(run_id)
    if run.options.get("abandoned"):
        raise DataError(f"run {run_id} was already abandoned ({run.error})")
    if run_id not in {r.run_id for r, _ in reg.unfinished_runs()}:
        raise DataError(
            f"run {run_id} is {run.status} with nothing left to finish: only an unfinished "
            "run (as `manymodels doctor` lists them) is abandoned"
        )
    if training_now(run):  # not a heartbeat stamped ahead of this clock (doctor's test)
        # where, as RunBusy says it: the host the run recorded, or this machine's /proc
        # hiding it (it said "its process elsewhere" for both)
        raise DataError(f"run {run_id} is still training ({whereabouts(run)}): stop it first")
    why = reason.strip() if reason and reason.strip() else "by hand"
    check_reason(why, "the reason")  # the CLI's cap, for the library's callers too
    status = "failed" if run.status in ("running", "interrupted") else run.status
    error = f"abandoned: {why}" if status == "failed" or not run.error else run.error
    # The run becomes this process's: one silent but alive elsewhere (paused, cut off from
    # the database) that wakes is refused its next write (``RunTakenOver``), as after a
    # resume, rather than recording versions into the abandoned run and closing it completed.
    gave_up = {"abandoned": {"at": now(), "reason": why}, "owner": writer_tag(),
               "host": host_boot()[0]}  # fmt: skip
    return reg.store.finish_run(
        run_id, status, error=error, options=gave_up, seen=(run.status, run.heartbeat_at)
    )
