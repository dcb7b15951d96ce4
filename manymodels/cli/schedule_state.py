"""The scheduler's catch-up at start: what it found in the registry (firings missed, failed,
killed in their run, under way elsewhere, or failed before the schedule's edit), held in one
``CatchUp`` for the firing, claim and report steps of ``manymodels scheduler``, and the first
line that says it.

Apart from ``cli.schedule`` (the command: options, and the steps that read and write the
registry) because this is what those steps share, and how it is said, without a registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from manymodels.cli.schedule_lines import when as _when

if TYPE_CHECKING:  # read-only commands import none of these
    from manymodels.registry.firing_edits import Previous
    from manymodels.registry.firings import FailedFiring
    from manymodels.spec_sections import Schedule


@dataclass
class CatchUp:
    """What the scheduler knows of its firings beyond the cron: filled at start by the
    catch-up (``missed``), read and emptied as firings are claimed and run."""

    # a firing claimed by a scheduler killed in its run (a reboot, the OOM killer, kill -9):
    # the firing's instant → that run, which the catch-up resumes
    killed_firings: dict[datetime, str] = field(default_factory=dict)
    # … and its mark, its attempts counted
    killed_marks: dict[datetime, FailedFiring] = field(default_factory=dict)
    # the newest firing, when its run failed: run again at start (``FIRING_ATTEMPTS``), or
    # only reported once it failed as many times
    failed_firings: dict[datetime, FailedFiring] = field(default_factory=dict)
    given_up: list[FailedFiring] = field(default_factory=list)
    # under way by a scheduler this machine cannot look up …
    elsewhere_marks: list[FailedFiring] = field(default_factory=list)
    # … and beating: the firing's instant → its mark, taken over if it goes silent (``claim``)
    watched: dict[datetime, FailedFiring] = field(default_factory=dict)
    # firings this scheduler marked under way → its tag
    marked: dict[datetime, str] = field(default_factory=dict)
    # never claimed, the schedule edited: its newest firing → the one before the edit, failed
    edited: dict[datetime, Previous] = field(default_factory=dict)
    # the firing run at start → why, in the firing's line as the first line says it
    caught: dict[datetime, str] = field(default_factory=dict)


def start_line(spec_name: str, plan: Schedule, missed: datetime | None, state: CatchUp) -> str:
    """The scheduler's first line: its schedule, what the catch-up at start runs and why
    (recorded in ``state.caught`` for that firing's own line), what it will not run again,
    and the next firing."""
    from manymodels.registry.firings import FIRING_ATTEMPTS, look_again_at, on_this_clock
    from manymodels.schedule import next_times

    first = next_times(plan.cron, plan.timezone, 1)
    late = f"; now: the {_when(missed)} firing, missed" if missed is not None else ""
    if missed is not None:
        state.caught[missed] = "missed"
    if missed is not None and missed in state.watched:
        mark = state.watched[missed]
        late = (
            f"; the {_when(missed)} firing is marked under way by a scheduler this machine "
            f"cannot look up ({whose(mark)}), its mark refreshed "
            f"{_when(on_this_clock(mark, mark.beat))}: taken over at "
            f"{_when(look_again_at(mark))} unless refreshed by then"  # this host's clock
        )
        state.caught[missed] = "its scheduler gone silent: taken over"
    if missed is not None and missed in state.killed_firings:
        run_id = state.killed_firings[missed]
        late = f"; now: the {_when(missed)} firing, whose run {run_id} was killed: resuming it"
        state.caught[missed] = f"its run {run_id} killed"  # resumed, or run afresh
        if missed in state.killed_marks:
            late += f" (attempt {state.killed_marks[missed].attempts + 1} of {FIRING_ATTEMPTS})"
    if missed is not None and missed in state.edited:
        before = state.edited[missed]
        failed = before.failed
        late = (
            f"; now: the {_when(failed.due)} firing of this schedule before its edit (cron "
            f"'{before.cron}', {before.timezone}, when {' or '.join(before.when)}), which "
            f"failed ({failed.error}): running it again as the {_when(missed)} firing "
            f"(attempt {failed.attempts + 1} of {FIRING_ATTEMPTS})"
        )
        state.caught[missed] = f"failed before the schedule's edit: attempt {failed.attempts + 1}"
    elif missed is not None and missed in state.failed_firings:
        failed = state.failed_firings[missed]
        late = (
            f"; now: the {_when(missed)} firing, which failed ({failed.error}): running it "
            f"again (attempt {failed.attempts + 1} of {FIRING_ATTEMPTS})"
        )
        state.caught[missed] = f"failed: attempt {failed.attempts + 1} of {FIRING_ATTEMPTS}"
    for failed in state.given_up:
        late += (
            f"; the {_when(failed.due)} firing failed {failed.attempts} time(s), not run "
            f"again: {failed.error}"
        )
    for mark in state.elsewhere_marks:
        late += (
            f"; the {_when(mark.due)} firing is marked under way by a scheduler this "
            f"machine cannot look up ({whose(mark)}): left to it"
        )
    return (
        f"scheduler: {spec_name} on '{plan.cron}' ({plan.timezone}), "
        f"retraining {' or '.join(plan.when)} partitions{late}; "
        f"next {_when(first[0] if first else None)}"
    )


def whose(mark: FailedFiring) -> str:
    """The scheduler of a firing's mark it cannot look up, as the mark records it: its pid and
    where (``run_busy.on_host``, as a run's process is said; a mark of this host's name is of
    this boot here: one of an earlier boot is no firing under way)."""
    from manymodels.run_busy import on_host
    from manymodels.tempnames import owner_pid

    return f"pid {owner_pid(mark.owner)} {on_host(mark.host, mark.boot)}"
