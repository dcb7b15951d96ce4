"""``manymodels scheduler``: retrain on the spec's ``[schedule] cron`` (``manymodels.schedule``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from manymodels.cli.lines import echo
from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    MAX_INT,
    ArtifactsOpt,
    Backend,
    RegistryDbOpt,
    RegistryOpt,
    located,
    refuse_moot_registry,
    signer,
)
from manymodels.cli.schedule_catch_up import MissedFirings
from manymodels.cli.schedule_lines import overlap_json, report_json, warn_if_absent
from manymodels.cli.schedule_lines import report as _report
from manymodels.cli.schedule_lines import when as _when
from manymodels.cli.schedule_start import running, said_at_start
from manymodels.cli.schedule_state import CatchUp, start_line

if TYPE_CHECKING:  # read-only commands import none of these
    from manymodels.registry import Registry


@said_at_start  # Ctrl-C before it runs: nothing started, nothing to resume
def scheduler(
    spec: Annotated[Path, typer.Argument(help="Spec file (TOML) with a schedule (cron = …).")],
    given: Annotated[  # text: a Path made file://localhost/x the relative file:/localhost/x
        str,
        typer.Argument(
            metavar="DATA", help="Data file, read again at every firing.", show_default=False
        ),
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    backend: Annotated[Backend, typer.Option(help="As for 'manymodels train'.")] = "auto",
    max_runs: Annotated[
        int | None, typer.Option(min=1, max=MAX_INT, help="Stop after this many firings.")
    ] = None,
    next_: Annotated[
        int | None,
        typer.Option("--next", min=1, max=1000, help="Print the next N firings and exit."),
    ] = None,
    catch_up: Annotated[
        bool,
        typer.Option(
            "--catch-up/--no-catch-up",
            help="At start, run the newest firing if it went unrun while no scheduler ran "
            "(once, however many were missed), resume its run if its scheduler was killed "
            "in it, or run it again (once) if it failed; --no-catch-up waits for the next "
            "firing.",
        ),
    ] = True,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object a line per firing (or skip): the members 'retrain --json' "
            "prints, with schedule, cron, event and at (event 'nothing': run null, trained "
            "false, unchanged, reason, warnings); with --next, one line of the coming times "
            "(next).",
        ),
    ] = False,
) -> None:
    """Retrain on the spec's cron schedule.

    Each firing trains SPEC on DATA as 'manymodels train --changed-only' does (when =
    ["changed"], the default), every partition (["all"]) or those the monitor flags
    (["drifted", "stale", "degraded"], as 'retrain --when'), and the run is recorded like any
    run. A failed firing is one line; the scheduler goes on, and one started later runs the
    newest firing again if it failed (once).

    SIGTERM or Ctrl-C stops it after the current run. Exits 1 when the last firing failed."""
    from manymodels.exceptions import SpecError, TrainingError, first_line
    from manymodels.schedule import next_times, run_schedule
    from manymodels.spec import Spec
    from manymodels.tables import require_table

    where = require_table(given)  # file:///x.csv is /x.csv: the same schedule as /x.csv given
    data = where if "://" in str(where) else Path(str(where))  # a path as before: its id kept
    parsed = Spec.from_toml(spec)
    if parsed.schedule is None:
        raise SpecError(f'{spec}: no [schedule] table (e.g. cron = "0 3 * * mon")')
    plan = parsed.schedule
    if not next_times(plan.cron, plan.timezone, 1):  # "0 3 31 2 *": it would wait for ever
        raise SpecError(f"{spec}: schedule: cron '{plan.cron}' never fires")
    if next_ is not None:
        warn_if_absent(data)  # exit 0 still: --next only lists times, as a start only warns
        coming = [when.isoformat() for when in next_times(plan.cron, plan.timezone, next_)]
        if json_out:  # one JSON line, as each firing's: the bare times were not JSON
            from manymodels.jsonout import print_json_line

            print_json_line({"schedule": parsed.name, "cron": plan.cron,
                             "timezone": plan.timezone, "next": coming})  # fmt: skip
            return
        for when in coming:
            echo(when)
        return
    refuse_moot_registry(registry, registry_db, artifacts)  # now, not at the first firing
    if not set(plan.when) & {"changed", "all"}:
        from manymodels.cli.schedule_runs import require_registry

        require_registry(registry, registry_db, artifacts)  # else made empty, never flagged
    elsewhere = registry_db is not None or artifacts is not None
    # a bad key is refused now; elsewhere, the warning of a signed registry opened without
    # one comes from each firing's own opening (``located``: where the library opens it)
    signing = signer() if elsewhere else signer(registry)

    state = CatchUp()  # what the catch-up at start found, and the marks this scheduler holds
    # the spec's name as the newest firing read it (``fire_once``), which its run is recorded
    # under: --json lines named the start's for ever, the spec renamed since
    ran_as = parsed.name

    def started(missed: datetime | None) -> None:
        running()  # a Ctrl-C from now on stops it after the current run (run_schedule)
        echo(start_line(parsed.name, plan, missed, state), err=True)
        warn_if_absent(data)

    def fire(due: datetime) -> Any:
        """One firing, its failure recorded for a scheduler started later to run it again;
        its mark of under way refreshed meanwhile (``registry.firings.MarkBeat``)."""
        from manymodels.registry.firings import MarkBeat, beat_mark

        failed = state.failed_firings.pop(due, None)
        owner = state.marked.pop(due, None)

        def beat() -> bool:
            assert owner is not None
            with open_registry(registry, registry_db, artifacts) as reg:
                return beat_mark(reg.store, name, due, owner)

        beating = MarkBeat(beat) if owner is not None else None
        from manymodels.exceptions import NothingToTrain

        try:
            with beating or contextlib.nullcontext():
                summary = fire_once(due, beating)
        except NothingToTrain:  # the firing ran: nothing had changed (said, no run recorded)
            _record(lambda reg: clear_failure(reg.store, name, due, owner))
            raise
        except Exception as e:
            attempts, error = (failed.attempts + 1 if failed is not None else 1), first_line(e)
            if beating is None or not beating.taken_over.is_set():  # else the mark is another's
                _record(lambda reg: record_failure(reg.store, name, due, attempts, error))
            raise
        _record(lambda reg: clear_failure(reg.store, name, due, owner))
        return summary

    def _record(write: Callable[[Registry], object]) -> None:
        """Best effort: the registry may be what failed; the firing's error is reported."""
        with contextlib.suppress(Exception), open_registry(registry, registry_db, artifacts) as reg:
            write(reg)

    def fire_once(due: datetime, beating: Any) -> Any:
        from manymodels.cli.schedule_runs import beaten_by, flagged, not_beside_a_run
        from manymodels.exceptions import ManyModelsError, RunBusy
        from manymodels.pipeline import train

        nonlocal ran_as
        current = Spec.from_toml(spec)  # edits to the spec apply from the next firing
        ran_as = current.name
        # under its name now: renamed since the start, its runs are recorded under the new one
        not_beside_a_run(registry, registry_db, artifacts, current.name)
        only = flagged(registry, registry_db, artifacts, plan.when)
        if only == []:
            return None  # nothing drifted, stale or degraded: no run
        # named, not opened, as `train` names it (``options.located``): the library opens it
        # once the data is read and checked, at each firing, so a database restarted between
        # firings is reached again and nothing is held open while the scheduler waits
        target: Any = located(registry, registry_db, artifacts) if elsewhere else registry
        resume = state.killed_firings.pop(due, None)

        def run(resume: str | None, keys: list[str] | None) -> Any:
            if beating is not None and not beating.still_ours():  # suspended too long
                raise ManyModelsError(
                    f"the {_when(due)} firing was taken over by another scheduler while "
                    "this one did not refresh its mark (suspended?): not run here"
                )
            try:
                return train(
                    current, data, target, backend=backend,
                    signer=None if elsewhere else signing, only=keys,
                    changed_only="all" not in plan.when, spec_edits=only is not None,
                    skip_absent=only is not None,
                    resume=resume, record_nothing=False,
                    notes={"trigger": "schedule", "cron": plan.cron, "when": plan.when,
                           "due": _when(due), "schedule": name},
                )  # fmt: skip
            except RunBusy as e:  # a run recorded since not_beside_a_run: the same skip
                raise beaten_by(registry, registry_db, artifacts, current.name, e) from None

        if resume is None:
            return run(None, only)
        try:  # flagged partitions: those flagged now and those the run finished
            return run(resume, with_finished_keys(target, resume, only))
        except TrainingError:
            if not still_killed(target, resume):
                raise  # the resume had started: its error is the firing's
            # refused before it began (the data file changed since, or the partitions
            # flagged are others): the firing afresh
            return run(None, only)

    from manymodels.cli.options import open_registry
    from manymodels.cli.schedule_runs import still_killed, with_finished_keys
    from manymodels.registry.firing_edits import about, family_id
    from manymodels.registry.firings import (
        FIRING_ATTEMPTS,
        claim_retry,
        clear_failure,
        record_failure,
        schedule_id,
    )

    name = schedule_id(parsed.name, plan.cron, plan.timezone, list(plan.when), str(data))
    family = (
        family_id(parsed.name, str(data)),
        about(name, plan.cron, plan.timezone, list(plan.when)),
    )

    def claim(due: datetime) -> bool:
        """One run per firing, however many schedulers run this schedule on this registry
        (``registry.firings``); a firing made while the registry is down fails, as its run
        would."""
        from manymodels.registry.firing_edits import claim_previous
        from manymodels.registry.firings import claim, failed_firing, on_this_clock, under_way
        from manymodels.schedule import FiringGivenUp
        from manymodels.tempnames import writer_tag

        tag = writer_tag()
        if due in state.killed_firings:  # claimed by the scheduler killed in its run: resumed here
            mark = state.killed_marks.pop(due, None)
            if mark is None:
                return True  # marked before marks were counted
            with open_registry(registry, registry_db, artifacts, create=True) as reg:
                taken = claim_retry(reg.store, name, mark, tag)  # its attempt counted
            if taken:
                state.marked[due], state.failed_firings[due] = tag, mark
            return taken
        with open_registry(registry, registry_db, artifacts, create=True) as reg:
            if due in state.edited:  # the failed firing of the schedule before its edit
                taken = claim_previous(reg.store, name, due, tag, family, state.edited.pop(due))
                if taken:
                    state.marked[due] = tag
                return taken
            if state.watched.pop(due, None) is not None:  # its scheduler elsewhere: gone silent?
                mark = failed_firing(reg.store, name)
                if mark is None or mark.due != due or under_way(mark):
                    return False  # it ended, or beats still: left to it
                beat = on_this_clock(mark, mark.beat)  # the database's time, said as here
                if mark.attempts >= FIRING_ATTEMPTS:  # its last attempt's scheduler is gone
                    record_failure(reg.store, name, due, mark.attempts, mark.error)
                    raise FiringGivenUp(
                        f"the {_when(due)} firing ran {mark.attempts} time(s) of "
                        f"{FIRING_ATTEMPTS} and the scheduler of the last, marked under way, is "
                        f"gone (mark last refreshed {_when(beat)}): not run again "
                        f"({mark.error})"
                    )
                typer.echo(
                    f"the {_when(due)} firing's mark was last refreshed {_when(beat)}: "
                    "its scheduler is gone, running it again", err=True,
                )  # fmt: skip
                state.failed_firings[due] = mark
            if due in state.failed_firings:  # claimed by the firing that failed: run again, once
                taken = claim_retry(reg.store, name, state.failed_firings[due], tag)
            else:
                taken = claim(reg.store, name, due, tag, family)
        if taken:
            state.marked[due] = tag
        return taken

    def report(firing: Any, following: datetime | None) -> None:
        if json_out:
            report_json(firing, following, spec_name=ran_as, cron=plan.cron,
                        registry=registry, db_url=registry_db)  # fmt: skip
            return
        why = state.caught.get(firing.caught_up) if firing.caught_up is not None else None
        _report(firing, following, why or "missed")

    def overlap(at: datetime) -> None:
        overlap_json(at, spec_name=ran_as, cron=plan.cron)  # the name of the run going on

    missed = MissedFirings(
        registry, registry_db, artifacts, name, family, parsed.name, plan, str(data), state,
        catch_up,
    )  # fmt: skip
    firings = run_schedule(
        spec, fire, max_runs=max_runs, started=started, claim=claim,
        report=report,
        missed=missed, overlap=overlap if json_out else None,
    )  # fmt: skip
    if firings and firings[-1].error is not None:
        raise typer.Exit(1)  # a script's "retrain at the next 03:00" learns that it failed
