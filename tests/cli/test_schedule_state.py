"""The scheduler's first line (``cli.schedule_state.start_line``) names where a firing's mark
was written as a run's process is named (``run_busy.on_host``): one decision, one wording."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from manymodels.cli.schedule_state import CatchUp, start_line
from manymodels.registry.firings import MARK_SILENT_AFTER, FailedFiring, look_again_at
from manymodels.spec_sections import Schedule
from manymodels.tempnames import host_boot

ELSEWHERE = "4242-777-0123456789ab"  # a scheduler of another pid namespace


@pytest.mark.parametrize(
    ("host", "boot", "said"),
    [
        (None, None, "pid 4242 on another machine"),
        ("another-host", "b0075", "pid 4242 on host another-host"),
        ("<here>", "<this boot>", "pid 4242 in another container of this host, <here>"),
    ],
)
def test_a_mark_under_way_elsewhere_is_placed_as_a_runs_process_is(
    host: str | None, boot: str | None, said: str
) -> None:
    """A mark written before marks named their host was "pid 4242 on another machine or in
    another container", where a run recorded so is "on another machine": two wordings of one
    decision (no host / this host / host X). Now one (``run_busy.on_host``); a mark of this
    host and this boot is still another container here."""
    here, this_boot = host_boot()
    host = host and host.replace("<here>", here)
    boot = boot and boot.replace("<this boot>", this_boot)
    said = said.replace("<here>", here)
    due = datetime(2026, 11, 30, 3, tzinfo=UTC)
    mark = FailedFiring(due, 1, "under way", owner=ELSEWHERE, host=host, boot=boot)
    state = CatchUp(elsewhere_marks=[mark])
    line = start_line("sales", Schedule(cron="0 3 * * 1"), None, state)
    assert f"this machine cannot look up ({said}): left to it" in line, line


def test_a_watched_marks_times_are_said_by_this_hosts_clock() -> None:
    """A mark's beat is the database server's time (``registry.db_clock``); the scheduler
    waits for it to go silent by its own clock (``firings.look_again_at``). With this host
    20 min behind the server, the first line said the server's times: "taken over at" a
    moment 20 min past the one the scheduler took the firing over at. Now both times are
    this host's."""
    skew = timedelta(minutes=20)  # the database's clock reads this far ahead of this host's
    here = datetime.now(UTC)
    due = datetime(2026, 11, 30, 3, tzinfo=UTC)
    beat = here + skew - timedelta(seconds=60)  # a minute ago, by the database's clock
    mark = FailedFiring(due, 1, "under way", owner=ELSEWHERE, beat=beat, read_at=here + skew)
    state = CatchUp(watched={due: mark})
    line = start_line("sales", Schedule(cron="0 3 * * 1"), due, state)
    said = re.search(r"its mark refreshed (\S+): taken over at (\S+) unless", line)
    assert said is not None, line
    refreshed, taken = (datetime.fromisoformat(s) for s in said.groups())
    assert abs(refreshed - (here - timedelta(seconds=60))) < timedelta(seconds=5), line
    silent = here - timedelta(seconds=60) + timedelta(seconds=MARK_SILENT_AFTER)
    assert abs(taken - silent) < timedelta(seconds=5), line
    assert abs(look_again_at(mark) - taken) < timedelta(seconds=5)  # what the scheduler waits for
