"""The scheduler's catch-up look-up at start (``manymodels scheduler``'s ``missed`` step):
whether the newest firing due went unrun, failed, or was killed in its run, read from the
registry's firing marks and runs, and what was found written into the scheduler's
``CatchUp`` for its claim, fire and report steps.

Apart from ``cli.schedule`` (the command, its options, and the steps that claim and run a
firing) because this is the one step that only looks back: it reads what earlier schedulers
left, and runs nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from manymodels.cli.lines import echo
from manymodels.cli.options import open_registry
from manymodels.cli.schedule_state import CatchUp

if TYPE_CHECKING:  # read-only commands import none of these
    from manymodels.registry import Registry
    from manymodels.registry.firings import FailedFiring
    from manymodels.spec_sections import Schedule


@dataclass(frozen=True)
class MissedFirings:
    """``run_schedule``'s ``missed``: called with the newest firing due at start."""

    registry: Path
    registry_db: str | None
    artifacts: str | None
    name: str  # the schedule's id (``registry.firings.schedule_id``)
    family: tuple[str, str]  # its family and what it is about (``registry.firing_edits``)
    spec_name: str  # the spec's name at start
    plan: Schedule
    data: str
    state: CatchUp
    catch_up: bool

    def __call__(self, due: datetime) -> bool | datetime:
        """Whether the newest firing due went unrun while no scheduler ran (its registry
        has an older one claimed), or was claimed by a scheduler killed in its run (that run,
        ``schedule_runs.firing_run``, is then resumed), or failed — its run, or its scheduler
        killed before the run began (``registry.firings.FailedFiring``): run again once; a
        registry not there yet, or not reached, has none. Under way by a scheduler this
        machine cannot look up whose mark beats: the instant its mark goes silent, to look
        again then. Never claimed, after the schedule was edited: the failed firing of the
        schedule it replaces (``registry.firing_edits``)."""
        from manymodels.cli.schedule_runs import ended, firing_run, was_killed
        from manymodels.exceptions import (
            LostDatabase,
            NoRegistry,
            RegistryError,
            StoreNotFound,
            first_line,
        )
        from manymodels.registry.firings import (
            FIRING_ATTEMPTS,
            failed_firing,
            last_claimed,
            look_again_at,
            under_way,
        )
        from manymodels.registry.pg_connect import authentication_failed
        from manymodels.tempnames import owner_alive

        registry, state, name = self.registry, self.state, self.name
        if not self.catch_up or (
            self.registry_db is None and not (registry / "registry.db").exists()
        ):
            return False
        try:
            with open_registry(registry, self.registry_db, self.artifacts) as reg:
                last = last_claimed(reg.store, name)
                if last is None:
                    return self.edited_failure(reg, due)
                if last == due:
                    run = firing_run(reg, name, self.spec_name, self.plan, due, self.data)
                    if run is not None and was_killed(run):
                        return self.resumed(failed_firing(reg.store, name), run.run_id, due)
                    failed = ended(failed_firing(reg.store, name), run, due)
                    # a firing under way: its scheduler runs (or runs elsewhere: cannot tell)
                    if failed is not None and failed.due == due and not under_way(failed):
                        if failed.attempts < FIRING_ATTEMPTS:
                            state.failed_firings[due] = failed
                            return True
                        state.given_up.append(failed)
                    elif (
                        failed is not None
                        and failed.due == due
                        and owner_alive(failed.owner) is None
                    ):
                        stale = look_again_at(failed)
                        if stale is not None and failed.attempts < FIRING_ATTEMPTS:
                            state.watched[due] = failed
                            return stale
                        state.elsewhere_marks.append(failed)  # said: it may never run
        except RegistryError as e:
            if isinstance(e, NoRegistry) and not isinstance(e, LostDatabase | StoreNotFound):
                return False  # a --registry-db not made yet, as a new --registry: none missed
            if authentication_failed(e):  # not a server briefly away: no firing would run
                raise
            echo(f"warning: missed firings not looked for: {first_line(e)}", err=True)
            return False
        return last is not None and last < due

    def edited_failure(self, reg: Registry, due: datetime) -> bool:
        """Whether this schedule, never claimed, replaces an edited one whose newest firing
        failed: run again once as this one's newest firing (``state.edited``), or said."""
        from zoneinfo import ZoneInfo

        from manymodels.cli.schedule_runs import ended, firing_run, was_killed
        from manymodels.registry.firing_edits import previous_failure
        from manymodels.registry.firings import FIRING_ATTEMPTS, under_way

        previous = previous_failure(reg.store, self.family[0], self.name)
        if previous is None:
            return False
        # in its schedule's zone, as its run's options name it ("due")
        old = previous.failed.due.astimezone(ZoneInfo(previous.timezone))
        run = firing_run(reg, previous.schedule, self.spec_name, previous, old, self.data)
        failed = ended(previous.failed, run, old)
        if failed is None or (run is not None and was_killed(run)) or under_way(failed):
            return False  # it ran, or its run is left to be resumed, or it runs
        if failed.attempts >= FIRING_ATTEMPTS:
            self.state.given_up.append(failed)
            return False
        failed = dataclasses.replace(failed, due=old)
        self.state.edited[due] = dataclasses.replace(previous, failed=failed)
        self.state.failed_firings[due] = failed
        return True

    def resumed(self, mark: FailedFiring | None, run_id: str, due: datetime) -> bool:
        """Whether the run ``run_id`` of the firing at ``due``, killed, is resumed: not once
        its firing ran ``FIRING_ATTEMPTS`` times. A run the OOM killer ends at each try was
        resumed by every start of a restarted scheduler, in a loop for ever."""
        from manymodels.registry.firings import FIRING_ATTEMPTS

        mark = mark if mark is not None and mark.due == due else None
        if mark is not None and mark.attempts >= FIRING_ATTEMPTS:
            why = f"its run {run_id} was killed each time (the OOM killer? a reboot?)"
            self.state.given_up.append(dataclasses.replace(mark, error=why))
            return False
        self.state.killed_firings[due] = run_id
        if mark is not None:
            self.state.killed_marks[due] = mark
        return True
