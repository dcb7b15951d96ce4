"""Firings claimed in the registry (``manymodels.registry.firings``): two schedulers of one
schedule on one registry train each firing once, not once per scheduler; and a scheduler
starting after a firing went unrun (no scheduler was running then) runs it at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry.firings import claim, schedule_id
from manymodels.samples import store_sales
from manymodels.schedule import due_time, trigger
from manymodels.spec import Spec

BIN = Path(sys.executable).parent
SPEC = """
name = "claimed"
partition_by = ["store", "brand"]
target = "units"
time_column = "week"
features = ["price", "deal", "feat"]
min_rows = 20

[validation]
strategy = "last"
size = 8

[[candidates]]
estimator = "sklearn.linear_model.Ridge"

[schedule]
cron = "*/5 * * * * *"
when = ["all"]
"""


@pytest.mark.slow
def test_two_schedulers_of_one_schedule_train_each_firing_once(tmp_path: Path) -> None:
    """Both started together, two firings each, every 5 s: they share at least one firing,
    which one of them trains and the other says it skipped. Before, both trained every
    firing: four runs, each partition trained twice at the shared firings."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    data = tmp_path / "sales.csv"
    store_sales(n_stores=2).to_csv(data, index=False)
    root = tmp_path / "registry"
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
        lines += out.strip().splitlines()
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
    spec = tmp_path / "spec.toml"
    spec.write_text(WEEKLY)
    data = tmp_path / "sales.csv"
    store_sales(n_stores=2).to_csv(data, index=False)
    root = tmp_path / "registry"
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
