"""Firings claimed in the registry (``manymodels.registry.firings``): two schedulers of one
schedule on one registry train each firing once, not once per scheduler; and a scheduler
starting after a firing went unrun (no scheduler was running then) runs it at once."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from factories import firing_lines, make_run, sales_files, sales_toml, slowfit_env, wait_for

from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry.firings import claim, schedule_id
from manymodels.samples import store_sales
from manymodels.schedule import due_time, trigger
from manymodels.spec import Spec

BIN = Path(sys.executable).parent
SPEC = sales_toml(
    "claimed",
    """[schedule]
cron = "*/5 * * * * *"
when = ["all"]
""",
)


@pytest.mark.slow
def test_two_schedulers_of_one_schedule_train_each_firing_once(tmp_path: Path) -> None:
    """Both started together, two firings each, every 5 s: they share at least one firing,
    which one of them trains and the other says it skipped. Before, both trained every
    firing: four runs, each partition trained twice at the shared firings."""
    spec, data, root = sales_files(tmp_path, SPEC)
    with Registry(root) as reg:  # the registry exists before either starts
        train(Spec.from_dict(tomllib.loads(SPEC)), data, reg, backend="local")
    cmd = [str(BIN / "manymodels"), "scheduler", str(spec), str(data), "--registry", str(root),
           "--backend", "local", "--max-runs", "2"]  # fmt: skip
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    lines = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, (out, err)
        lines += firing_lines(out)
    assert len(lines) == 4, lines
    trained = [line for line in lines if " run " in line]
    skipped = [line for line in lines if " skipped: another scheduler" in line]
    assert len(trained) + len(skipped) == 4 and skipped, lines
    with Registry.open(root) as reg:
        runs = [r for r in reg.list_runs() if r.options.get("trigger") == "schedule"]
    assert len(runs) == len(trained)
    dues = [r.options["due"] for r in runs]
    assert len(set(dues)) == len(dues), dues  # no firing trained twice
    for line in skipped:  # the firing skipped is one the other trained
        assert line.split(" ran the ")[1].split(" firing")[0] in dues, (line, dues)


def test_a_firing_is_claimed_once_and_never_after_a_later_one(tmp_path: Path) -> None:
    with Registry(tmp_path / "registry") as reg:
        name = schedule_id("s", "0 3 * * 1", "UTC", ["changed"], "sales.csv")
        assert name != schedule_id("s", "0 3 * * 1", "UTC", ["drifted"], "sales.csv")
        assert name != schedule_id("s", "0 3 * * 1", "UTC", ["changed"], "sales-eu.csv")
        monday = datetime(2026, 12, 7, 3, tzinfo=UTC)
        assert claim(reg.store, name, monday)
        assert not claim(reg.store, name, monday)
        assert not claim(reg.store, name, monday.astimezone(ZoneInfo("Asia/Tokyo")))  # same
        assert not claim(reg.store, name, datetime(2026, 11, 30, 3, tzinfo=UTC))
        assert claim(reg.store, name, datetime(2026, 12, 14, 3, tzinfo=UTC))


def test_the_due_firing_is_the_newest_not_after_now_even_in_an_autumn_night() -> None:
    """In the hour repeated in autumn, 02:30 fires twice (APScheduler's arithmetic): each
    is its own firing, told apart in UTC (compared in the zone they were one wall time, and
    the look-up never ended)."""
    paris = ZoneInfo("Europe/Paris")
    when = trigger("30 2 * * *", "Europe/Paris")
    for now, due in [
        ("2026-10-25T00:31:00+00:00", "2026-10-25T00:30:00+00:00"),  # the first 02:30
        ("2026-10-25T01:31:00+00:00", "2026-10-25T01:30:00+00:00"),  # the second
        ("2026-10-26T01:29:00+00:00", "2026-10-25T01:30:00+00:00"),
        ("2026-03-29T01:31:00+00:00", "2026-03-29T01:30:00+00:00"),  # 02:30 skipped: 03:30
    ]:
        found = due_time(when, datetime.fromisoformat(now).astimezone(paris))
        assert found is not None and found.astimezone(UTC).isoformat() == due, now
    weekly = trigger("0 3 * * 1", "UTC")
    late = datetime(2026, 12, 7, 9, 0, 1, tzinfo=UTC)  # a firing run six hours late
    assert due_time(weekly, late) == datetime(2026, 12, 7, 3, tzinfo=UTC)


WEEKLY = SPEC.replace('cron = "*/5 * * * * *"', 'cron = "0 3 * * 1"')  # Mondays 03:00


def _weekly_registry(tmp_path: Path, claimed: datetime | None) -> tuple[Path, Path, Path]:
    """A registry trained once, its weekly schedule's newest firing claimed at ``claimed``."""
    spec, data, root = sales_files(tmp_path, WEEKLY)
    parsed = Spec.from_dict(tomllib.loads(WEEKLY))
    with Registry(root) as reg:
        train(parsed, data, reg, backend="local")
        if claimed is not None:
            plan = parsed.schedule
            assert plan is not None
            when = list(plan.when)
            name = schedule_id(parsed.name, plan.cron, plan.timezone, when, str(data))
            assert claim(reg.store, name, claimed)
    return spec, data, root


class SlowWeekly(NamedTuple):
    """A registry trained once with the slow-fit estimator (``SLOW_FIT_MODULE``) on
    a weekly schedule whose firing before ``newest`` is claimed: ``newest`` is due (missed)."""

    spec: Path
    data: Path
    root: Path
    newest: datetime
    env: dict[str, str]
    """The environment that finds ``slowfit`` (and holds no ``SLOWFIT_DIR``)."""
    cmd: list[str]
    """``manymodels scheduler … --max-runs 1`` of this schedule."""


def _slow_weekly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, when: str = "all", older: bool = False
) -> SlowWeekly:
    """``SlowWeekly`` with ``when = [when]``; ``older``: trained on all but the data's last
    week (the scheduler's data is a week newer than the versions)."""
    newest = due_time(trigger("0 3 * * 1", "UTC"), datetime.now(UTC))
    assert newest is not None
    env = slowfit_env(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))  # the spec names it
    text = WEEKLY.replace('"sklearn.linear_model.Ridge"', '"slowfit:make"').replace(
        'when = ["all"]', f'when = ["{when}"]'
    )
    spec, data, root = tmp_path / "spec.toml", tmp_path / "sales.csv", tmp_path / "registry"
    spec.write_text(text)
    sales = store_sales(n_stores=2)
    sales.to_csv(data, index=False)
    start = data
    if older:
        start = tmp_path / "start.csv"
        sales[sales["week"] < sales["week"].max()].to_csv(start, index=False)
    parsed = Spec.from_dict(tomllib.loads(text))
    # trained here, as ``_weekly_registry`` does: a ``manymodels train`` child spent ~3 s of
    # each test importing; this process's ``slowfit`` (found on the path prepended above,
    # no ``SLOWFIT_DIR`` here) stays imported: every test's is ``SLOW_FIT_MODULE``, and a
    # fresh import would not be the class the resolved ``slowfit:make`` builds (pickle refuses)
    assert "SLOWFIT_DIR" not in os.environ
    with Registry(root) as reg:
        first = train(parsed, start, reg, backend="local")
        assert first.run.status == "completed" and not first.failures, first
        plan = parsed.schedule
        assert plan is not None
        name = schedule_id(parsed.name, plan.cron, plan.timezone, list(plan.when), str(data))
        # last week's ran: the newest Monday is caught up
        assert claim(reg.store, name, newest - timedelta(days=7))
    cmd = [str(BIN / "manymodels"), "scheduler", str(spec), str(data), "--registry", str(root),
           "--backend", "local", "--max-runs", "1"]  # fmt: skip
    return SlowWeekly(spec, data, root, newest, env, cmd)


def _held_in_fit(weekly: SlowWeekly, blocked: Path, *, after: int = 0) -> subprocess.Popen[str]:
    """A scheduler of ``weekly`` held in its run's fit past ``after`` fits (``SLOWFIT_DIR``:
    ``blocked``, made here), returned once it is there; killed if it never gets there."""
    blocked.mkdir()
    env = {**weekly.env, "SLOWFIT_DIR": str(blocked), "SLOWFIT_AFTER": str(after)}
    proc = subprocess.Popen(weekly.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            text=True, env=env)  # fmt: skip
    try:
        wait_for(blocked / "fitting", "the firing claimed, its run held in a fit", process=proc)
    except BaseException:
        proc.kill()
        proc.wait(30)
        raise
    return proc


@pytest.mark.slow
def test_a_firing_missed_while_no_scheduler_ran_runs_at_start(tmp_path: Path) -> None:
    """The schedule last fired a week or more ago and the newest Monday 03:00 went unrun (the
    host was down then): a scheduler starting now runs it at once, once. Before, it waited
    for the next Monday: a week more on last week's models."""
    newest = due_time(trigger("0 3 * * 1", "UTC"), datetime.now(UTC))
    assert newest is not None
    spec, data, root = _weekly_registry(tmp_path, newest - timedelta(days=7))
    cmd = [str(BIN / "manymodels"), "scheduler", str(spec), str(data), "--registry", str(root),
           "--backend", "local", "--max-runs", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (out, err)
    stamp = newest.isoformat(timespec="seconds")
    assert f"now: the {stamp} firing, missed" in err, err
    assert f"(the {stamp} firing, missed): 4 trained" in out, out
    with Registry.open(root) as reg:
        runs = [r for r in reg.list_runs() if r.options.get("trigger") == "schedule"]
    assert [r.options["due"] for r in runs] == [stamp]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("claimed", ["newest", "never", "missed, --no-catch-up"])
def test_no_firing_is_caught_up_when_none_was_missed(tmp_path: Path, claimed: str) -> None:
    """The newest firing ran, or this schedule never ran on this registry (nothing to tell
    a missed firing by), or the user said --no-catch-up: the scheduler waits for the next
    one."""
    newest = due_time(trigger("0 3 * * 1", "UTC"), datetime.now(UTC))
    assert newest is not None
    last = {"newest": newest, "never": None}.get(claimed, newest - timedelta(days=7))
    spec, data, root = _weekly_registry(tmp_path, last)
    told = ["--no-catch-up"] if "no-catch-up" in claimed else []
    cmd = [str(BIN / "manymodels"), "scheduler", str(spec), str(data), "--registry", str(root),
           "--backend", "local", *told]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    banner = proc.stderr.readline()
    assert banner.startswith("scheduler: claimed on '0 3 * * 1'") and "missed" not in banner
    time.sleep(2)  # a catch-up would have started by now
    os.kill(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out == ""
    with Registry.open(root) as reg:
        assert [r.options.get("trigger") for r in reg.list_runs()] == [None]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("data_changed", "busy"), [(False, False), (True, False), (False, True)])
def test_a_firing_whose_scheduler_was_killed_in_its_run_is_resumed_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_changed: bool, busy: bool
) -> None:
    """A scheduler killed (a reboot, the OOM killer) while its firing's run trains, then
    started again: it resumes that run at once and the run completes — or, when the data
    file changed meanwhile (a resume would be refused), runs the firing afresh. Before, the
    firing counted as done (it was claimed), so the scheduler waited for the next Monday,
    and the run stayed "running (process gone)". The kill lands where the estimator (a
    factory on PYTHONPATH, slow only where SLOWFIT_DIR is set) says it is fitting. ``busy``:
    60 runs (router retrain jobs) came after it; the firing's run was looked for among the 50
    newest, not found, and the firing ran afresh beside its killed run."""
    weekly = _slow_weekly(tmp_path, monkeypatch)
    newest, env, cmd, root, data = weekly.newest, weekly.env, weekly.cmd, weekly.root, weekly.data
    killed = _held_in_fit(weekly, tmp_path / "blocked")
    killed.kill()
    killed.wait(30)
    with Registry.open(root) as reg:
        (run,) = [r for r in reg.list_runs() if r.options.get("trigger") == "schedule"]
    assert run.killed
    if busy:
        with Registry.open(root) as reg:
            for i in range(60):
                job = dataclasses.replace(make_run(f"job{i}"), status="completed")
                reg.store.create_run(dataclasses.replace(job, options={"retrain": True}))
    if data_changed:
        table = pd.read_csv(data)
        table.assign(units=table["units"] + 1.0).to_csv(data, index=False)

    again = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)  # fmt: skip
    try:
        assert again.stderr is not None
        banner = again.stderr.readline()
        stamp = newest.isoformat(timespec="seconds")
        assert f"now: the {stamp} firing, whose run {run.run_id} was killed: resuming" in banner
        out, err = again.communicate(timeout=120)
    finally:
        if again.poll() is None:
            again.kill()
            again.communicate()
    assert again.returncode == 0, (out, err)
    with Registry.open(root) as reg:
        runs = [r for r in reg.list_runs(limit=1000) if r.options.get("trigger") == "schedule"]
    if data_changed:  # the killed run cannot be finished on other data: a run of its own
        assert [r.status for r in runs] == ["completed", "running"] and runs[1].killed
        killed = f"its run {run.run_id} killed"  # not "missed": the first line's words
        assert f"run {runs[0].run_id} (the {stamp} firing, {killed}): 4 trained" in out, out
    else:
        assert [(r.run_id, r.status) for r in runs] == [(run.run_id, "completed")]
        killed = f"its run {run.run_id} killed"
        assert f"run {run.run_id} (the {stamp} firing, {killed}): 4 trained" in out, out


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_killed_firing_of_stale_partitions_is_resumed_over_the_ones_it_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """when = ["stale"]: the partitions its killed run retrained are no longer stale, so a
    resume naming those flagged now only was refused (another set of partitions); it names
    those flagged now and those the run finished, and completes the run. The versions are
    made 60 days old in the database (what makes them stale): the only thing not real."""
    # trained a week before the data the scheduler reads: a stale partition whose data is
    # unchanged since its version is left out (the same rows would give the same model)
    weekly = _slow_weekly(tmp_path, monkeypatch, when="stale", older=True)
    old = (datetime.now(UTC) - timedelta(days=60)).isoformat(timespec="microseconds")
    with Registry.open(weekly.root) as reg, reg.store.engine.begin() as conn:
        conn.exec_driver_sql("update model_versions set created_at = ?", (old,))
    root, cmd, env = weekly.root, weekly.cmd, weekly.env
    killed = _held_in_fit(weekly, tmp_path / "blocked", after=4)  # two fitted, a third fitting
    killed.kill()
    killed.wait(30)
    with Registry.open(root) as reg:
        (run,) = [r for r in reg.list_runs() if r.options.get("trigger") == "schedule"]
        assert run.killed and 0 < run.n_trained < run.n_partitions, run

    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert f"run {run.run_id} was killed: resuming it" in again.stderr, again.stderr
    with Registry.open(root) as reg:
        runs = [r for r in reg.list_runs() if r.options.get("trigger") == "schedule"]
        assert [(r.run_id, r.status, r.n_trained) for r in runs] == [
            (run.run_id, "completed", run.n_partitions)
        ]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_firing_whose_run_is_killed_at_every_resume_is_given_up_not_resumed_for_ever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run the OOM killer ends at each try, its scheduler restarted by a service manager:
    each start resumed the killed run again, in a loop for ever. Now the resume counts as the
    firing's second attempt (``FIRING_ATTEMPTS``); killed again, the next start names the
    firing and waits for the next one."""
    weekly = _slow_weekly(tmp_path, monkeypatch)
    for i in range(2):  # the firing, then its resume: each killed in a fit
        killed = _held_in_fit(weekly, tmp_path / f"blocked{i}")
        killed.kill()
        killed.wait(30)
    with Registry.open(weekly.root) as reg:
        (run,) = [r for r in reg.list_runs() if r.options.get("trigger") == "schedule"]
    assert run.killed
    third = subprocess.Popen(weekly.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=weekly.env)  # fmt: skip
    try:
        assert third.stderr is not None
        banner = third.stderr.readline()
    finally:
        third.send_signal(signal.SIGTERM)  # before: after the run it resumed once more
        try:
            third.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            third.kill()
            third.communicate()
    stamp = weekly.newest.isoformat(timespec="seconds")
    assert "resuming" not in banner, banner
    assert f"the {stamp} firing failed 2 time(s), not run again: its run {run.run_id} was " in (
        banner
    )
    with Registry.open(weekly.root) as reg:
        runs = [r for r in reg.list_runs() if r.options.get("trigger") == "schedule"]
    assert [(r.run_id, r.killed) for r in runs] == [(run.run_id, True)]
