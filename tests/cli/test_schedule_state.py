"""The scheduler's first line (``cli.schedule_state.start_line``) names where a firing's mark
was written as a run's process is named (``run_busy.on_host``): one decision, one wording."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from manymodels.cli.schedule_state import CatchUp, start_line
from manymodels.registry.firings import FailedFiring
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
