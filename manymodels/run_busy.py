"""One run of a spec trains at a time: a run started while another run of the same spec is
training on the registry (``manymodels train`` by hand, a scheduler's firing, ``retrain``)
trained the partitions that run had not reached yet at the same time — a second version of
the same rows each, and the first run's own versions of them left unpromoted ("production
moved during the run"). It is refused now (``RunBusy``), naming the run it would race.

Training is told as ``--resume`` tells it (``registry.entities.Run``): its process alive on
this machine, or beating elsewhere within ``heartbeat.SILENT_AFTER``. A run killed in it, or
silent past that, blocks nothing: it is left to be resumed or abandoned. A router's retrain
job (one partition, seconds) blocks no run; it is itself refused beside a run of its spec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from manymodels.exceptions import RunBusy
from manymodels.heartbeat import SILENT_AFTER, spoken
from manymodels.oneline import one_line
from manymodels.tempnames import host_boot, owner_here, owner_pid

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from manymodels.registry.client import Registry
    from manymodels.registry.entities import Run
    from manymodels.registry.store import SqlStore


def training_run(store: SqlStore, spec_name: str, *, besides: str | None = None) -> Run | None:
    """The newest run of ``spec_name`` training now, not a router's retrain job nor run
    ``besides`` (the one being resumed); ``None``. One query of the runs marked running of
    that spec (``ix_runs_status``): runs, not partitions, and none of the runs that ended."""
    with store.engine.connect() as conn:
        return training_run_in(conn, spec_name, besides=besides)


def training_run_in(conn: Connection, spec_name: str, *, besides: str | None = None) -> Run | None:
    """``training_run`` read on ``conn``: under ``create_run``'s write lock, so two runs
    started at the same instant cannot both find none (one is recorded first, the other
    sees it)."""
    from sqlalchemy import select

    from manymodels.registry import schema as t
    from manymodels.registry.db_clock import db_now
    from manymodels.registry.job_outcomes import JOB_NOTE
    from manymodels.registry.rows import run_entity

    c = t.runs.c
    q = select(t.runs).where(c.status == "running", c.spec_name == spec_name)
    at = db_now(conn)  # heartbeats are the database's time: judged by it (``Run.read_at``)
    runs = [run_entity(row, at) for row in conn.execute(q.order_by(c.started_at.desc()))]
    return next(
        (r for r in runs if JOB_NOTE not in r.options and r.run_id != besides and training_now(r)),
        None,
    )


def training_now(run: Run) -> bool:
    """Whether ``run`` is surely training now: its process alive on this machine, or beating
    elsewhere (``Run.beating``). The one test of ``RunBusy``, ``runs abandon``, a resume and
    ``doctor``: RunBusy and abandon took a heartbeat stamped in the future for a beat."""
    if run.status != "running" or seen_stopped(run):
        return False
    return bool(run.owner_alive) or run.beating


def seen_stopped(run: Run) -> bool:
    """Whether ``run`` is seen not to move: its process gone from this machine
    (``Run.killed``), or, where this machine cannot look its process up, its heartbeat silent
    past ``heartbeat.SILENT_AFTER`` (``Run.silence``) or stamped ahead of this clock past it
    (``Run.ahead``: such a beat proves nothing). The one rule of ``training_now`` and of a
    run's time left (``registry.progress``): written twice, the ETA judged the stamp ahead
    even of a run whose process this machine sees alive, which ``training_now`` (so
    ``RunBusy``) takes for training."""
    return run.killed or run.silence is not None or run.ahead is not None


def busy_message(run: Run) -> str:
    """One line: which run trains the spec, since when, where (``whereabouts``), and how to go
    on. ``runs abandon`` is named only as what follows stopping a process on this machine: it
    refuses a run still training (``run_abandon``), and a run beating elsewhere, stopped
    there, goes on refusing it until its heartbeat falls silent — it blocks nothing from then
    on anyway."""
    pid = owner_pid(run.options.get("owner"))
    where = whereabouts(run)
    stop = f"`kill {pid}`" if pid else "stop it"
    if run.owner_alive:
        advice = (
            f"wait for it to end, or stop it ({stop}): once its process is gone "
            f"`manymodels runs abandon {run.run_id}` gives it up, `train --resume {run.run_id}` "
            "finishes it"
        )
    elif owner_here(run.options.get("owner")):  # not looked up: told dead when gone, or not
        advice = (
            f"wait for it to end, or stop it ({stop}): it blocks no run once its process is "
            f"gone or its heartbeat has been silent for {spoken(SILENT_AFTER)}"
        )
    else:
        who = f"process {pid}" if pid else "its process"
        host = recorded_host(run.options.get("host"))
        there = f"on {host}" if host else "on the machine it runs on"
        where += f", heartbeat at {(run.heartbeat_at or '')[:19]}"
        advice = (
            f"wait for it to end, or stop {who} {there}: it blocks no run once its heartbeat "
            f"has been silent for {spoken(SILENT_AFTER)}"
        )
    return (
        f"run {run.run_id} ({run.kind}, started {run.started_at[:19]}, {where}) is still "
        f"training spec '{run.spec_name}' on this registry: {advice}"
    )


def whereabouts(run: Run) -> str:
    """Where the process running ``run`` is, for a line: on this machine (looked up, or
    hidden by ``/proc``'s ``hidepid``: it said "another machine"), or on the host the run
    recorded when it started or was resumed (``options["host"]``), or, for a run recorded
    before hosts were, on another machine."""
    owner = run.options.get("owner")
    pid = owner_pid(owner)
    who = f"process {pid}" if pid else "a process" if run.owner_alive else "its process"
    if run.owner_alive:
        return f"{who} on this machine"
    if owner_here(owner):
        return f"{who} on this machine, which /proc does not show here (hidepid?)"
    return f"{who} {on_host(run.options.get('host'))}"


def on_host(host: object, boot: object = None) -> str:
    """Where a process this machine cannot look up runs, as one line, by the host (and boot)
    its record names: ``on host X``; this host's name ``in another container of this host``
    when the boot is this one's too (a scheduler's mark records it), else hedged (a run's
    records only the name: another container, or a machine of this one's name); none
    recorded (an older release's run or mark), ``on another machine``. The one wording of a
    run's process (``whereabouts``, ``run_takeover``) and a scheduler's mark (``whose``)."""
    name = recorded_host(host)
    if name is None:
        return "on another machine"
    here, booted = host_boot()
    if host != here:
        return f"on host {name}"
    if isinstance(boot, str) and boot and boot == booted:
        return f"in another container of this host, {name}"
    return f"on host {name} (another container, or a machine of this one's name)"


def recorded_host(host: object) -> str | None:
    """A host name as a run or a mark recorded it (a run's ``options["host"]``), as one line;
    ``None`` when it recorded none (one written before hosts were recorded)."""
    return one_line(host) if isinstance(host, str) and host else None


def refuse_beside_a_run(store: SqlStore, spec_name: str, *, besides: str | None = None) -> None:
    """``RunBusy`` while a run of ``spec_name`` other than ``besides`` trains
    (``training_run``)."""
    refuse_if_busy(training_run(store, spec_name, besides=besides))


def refuse_if_busy(busy: Run | None) -> None:
    """``RunBusy`` naming ``busy``, a run found training (``training_run``); nothing if none."""
    if busy is not None:
        raise RunBusy(busy_message(busy), busy.run_id)


def refuse_before_reading(registry: Any, spec_name: str, *, besides: str | None = None) -> None:
    """``refuse_beside_a_run`` before a run reads its data (``pipeline.train``): refused only
    once the whole table was read and prepared, a run of a big table waited minutes for its
    "no". ``registry`` a ``Registry``, or where one is (opened, nothing created: none there
    holds no run). ``create_run`` checks again under its lock, for two runs at once.

    Where one is (a path, or a ``RegistryLocation``) is opened to read, never made: the data
    is not read yet, and a run refused for it must leave no database, tables or directory
    behind (``train --registry-db``'s did); a database that is not there has no run
    training, so there is nothing to refuse.

    ``besides``, the run resumed, is looked up here too (``RunNotFound``): a mistyped id
    was said only once the table was read, and where no registry was, after making one
    (``train --resume abc --registry-db sqlite:///x/r.db`` left x/r.db with its tables)."""
    from manymodels.exceptions import NoRegistry, RunNotFound
    from manymodels.registry.client import Registry
    from manymodels.registry.registry_location import open_existing

    if isinstance(registry, Registry):
        _refuse(registry, spec_name, besides)
        return
    try:
        reg = open_existing(registry)
    except NoRegistry:
        if besides is not None:  # no registry holds no run to resume
            raise RunNotFound(f"no run with id '{besides}'") from None
        return
    with reg:
        _refuse(reg, spec_name, besides)


def _refuse(reg: Registry, spec_name: str, resumed: str | None) -> None:
    """``RunNotFound`` for a ``resumed`` run ``reg`` does not hold, else ``refuse_beside_a_run``."""
    if resumed is not None:
        reg.get_run(resumed)
    refuse_beside_a_run(reg.store, spec_name, besides=resumed)
