"""What a scheduler takes a firing's run for (``cli.schedule_runs``): killed, and resumed, by
the one rule ``RunBusy``, ``runs abandon`` and ``--resume`` go by (``run_busy.training_now``)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from factories import ago, make_run, mark_running, other_machine_tag

from manymodels.cli.schedule_runs import was_killed
from manymodels.registry import Registry


@pytest.mark.parametrize(
    ("heartbeat", "killed"),
    [
        (5.0, False),  # beating elsewhere: it trains there
        (300.0, True),  # silent past the limit
        (-3 * 3600.0, True),  # stamped 3 h ahead: a clock running ahead there proves nothing
        (-30.0, False),  # a few seconds ahead: clocks a little apart, within the limit
    ],
)
def test_a_run_elsewhere_is_killed_as_resume_takes_it(
    tmp_path: Path, heartbeat: float, killed: bool
) -> None:
    """A firing's run on another machine, read back from a real registry: a heartbeat stamped
    hours ahead of this clock (a clock running ahead on the machine that beat) read as alive,
    and a restarted scheduler left the firing's run to it until this clock caught up, though
    ``--resume`` took that run up at once."""
    with Registry(tmp_path / "registry") as reg:
        reg.store.create_run(make_run("firing"))
        mark_running(reg, "firing", other_machine_tag(), ago(heartbeat), host="build-7")
        assert was_killed(reg.get_run("firing")) is killed


def test_an_ended_run_is_not_killed(tmp_path: Path) -> None:
    """A completed run with a heartbeat stamped ahead: ended, it is nobody's to resume."""
    with Registry(tmp_path / "registry") as reg:
        done = dataclasses.replace(make_run("done"), status="completed")
        reg.store.create_run(done)
        assert not was_killed(reg.get_run("done"))


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_killed_firings_run_stamped_ahead_is_resumed_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real scheduler killed in its firing's run, the run then as another machine whose clock
    runs 3 h ahead leaves it (its owner there, its last heartbeat stamped 3 h ahead): a
    scheduler started now resumes it and the run completes. Before, it took the run for alive
    and waited for the next Monday, the run left marked running."""
    from test_schedule_claims import _held_in_fit, _slow_weekly

    weekly = _slow_weekly(tmp_path, monkeypatch)
    killed = _held_in_fit(weekly, tmp_path / "blocked")
    killed.kill()
    killed.wait(30)
    with Registry.open(weekly.root) as reg:
        (run,) = [r for r in reg.list_runs() if r.options.get("trigger") == "schedule"]
        mark_running(reg, run.run_id, other_machine_tag(), ago(-3 * 3600), host="build-7")

    again = subprocess.Popen(weekly.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=weekly.env)  # fmt: skip
    try:
        assert again.stderr is not None
        banner = again.stderr.readline()  # its first line: before, it waited for next Monday
        stamp = weekly.newest.isoformat(timespec="seconds")
        said = f"now: the {stamp} firing, whose run {run.run_id} was killed: resuming"
        assert said in banner, banner
        out, err = again.communicate(timeout=300)
    finally:
        if again.poll() is None:
            again.kill()
            again.communicate()
    assert again.returncode == 0, (out, err)
    with Registry.open(weekly.root) as reg:
        runs = [r for r in reg.list_runs() if r.options.get("trigger") == "schedule"]
    assert [(r.run_id, r.status) for r in runs] == [(run.run_id, "completed")]
