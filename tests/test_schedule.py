"""Scheduled retraining: ``[schedule]`` in the spec and ``manymodels scheduler``.

The firing tests run the installed command on a six-field cron (seconds first) with
``--max-runs``, so they wait seconds, not until 03:00.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from factories import firing_lines, sales_toml
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import SpecError
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import store_sales
from manymodels.schedule import day_of_week, next_times
from manymodels.spec import Spec

BIN = Path(sys.executable).parent
SPEC = sales_toml(
    "scheduled",
    """[schedule]
cron = "{cron}"
""",
)


def _parse(text: str) -> Spec:
    return Spec.from_dict(tomllib.loads(text))


def _spec(tmp_path: Path, cron: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC.format(cron=cron))
    return path


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("1", "mon"),  # cron's Monday; APScheduler's own 1 is Tuesday
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("5-7", "sun,fri,sat"),
        ("*/3", "sun,wed,sat"),
        ("mon,wed", "mon,wed"),
        ("*", "*"),
    ],
)
def test_day_of_week_reads_as_cron_reads_it(field: str, days: str) -> None:
    assert day_of_week(field) == days


def test_the_issue_example_fires_on_mondays_at_three_local_time() -> None:
    after = datetime(2026, 3, 20, tzinfo=ZoneInfo("Europe/Paris"))  # DST starts on the 29th
    times = next_times("0 3 * * 1", "Europe/Paris", 3, after=after)
    assert [t.strftime("%a %H:%M") for t in times] == ["Mon 03:00"] * 3
    assert [t.utcoffset().total_seconds() / 3600 for t in times] == [1.0, 2.0, 2.0]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("cron", "timezone", "message"),
    [
        ("0 3 * *", "UTC", "has 4 field(s)"),
        ("0 25 * * *", "UTC", "higher than the maximum"),
        ("0 3 * * 8", "UTC", "'8' is not a day"),
        ("0 3 * * ²", "UTC", "'²' is not a day"),  # a digit to str.isdigit, not to int()
        ("0 3 * * */²", "UTC", "bad step '²'"),
        # six fields are seconds first: a year or seconds last was misread or misnamed
        ("0 3 * * * 2027", "UTC", "'2027' is not a day of the week: six fields are read"),
        ("0 3 * * * 5", "UTC", "write the days by name ('0 3 * * * fri')"),
        ("0 0 3 * * 1-5", "UTC", "('0 0 3 * * mon,tue,wed,thu,fri') or use five fields"),
        ("0 3 * * 1", "Mars/Olympus", "unknown timezone 'Mars/Olympus'"),
        ('0 3 * * 1"\nwhen = ["changed", "drifted"]\n#"', "UTC", "'changed' stands alone"),
        # twice: read as neither "changed" alone nor a signal, every partition was retrained
        ('0 3 * * 1"\nwhen = ["changed", "changed"]\n#"', "UTC", "'changed' is given more"),
        ('0 3 * * 1"\nwhen = ["drifted", "stale", "drifted"]\n#"', "UTC", "'drifted' is given"),
    ],
)
def test_a_bad_schedule_is_a_spec_error_naming_it(cron: str, timezone: str, message: str) -> None:
    text = SPEC.format(cron=cron) + f'timezone = "{timezone}"\n'
    with pytest.raises(SpecError, match="schedule") as e:
        _parse(text)
    assert message in str(e.value)


def test_a_schedule_does_not_change_what_is_trained() -> None:
    with_schedule = _parse(SPEC.format(cron="0 3 * * 1"))
    without = _parse(SPEC.split("[schedule]")[0])
    assert with_schedule.spec_hash == without.spec_hash


def test_next_prints_the_coming_firings_and_writes_nothing(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "30 4 * * sat")
    (tmp_path / "data.csv").write_text("a\n1\n")
    args = ["scheduler", str(spec), str(tmp_path / "data.csv"), "--registry",
            str(tmp_path / "r"), "--next", "2"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and result.stderr == "", result.output
    times = [datetime.fromisoformat(line) for line in result.stdout.split()]
    assert len(times) == 2 and all(t.strftime("%a %H:%M") == "Sat 04:30" for t in times)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("as_json", [False, True])
def test_next_warns_of_a_data_file_that_does_not_exist(tmp_path: Path, as_json: bool) -> None:
    """``--next 3 spec.toml missing.csv`` listed the times and said nothing of the file, which
    the scheduler itself warns of at start (a typo was told at the first firing). The same
    one line on stderr now; still exit 0 and the times on stdout (JSON stays parseable):
    --next only lists times, and the file may be written by an upstream job before then."""
    spec = _spec(tmp_path, "30 4 * * sat")
    absent = tmp_path / "missing.csv"
    args = ["scheduler", str(spec), str(absent), "--next", "3", *(["--json"] * as_json)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"warning: {absent}: no such file (yet): each firing fails until it is"
    ]
    said = json.loads(result.stdout)["next"] if as_json else result.stdout.split()
    assert len([datetime.fromisoformat(t) for t in said]) == 3


def test_next_with_json_prints_one_json_line(tmp_path: Path) -> None:
    """``--next 2 --json`` printed the two bare times (``2026-12-12T04:30:00+00:00``: not
    JSON), where --json promises one JSON object a line; a script reading the schedule's
    next firings as JSON failed on the first line."""
    spec = _spec(tmp_path, "30 4 * * sat")
    (tmp_path / "data.csv").write_text("a\n1\n")
    args = ["scheduler", str(spec), str(tmp_path / "data.csv"), "--registry",
            str(tmp_path / "r"), "--next", "2", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and result.stderr == "", result.output
    (line,) = result.stdout.splitlines()
    said = json.loads(line)
    assert said["cron"] == "30 4 * * sat" and said["schedule"] == _parse(spec.read_text()).name
    times = [datetime.fromisoformat(t) for t in said["next"]]
    assert len(times) == 2 and all(t.strftime("%a %H:%M") == "Sat 04:30" for t in times)
    assert not (tmp_path / "r").exists()


def test_a_spec_without_a_schedule_is_one_error_line(tmp_path: Path) -> None:
    spec = tmp_path / "plain.toml"
    spec.write_text(SPEC.split("[schedule]")[0])
    result = CliRunner().invoke(app, ["scheduler", str(spec), "data.csv", "--next", "1"])
    assert result.exit_code == 2  # a spec's problem, as every other schedule error
    assert result.output.strip().splitlines() == [
        f'error: {spec}: no [schedule] table (e.g. cron = "0 3 * * mon")'
    ]


def test_a_cron_that_never_fires_is_one_error_line(tmp_path: Path) -> None:
    """February 31st: --next printed nothing and exited 0, and the scheduler itself said
    "next never" and then waited for ever (the check runs before either)."""
    spec = _spec(tmp_path, "0 3 31 2 *")
    args = ["scheduler", str(spec), "data.csv", "--registry", str(tmp_path / "r"), "--next", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "never fires" in lines[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_schedule_of_drifted_partitions_trains_nothing_when_none_drifted(tmp_path: Path) -> None:
    data = tmp_path / "sales.csv"
    store_sales(n_stores=2).to_csv(data, index=False)
    root = tmp_path / "registry"
    spec = _spec(tmp_path, '*/1 * * * * *"\nwhen = ["drifted", "degraded"]\n#"')
    with Registry(root) as reg:
        train(_parse(spec.read_text()), data, reg, backend="local")
    proc = _scheduler(spec, data, root, "--max-runs", "1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip().endswith("nothing to retrain: no partition is flagged"), out
    assert "retraining drifted or degraded partitions" in err
    with Registry.open(root) as reg:
        assert len(reg.list_runs()) == 1  # the first training only


@pytest.mark.slow
def test_a_flagged_partition_gone_from_the_data_does_not_stop_the_others(tmp_path: Path) -> None:
    """Two partitions are degraded and one of them is gone from the data: every firing
    failed on it ("no rows in the data for partition(s) …") and retrained neither. The other
    has a new week (a degraded partition whose data is unchanged is left out, as `retrain
    --when degraded` leaves it: the same rows would give the same model again); a third,
    degraded too but without new rows, is not retrained."""
    df = store_sales(n_stores=2)
    data = tmp_path / "sales.csv"
    root = tmp_path / "registry"
    spec = _spec(tmp_path, '*/1 * * * * *"\nwhen = ["degraded"]\n#"')
    with Registry(root) as reg:
        train(_parse(spec.read_text()), df, reg, backend="local")
    degraded = (df.brand == "dominicks") | ((df.store == 1) & (df.brand == "tropicana"))
    worse = df[degraded].assign(units=lambda d: d["units"] * 50.0)
    actuals = tmp_path / "actuals.csv"
    worse.to_csv(actuals, index=False)
    result = CliRunner().invoke(app, ["actuals", str(actuals), "--registry", str(root)])
    assert result.exit_code == 0, result.output
    new_week = df[(df.store == 1) & (df.brand == "dominicks")].tail(1)
    new_week = new_week.assign(week=new_week["week"] + pd.Timedelta(days=7))
    kept = df[~((df.store == 2) & (df.brand == "dominicks"))]
    pd.concat([kept, new_week], ignore_index=True).to_csv(data, index=False)
    proc = _scheduler(spec, data, root, "--max-runs", "1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    assert " 1 trained · 0 skipped · 0 failed · 1 flagged without rows in the data" in out, out
    with Registry.open(root) as reg:
        assert sorted(v.version for v in reg.list_versions("store=1,brand=dominicks")) == [1, 2]
        assert [v.version for v in reg.list_versions("store=2,brand=dominicks")] == [1]
        assert [v.version for v in reg.list_versions("store=1,brand=tropicana")] == [1]


def _scheduler(spec: Path, data: Path | str, root: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [str(BIN / "manymodels"), "scheduler", str(spec), str(data), "--registry", str(root),
           "--backend", "local", *extra]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_each_firing_is_a_recorded_run_of_the_changed_partitions(tmp_path: Path) -> None:
    data = tmp_path / "sales.csv"
    store_sales(n_stores=2).to_csv(data, index=False)
    root = tmp_path / "registry"
    proc = _scheduler(_spec(tmp_path, "*/2 * * * * *"), data, root, "--max-runs", "2")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    lines = firing_lines(out)
    assert len(lines) == 2, out
    assert " 4 trained" in lines[0], out
    # nothing changed since: said, and no run of nothing recorded (one was, at every firing)
    assert lines[1].split(" ", 1)[1] == (
        "nothing to train: all 6 partitions have the data they were last trained (or skipped) "
        "on; no run recorded"
    ), out
    with Registry.open(root) as reg:
        runs = reg.list_runs()
    assert len(runs) == 1
    assert all(r.options.get("trigger") == "schedule" for r in runs)
    assert all(r.options.get("cron") == "*/2 * * * * *" for r in runs)
    assert {r.run_id for r in runs} == {lines[0].split(" run ")[1].split(":")[0]}


@pytest.mark.slow
def test_a_file_url_is_the_schedule_of_its_local_path(tmp_path: Path) -> None:
    """`scheduler spec.toml file://localhost/x/sales.csv` read the relative
    `file:/localhost/x/sales.csv` at every firing (a `Path` argument): each firing failed,
    "data file not found". Now the local file, recorded as the plain path is (one schedule,
    whichever way it is written)."""
    data = tmp_path / "sales.csv"
    store_sales(n_stores=2).to_csv(data, index=False)
    root = tmp_path / "registry"
    spec = _spec(tmp_path, "*/2 * * * * *")
    proc = _scheduler(spec, f"file://localhost{data}", root, "--max-runs", "1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert " 4 trained" in firing_lines(out)[0], out
    with Registry.open(root) as reg:
        assert [r.data_source for r in reg.list_runs()] == [str(data)]


@pytest.mark.slow
def test_a_failed_firing_is_one_line_and_the_scheduler_goes_on(tmp_path: Path) -> None:
    missing = tmp_path / "not-yet.csv"
    proc = _scheduler(_spec(tmp_path, "*/1 * * * * *"), missing, tmp_path / "r", "--max-runs", "2")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)  # the last firing failed
    lines = firing_lines(out)
    assert len(lines) == 2 and all(" error: " in line and "not-yet.csv" in line for line in lines)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_stops_a_waiting_scheduler_at_once(tmp_path: Path) -> None:
    proc = _scheduler(_spec(tmp_path, "0 3 1 1 *"), tmp_path / "d.csv", tmp_path / "r")
    assert proc.stderr is not None
    banner = proc.stderr.readline()
    assert banner.startswith("scheduler: scheduled on '0 3 1 1 *' (UTC), retraining changed"), (
        banner
    )
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and time.monotonic() - started < 10
    assert "stopping after the current run" in err
    assert not (tmp_path / "r").exists()  # never fired: nothing was written


def test_a_moot_registry_is_refused_at_start_not_at_the_first_firing(tmp_path: Path) -> None:
    """A ``--registry`` beside a database and store named elsewhere is refused when the
    scheduler starts: at the first firing, days later, it was one failed firing a time."""
    spec = _spec(tmp_path, "0 3 * * mon")
    args = [
        "scheduler",
        str(spec),
        "data.csv",
        "--registry",
        str(tmp_path / "staging"),
        "--registry-db",
        f"sqlite:///{tmp_path}/r.db",
        "--artifacts",
        str(tmp_path / "a"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: --registry {tmp_path / 'staging'} (or ")


# a firing far longer than the test waits (it is stopped at the second Ctrl-C): with 400 trees
# the run could end between the two Ctrl-Cs on a busy machine, and the scheduler exit 0
SLOW = SPEC.replace(
    'estimator = "sklearn.linear_model.Ridge"',
    'estimator = "sklearn.ensemble.RandomForestRegressor"\nparams = {{ n_estimators = [2000] }}',
)


def _running_run(root: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until the scheduler's firing has a run going in the registry."""
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            with sqlite3.connect(f"file:{root / 'registry.db'}?mode=ro", uri=True) as conn:
                if conn.execute("SELECT 1 FROM runs WHERE status = 'running'").fetchone():
                    return
        except sqlite3.Error:
            pass  # not created yet
        time.sleep(0.1)
    raise AssertionError("no firing started")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_second_ctrl_c_during_a_firing_stops_at_once_saying_so(tmp_path: Path) -> None:
    """The first Ctrl-C waits for the firing under way; the second stops at once. The
    handlers were put back while the firing ran, so the second met Python's own: a
    traceback at exit, exit status 0 for a cut-off run, and no word of how to resume it."""
    data = tmp_path / "sales.csv"
    store_sales(n_stores=4).to_csv(data, index=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(SLOW.format(cron="*/1 * * * * *"))
    root = tmp_path / "registry"
    proc = _scheduler(spec, data, root)
    _running_run(root, proc)
    proc.send_signal(signal.SIGINT)
    # the second only once the first was handled: two SIGINTs sent before Python runs its
    # handler are one (a fixed 0.5 s apart, under load, were: the run ended, exit 0)
    seen = []
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if "again to stop now" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=60)
    err = "".join(seen) + rest
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err, err
    assert err.rstrip().endswith(
        "stopped: `manymodels doctor` lists an interrupted run and how to resume it"
    ), err


@pytest.mark.parametrize("cron", ["0 0 3 * * mon-fri", "*/5 * * * * *", "0 0 3 * * ?"])
def test_six_fields_with_the_day_by_name_or_any_day_read_seconds_first(cron: str) -> None:
    after = datetime(2026, 12, 4, 12, tzinfo=ZoneInfo("UTC"))  # a Friday
    times = next_times(cron, "UTC", 2, after=after)
    if cron.startswith("*/5"):
        assert [t.second for t in times] == [0, 5]
    else:
        assert all((t.hour, t.minute, t.second) == (3, 0, 0) for t in times)


def test_a_year_last_cron_is_one_error_line_naming_it(tmp_path: Path) -> None:
    """Before, ``0 3 * * * 5`` (03:00:05 daily for croniter, seconds last) was taken for
    minute 3 of every hour on Fridays, and ``0 3 * * * 2027`` named '2027' not a day."""
    for cron in ("0 3 * * * 2027", "0 3 * * * 5"):
        spec = _spec(tmp_path, cron)
        result = CliRunner().invoke(app, ["scheduler", str(spec), "d.csv", "--next", "2"])
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        assert "six fields are read seconds first" in lines[0] or "by name" in lines[0]


@pytest.mark.slow
def test_json_is_one_object_a_line_per_firing_with_retrains_members(tmp_path: Path) -> None:
    """``--json``: a script reading the scheduler's stdout gets each firing as it happens, as
    ``retrain --json`` says a run (``run``, ``decisions``, ``warnings`` …) or a run of
    nothing (``run`` null, ``reason``, ``unchanged``), with the schedule and the time."""
    spec = tmp_path / "spec.toml"  # no features list: the CSV's row labels are said, not used
    spec.write_text(SPEC.format(cron="*/2 * * * * *").replace('features = ["price", "deal", '
                                                              '"feat"]\n', ""))  # fmt: skip
    data, root = tmp_path / "sales.csv", tmp_path / "registry"
    store_sales(n_stores=2).to_csv(data)  # with its index: a warning at every firing
    proc = _scheduler(spec, data, root, "--max-runs", "2", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.strip().splitlines()]  # each line is JSON
    trained, nothing = [e for e in events if e["event"] != "overlap"]
    with Registry.open(root) as reg:
        (run,) = reg.list_runs()
    assert trained["event"] == "trained" and trained["trained"] is True
    assert trained["run"]["run_id"] == run.run_id and trained["run"]["n_trained"] == 4
    assert {"decisions", "chosen", "failures", "seconds", "registry"} <= set(trained)
    assert (trained["schedule"], trained["cron"]) == ("scheduled", "*/2 * * * * *")
    assert datetime.fromisoformat(trained["at"]) < datetime.fromisoformat(trained["next"])
    (warning,) = trained["warnings"]
    assert "column 'Unnamed: 0' has no name in the header" in warning
    assert nothing["event"] == "nothing" and nothing["run"] is None
    assert nothing["unchanged"] == 6 and nothing["reason"].startswith("nothing to train: all 6")
    assert nothing["warnings"] == [warning] and nothing["next"] is None  # the last one
    assert "warning:" not in err  # said in the JSON, not again on stderr
