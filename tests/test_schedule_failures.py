"""A firing whose run failed (``registry.firings.FIRING_ATTEMPTS``): the next scheduler to start
runs it again, once, and reports it at each start once it failed as often; before, the claim
made it count as run, so a restarted scheduler waited for the next firing — a week for a weekly
schedule — after the cause (a missing data file, a full disk) was fixed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from factories import wait_for
from test_schedule_claims import BIN, _held_in_fit, _slow_weekly, _weekly_registry

from manymodels.registry import Registry
from manymodels.schedule import due_time, trigger

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]


def _scheduler(spec: Path, data: Path, root: Path, *, runs: bool) -> tuple[int, str, str]:
    """A real ``manymodels scheduler``: one firing (``runs``), or stopped with SIGTERM two
    seconds after its start line when no firing is due before next Monday."""
    cmd = [str(BIN / "manymodels"), "scheduler", str(spec), str(data), "--registry", str(root),
           "--backend", "local", *(["--max-runs", "1"] if runs else [])]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if not runs:
            assert proc.stderr is not None
            banner = proc.stderr.readline()
            time.sleep(2)  # a catch-up would have started by now
            os.kill(proc.pid, signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
            return proc.returncode, out, banner + err
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:  # no firing: it waits for next Monday
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"no firing ran: {err}") from None
        return proc.returncode, out, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _scheduled_runs(root: Path) -> list[str]:
    with Registry.open(root) as reg:
        return [r.status for r in reg.list_runs() if r.options.get("trigger") == "schedule"]


def _runs_it_again(spec: Path, data: Path, root: Path, stamp: str, why: str) -> None:
    """A scheduler started now runs the ``stamp`` firing again, saying it failed for ``why``
    (the start of the reason given), and its run completes."""
    code, out, err = _scheduler(spec, data, root, runs=True)
    assert code == 0, (out, err)
    assert f"now: the {stamp} firing, which failed ({why}" in err, err
    assert "running it again (attempt 2 of 2)" in err, err
    # the firing's line says why it ran at start as the first line does: not "missed"
    assert f"(the {stamp} firing, failed: attempt 2 of 2): 4 trained" in out, out
    assert _scheduled_runs(root) == ["completed"]


def _missed(tmp_path: Path) -> tuple[Path, Path, Path, str]:
    newest = due_time(trigger("0 3 * * 1", "UTC"), datetime.now(UTC))
    assert newest is not None
    spec, data, root = _weekly_registry(tmp_path, newest - timedelta(days=7))
    return spec, data, root, newest.isoformat(timespec="seconds")


def test_a_failed_firing_runs_again_when_the_scheduler_is_restarted_after_the_fix(
    tmp_path: Path,
) -> None:
    spec, data, root, stamp = _missed(tmp_path)
    kept = data.with_name("kept.csv")
    data.rename(kept)  # the newest firing fails: its data file is missing
    code, out, err = _scheduler(spec, data, root, runs=True)
    assert code == 1 and " error" in out, (out, err)
    kept.rename(data)  # fixed; the scheduler restarted

    _runs_it_again(spec, data, root, stamp, "")

    code, out, err = _scheduler(spec, data, root, runs=False)  # done: nothing more to run
    assert code == 0 and out == "" and "failed" not in err, (out, err)
    assert _scheduled_runs(root) == ["completed"]


def test_a_firing_that_fails_again_is_reported_not_retried_at_every_restart(
    tmp_path: Path,
) -> None:
    spec, data, root, stamp = _missed(tmp_path)
    data.rename(data.with_name("kept.csv"))
    assert _scheduler(spec, data, root, runs=True)[0] == 1
    code, out, err = _scheduler(spec, data, root, runs=True)  # the retry, still no data
    assert code == 1 and "attempt 2 of 2" in err, (out, err)
    # its error line names the firing it ran again, as a success's line does
    assert f" error (the {stamp} firing, failed: attempt 2 of 2): " in out, out

    code, out, err = _scheduler(spec, data, root, runs=False)
    assert code == 0 and out == "", (out, err)
    assert f"the {stamp} firing failed 2 time(s), not run again: " in err, err
    assert "now: the" not in err, err


# a scheduler whose firing is claimed and whose run has not begun (it reads a large data file,
# say) stays there: it writes a file, then sleeps until killed
STUCK_BEFORE_RUN = """
import os, sys, time
import manymodels.pipeline

def train(*args, **kwargs):
    open(os.environ["STUCK_AT"], "w").close()
    time.sleep(600)

manymodels.pipeline.train = train
from manymodels.cli import main
sys.argv[0] = "manymodels"
main()
"""


def test_a_firing_whose_scheduler_was_killed_before_its_run_began_runs_again(
    tmp_path: Path,
) -> None:
    """Killed between claiming the firing and creating its run (the OOM killer while a large
    data file is read), a scheduler left no run for the catch-up of killed runs to find, and
    the claim made the firing count as run. Now the claim marks it under way by its process:
    a scheduler started while that process runs leaves it alone, one started after it died
    runs it again."""
    spec, data, root, stamp = _missed(tmp_path)
    stuck_at = tmp_path / "stuck"
    cmd = [sys.executable, "-c", STUCK_BEFORE_RUN, "scheduler", str(spec), str(data),
           "--registry", str(root), "--backend", "local", "--max-runs", "1"]  # fmt: skip
    stuck = subprocess.Popen(cmd, env={**os.environ, "STUCK_AT": str(stuck_at)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(stuck_at, "the firing claimed", timeout=90, process=stuck)
        code, out, err = _scheduler(spec, data, root, runs=False)  # its firing is under way
        assert code == 0 and out == "" and "now: the" not in err, (out, err)
    finally:
        stuck.kill()
        stuck.wait(30)
    assert _scheduled_runs(root) == []  # no run for a killed run's catch-up to resume

    _runs_it_again(spec, data, root, stamp, "its scheduler was killed before its run ")


# a scheduler killed right after its firing's run ended, before it cleared the firing's mark
# of under way (kill -9, a reboot; or the registry unreachable for that one write)
KILLED_AFTER_RUN = """
import os, sys
import manymodels.registry.firings

def clear_failure(*args, **kwargs):
    os._exit(137)

manymodels.registry.firings.clear_failure = clear_failure
from manymodels.cli import main
sys.argv[0] = "manymodels"
main()
"""


def test_a_firing_whose_run_completed_is_not_run_again_when_its_scheduler_died_after(
    tmp_path: Path,
) -> None:
    """Killed after its firing's run completed and before the mark of the firing under way was
    cleared, a scheduler left the mark; the next one to start took the firing for one killed
    before its run began ("which failed (its scheduler was killed before its run started):
    running it again") and ran it a second time — every partition again for when = ["all"].
    Now the firing's recorded run says it ran: a restarted scheduler waits for the next one."""
    spec, data, root, _ = _missed(tmp_path)
    cmd = [sys.executable, "-c", KILLED_AFTER_RUN, "scheduler", str(spec), str(data),
           "--registry", str(root), "--backend", "local", "--max-runs", "1"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 137, (done.stdout, done.stderr)
    assert _scheduled_runs(root) == ["completed"]

    code, out, err = _scheduler(spec, data, root, runs=False)
    assert code == 0 and out == "" and "now: the" not in err, (out, err)
    assert "failed" not in err, err
    assert _scheduled_runs(root) == ["completed"]


def _marked_under_way(root: Path, spec: Path, data: Path, host: str, boot: str) -> None:
    """The newest firing claimed and marked under way by a scheduler this machine cannot
    look up (pid 4242 in another pid namespace) on ``host`` during its boot ``boot``: as a
    scheduler left it when its host went down while it read the data file."""
    import json
    import tomllib

    from manymodels.registry.firings import claim, schedule_id
    from manymodels.spec import Spec

    parsed = Spec.from_dict(tomllib.loads(spec.read_text()))
    plan = parsed.schedule
    newest = due_time(trigger("0 3 * * 1", "UTC"), datetime.now(UTC))
    assert plan is not None and newest is not None
    name = schedule_id(parsed.name, plan.cron, plan.timezone, list(plan.when), str(data))
    with Registry.open(root) as reg:
        claim(reg.store, name, newest)
        mark = {"due": reg.store.get_meta(name), "attempts": 1, "error": "its scheduler was "
                "killed before its run started", "owner": "4242-777-0123456789ab",
                "host": host, "boot": boot}  # fmt: skip
        reg.store.set_meta(f"{name}:failed", json.dumps(mark))


def test_a_firing_whose_scheduler_a_reboot_killed_before_its_run_began_runs_again(
    tmp_path: Path,
) -> None:
    """The host rebooted while its scheduler read the data file of a firing it had claimed:
    the mark's process, of another boot, cannot be looked up, and each scheduler started
    after the reboot took the firing for under way — never run again, and nothing said. Now a
    mark of this host name and another boot is a scheduler gone; another host's stays under
    way (it may still run there)."""
    spec, data, root, stamp = _missed(tmp_path)
    _marked_under_way(root, spec, data, "another-host", "b0075")  # may run there still
    code, out, err = _scheduler(spec, data, root, runs=False)
    assert code == 0 and out == "" and "now: the" not in err, (out, err)
    assert (
        f"the {stamp} firing is marked under way by a scheduler this machine cannot look up "
        "(pid 4242 on host another-host): left to it"  # the host its mark records
    ) in err, err
    assert _scheduled_runs(root) == []

    _marked_under_way(root, spec, data, os.uname().nodename, "b0075")  # this host, rebooted
    _runs_it_again(spec, data, root, stamp, "its scheduler was killed before its run ")


def test_a_firing_whose_killed_run_is_being_resumed_is_not_run_again_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler killed in its firing's run; a second one resumes that run; a third started
    meanwhile (two schedulers of one schedule, or an operator's) found the first one's mark
    of the firing under way, its process gone, and ran the firing again beside the resume
    ("which failed (its scheduler was killed before its run started): running it again").
    Now the firing's run, running again under a live process, says it is under way."""
    weekly = _slow_weekly(tmp_path, monkeypatch)
    procs: list[subprocess.Popen[str]] = []
    try:
        killed = _held_in_fit(weekly, tmp_path / "first")
        killed.kill()
        killed.wait(30)
        procs.append(_held_in_fit(weekly, tmp_path / "resuming"))  # resumes the killed run
        third = subprocess.Popen(weekly.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=weekly.env)  # fmt: skip
        procs.append(third)
        assert third.stderr is not None
        banner = third.stderr.readline()
        time.sleep(2)  # a run again would have started by now
        os.kill(third.pid, signal.SIGTERM)
        out, err = third.communicate(timeout=120)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert "now: the" not in banner and out == "", (banner, out, err)
    with Registry.open(weekly.root) as reg:
        runs = [r for r in reg.list_runs() if r.options.get("trigger") == "schedule"]
    assert len(runs) == 1, [(r.run_id, r.status) for r in runs]  # the resumed one only


FAILING_FIT_MODULE = """
from sklearn.linear_model import Ridge

class Failing(Ridge):
    def fit(self, X, y, sample_weight=None):
        raise ValueError("this estimator never fits")

def make(alpha=1.0):
    return Failing(alpha=alpha)
"""


def test_a_firing_whose_run_failed_before_its_failure_was_recorded_is_told_by_its_run(
    tmp_path: Path,
) -> None:
    """A scheduler killed after its firing's run failed and before it recorded the failure:
    the next one ran the firing again, rightly, but said "which failed (its scheduler was
    killed before its run started)" of a run that had started and failed. Now its line
    names the run and its error."""
    spec, data, root, stamp = _missed(tmp_path)
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "failfit.py").write_text(FAILING_FIT_MODULE)
    spec.write_text(spec.read_text().replace('"sklearn.linear_model.Ridge"', '"failfit:make"'))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path / "mods"), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    cmd = [sys.executable, "-c", KILLED_AFTER_RUN.replace("clear_failure", "record_failure"),
           "scheduler", str(spec), str(data), "--registry", str(root), "--backend", "local",
           "--max-runs", "1"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 137, (done.stdout, done.stderr)
    with Registry.open(root) as reg:
        (run,) = [r for r in reg.list_runs() if r.options.get("trigger") == "schedule"]
    assert run.status == "failed"

    spec.write_text(spec.read_text().replace('"failfit:make"', '"sklearn.linear_model.Ridge"'))
    code, out, err = _scheduler(spec, data, root, runs=True)
    assert code == 0, (out, err)
    assert f"now: the {stamp} firing, which failed (its run {run.run_id} failed: " in err, err
    assert "running it again (attempt 2 of 2)" in err, err
    assert "killed before its run started" not in err, err
