"""The mark of a firing under way beats (``registry.firings.MarkBeat``): a scheduler killed
before its run began in a container restarted on the same host (a new pid namespace, the same
boot) left a mark whose process no scheduler could look up, and its firing was never run
again. Now a mark silent for ``MARK_SILENT_AFTER`` is a scheduler gone; one that beats is
left to its scheduler, however long it takes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from factories import sales_files
from test_schedule_claims import BIN
from test_schedule_failures import _missed, _scheduled_runs

from manymodels.registry import Registry
from manymodels.registry.firings import (
    KILLED,
    MARK_SILENT_AFTER,
    FailedFiring,
    MarkBeat,
    beat_mark,
    claim,
    claim_retry,
    clear_failure,
    failed_firing,
    schedule_id,
    under_way,
)
from manymodels.schedule import due_time, trigger
from manymodels.spec import Spec
from manymodels.tempnames import host_boot

# a scheduler of another pid namespace: its pid cannot be looked up from here
ELSEWHERE = "4242-777-0123456789ab"


def _name(spec: Path, data: Path) -> str:
    parsed = Spec.from_dict(tomllib.loads(spec.read_text()))
    plan = parsed.schedule
    assert plan is not None
    return schedule_id(parsed.name, plan.cron, plan.timezone, list(plan.when), str(data))


def _mark(root: Path, name: str, beat: datetime) -> None:
    """The newest firing claimed and marked under way by a scheduler of this host and this
    boot in another container, last refreshed at ``beat``."""
    newest = due_time(trigger("0 3 * * 1", "UTC"), datetime.now(UTC))
    assert newest is not None
    host, boot = host_boot()
    with Registry.open(root) as reg:
        claim(reg.store, name, newest)
        mark = {"due": reg.store.get_meta(name), "attempts": 1, "error": "its scheduler was "
                "killed before its run started", "owner": ELSEWHERE, "host": host,
                "boot": boot, "beat": beat.isoformat()}  # fmt: skip
        reg.store.set_meta(f"{name}:failed", json.dumps(mark))


MARGIN = 10.0
"""Seconds from a scheduler's first look at a watched mark to the mark going silent: room for
its first line to be read and one write to the registry (``_watching``) on a loaded host."""


@contextmanager
def _watching(
    spec: Path, data: Path, root: Path, then: Callable[[Registry], object] = lambda reg: None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A scheduler started on a firing marked under way elsewhere (``_mark``), and its first
    line; killed if it still runs at the block's end. The mark is restamped every 0.1 s to go
    silent ``MARGIN`` s later until that line (the scheduler has read it), then stamped back
    to its first beat, and ``then`` (a refresh, say) is done at once on the registry: to the
    scheduler, a mark refreshed ``MARGIN`` s short of the bound when it looked, whatever its
    start took. Before, a fixed beat left room for the start: each test waited 20-25 s."""
    name, silent = _name(spec, data), timedelta(seconds=MARK_SILENT_AFTER - MARGIN)

    def restamp() -> None:
        try:
            with Registry.open(root) as reg:
                while not stop.wait(0.1):
                    stamp(reg, datetime.now(UTC) - silent)
                stamp(reg, first)  # no beat since the one the scheduler read, or older
                then(reg)
        except BaseException as e:  # said by the test, not lost with this thread
            failed.append(e)

    def stamp(reg: Registry, beat: datetime) -> None:
        mark = json.loads(reg.store.get_meta(f"{name}:failed") or "{}")
        reg.store.set_meta(f"{name}:failed", json.dumps({**mark, "beat": beat.isoformat()}))

    first, stop, failed = datetime.now(UTC) - silent, threading.Event(), list[BaseException]()
    _mark(root, name, first)
    beating = threading.Thread(target=restamp, name="mark-restamp", daemon=True)
    beating.start()
    proc = subprocess.Popen(_cmd(spec, data, root), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        try:
            assert proc.stderr is not None
            banner = proc.stderr.readline()
        finally:
            stop.set()
            beating.join(30)
        assert not beating.is_alive() and not failed, failed or "the mark was never stamped back"
        yield proc, banner
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()


def _run(cmd: list[str], timeout: float) -> tuple[int, str, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"no firing ran: {out} {err}") from None
    return proc.returncode, out, err


def _cmd(spec: Path, data: Path, root: Path) -> list[str]:
    return [str(BIN / "manymodels"), "scheduler", str(spec), str(data), "--registry", str(root),
            "--backend", "local", "--max-runs", "1"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_firing_whose_restarted_containers_scheduler_went_silent_runs_again(
    tmp_path: Path,
) -> None:
    spec, data, root, stamp = _missed(tmp_path)
    _mark(root, _name(spec, data), datetime.now(UTC) - timedelta(seconds=MARK_SILENT_AFTER + 60))
    code, out, err = _run(_cmd(spec, data, root), 120)
    assert code == 0, (out, err)
    assert f"now: the {stamp} firing, which failed (its scheduler was killed before its run " in err
    assert "running it again (attempt 2 of 2)" in err, err
    assert f"(the {stamp} firing, failed: attempt 2 of 2): 4 trained" in out, out
    assert _scheduled_runs(root) == ["completed"]


@pytest.mark.parametrize(("ahead", "under"), [(3 * 3600.0, False), (60.0, True)])
def test_a_mark_stamped_ahead_proves_nothing(ahead: float, under: bool) -> None:
    """A mark whose beat is stamped 3 h ahead of this clock (its scheduler's machine's clock
    runs ahead) read as under way until this clock caught up; it proves nothing now, as a
    run's heartbeat stamped ahead does not. A minute ahead (clocks a little apart) still
    beats."""
    beat = datetime.now(UTC) + timedelta(seconds=ahead)
    mark = FailedFiring(datetime.now(UTC), 1, KILLED, ELSEWHERE, "another-host", "b0075", beat)
    assert under_way(mark) is under


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_firing_whose_scheduler_stamped_its_mark_ahead_runs_again(tmp_path: Path) -> None:
    """A scheduler killed before its run began, on a machine whose clock runs 3 h ahead: its
    mark's last beat is stamped 3 h ahead. A scheduler started here left the firing to it
    until this clock caught up (3 h and ``MARK_SILENT_AFTER``); it runs it again at once."""
    spec, data, root, stamp = _missed(tmp_path)
    _mark(root, _name(spec, data), datetime.now(UTC) + timedelta(hours=3))
    code, out, err = _run(_cmd(spec, data, root), 120)
    assert code == 0, (out, err)
    assert f"now: the {stamp} firing, which failed (its scheduler was killed before its run " in err
    assert f"(the {stamp} firing, failed: attempt 2 of 2): 4 trained" in out, out
    assert _scheduled_runs(root) == ["completed"]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("refreshed", [False, True])
def test_a_beating_mark_is_left_to_its_scheduler_and_taken_over_once_silent(
    tmp_path: Path, refreshed: bool
) -> None:
    """Going silent ``MARGIN`` s after the scheduler looked: the scheduler says when it takes
    the firing over, and does then — unless the mark's scheduler beat meanwhile (it was alive
    after all, in another container): then the firing is its, run once."""
    spec, data, root, stamp = _missed(tmp_path)
    name, due = _name(spec, data), datetime.fromisoformat(stamp)

    def beats(reg: Registry) -> None:  # its scheduler, alive after all
        assert not refreshed or beat_mark(reg.store, name, due, ELSEWHERE)

    with _watching(spec, data, root, beats) as (proc, banner):
        assert f"the {stamp} firing is marked under way by a scheduler this machine cannot " in (
            banner
        )
        # the host its mark records, this one's: another container here, not "another
        # machine or container" (it did not say which)
        here = f"(pid 4242 in another container of this host, {host_boot()[0]}), its mark "
        assert here in banner, banner
        assert "unless refreshed by then" in banner, banner
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    if refreshed:
        assert f"skipped: another scheduler of this schedule ran the {stamp} firing" in out, out
        assert _scheduled_runs(root) == []
    else:
        assert "its scheduler is gone, running it again" in err, err
        taken = "its scheduler gone silent: taken over"
        assert f"(the {stamp} firing, {taken}): 4 trained" in out, out
        assert _scheduled_runs(root) == ["completed"]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_silent_firing_whose_attempts_are_used_up_is_given_up_not_skipped(
    tmp_path: Path,
) -> None:
    """While the scheduler waited for the watched mark to go silent, another scheduler ran
    the firing's last attempt and died too (its mark silent, attempt 2 of 2). Before, the
    take-over found the attempts used up and said "skipped: another scheduler of this
    schedule ran the … firing" (exit 0), the mark left as under way; now it says the firing
    was given up (exit 1 for --max-runs 1) and records it, for the next start to name."""
    spec, data, root, stamp = _missed(tmp_path)
    name = _name(spec, data)

    def last_attempt(reg: Registry) -> None:  # the last attempt, by a scheduler gone since
        mark = json.loads(reg.store.get_meta(f"{name}:failed") or "{}")
        old = datetime.now(UTC) - timedelta(seconds=MARK_SILENT_AFTER + 60)
        mark.update(attempts=2, owner="4243-778-0123456789ab", beat=old.isoformat())
        reg.store.set_meta(f"{name}:failed", json.dumps(mark))

    with _watching(spec, data, root, last_attempt) as (proc, banner):
        assert "unless refreshed by then" in banner, banner
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert "skipped" not in out, out
    assert f"given up: the {stamp} firing ran 2 time(s) of 2 and the scheduler of the " in out
    assert _scheduled_runs(root) == []
    with Registry.open(root) as reg:
        after = failed_firing(reg.store, name)
    assert after is not None and after.owner is None and after.attempts == 2
    again = subprocess.Popen(_cmd(spec, data, root), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:  # the next start names it, and waits for the next firing
        assert again.stderr is not None
        banner = again.stderr.readline()
    finally:
        os.kill(again.pid, signal.SIGKILL)
        again.communicate()
    assert f"the {stamp} firing failed 2 time(s), not run again" in banner, banner


def test_a_mark_beats_until_another_scheduler_takes_its_firing_over(tmp_path: Path) -> None:
    """``MarkBeat`` refreshes the mark of its firing; once another scheduler took the firing
    over (its mark silent past the bound), the next beat says so and the beats stop."""
    due = datetime(2026, 12, 7, 3, tzinfo=UTC)
    with Registry(tmp_path / "registry") as reg:
        name = schedule_id("s", "0 3 * * 1", "UTC", ["changed"], "sales.csv")
        assert claim(reg.store, name, due, ELSEWHERE)
        first = failed_firing(reg.store, name)
        assert first is not None and first.beat is not None

        with MarkBeat(lambda: beat_mark(reg.store, name, due, ELSEWHERE), every=0.05) as beating:
            deadline = time.monotonic() + 30
            while (now := failed_firing(reg.store, name)) is not None and now.beat == first.beat:
                assert time.monotonic() < deadline, "never beat"
                time.sleep(0.02)
            assert now is not None and now.owner == ELSEWHERE and now.beat is not None
            assert now.beat > first.beat and not beating.taken_over.is_set()
            taken = False
            while not taken:  # another scheduler's take-over, between two beats
                seen = failed_firing(reg.store, name)
                assert seen is not None
                taken = claim_retry(reg.store, name, seen, "99-1-0123456789ab")
            assert beating.taken_over.wait(30)
        after = failed_firing(reg.store, name)
        assert after is not None and after.owner == "99-1-0123456789ab" and after.attempts == 2


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("fixed", [True, False])
def test_a_failed_firing_is_run_again_after_its_schedule_was_edited(
    tmp_path: Path, fixed: bool
) -> None:
    """The newest firing failed (its data file missing); the user fixes the file and moves
    the schedule an hour later: the edited schedule is another one (another claim name), so
    its scheduler found nothing to catch up and the failure was forgotten, neither run again
    nor said. Now it is run again once, as the edited schedule's newest firing — or, failing
    again, said at each start."""
    from test_schedule_failures import _scheduler

    spec, data, root, stamp = _missed(tmp_path)
    kept = data.with_name("kept.csv")
    data.rename(kept)
    code, out, err = _scheduler(spec, data, root, runs=True)
    assert code == 1 and " error" in out, (out, err)
    spec.write_text(spec.read_text().replace('cron = "0 3 * * 1"', 'cron = "0 4 * * 1"'))
    if fixed:
        kept.rename(data)
    newest = due_time(trigger("0 4 * * 1", "UTC"), datetime.now(UTC))
    assert newest is not None
    now = newest.isoformat(timespec="seconds")

    code, out, err = _scheduler(spec, data, root, runs=True)
    before = f"now: the {stamp} firing of this schedule before its edit (cron '0 3 * * 1', UTC"
    assert before + ", when all), which failed (" in err, err
    assert f"running it again as the {now} firing (attempt 2 of 2)" in err, err
    if fixed:
        assert code == 0, (out, err)
        why = "failed before the schedule's edit: attempt 2"
        assert f"(the {now} firing, {why}): 4 trained" in out, out
        assert _scheduled_runs(root) == ["completed"]
    else:
        assert code == 1 and " error" in out, (out, err)

    code, out, err = _scheduler(spec, data, root, runs=False)  # nothing more to run
    assert code == 0 and out == "" and "now: the" not in err, (out, err)
    assert _scheduled_runs(root) == (["completed"] if fixed else [])
    if not fixed:
        assert f"the {now} firing failed 2 time(s), not run again: " in err, err


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_an_edited_schedules_firing_that_ran_is_not_run_again_in_any_timezone(
    tmp_path: Path,
) -> None:
    """A scheduler in Europe/Paris killed after its firing's run completed, before it cleared
    the firing's mark; the schedule is then edited. The firing's run names it in Paris time:
    looked up in UTC, it was not found, and the firing was run again as if it had failed."""
    from test_schedule_claims import WEEKLY
    from test_schedule_failures import KILLED_AFTER_RUN, _scheduler

    from manymodels.pipeline import train

    text = WEEKLY.replace('cron = "0 3 * * 1"', 'cron = "0 3 * * 1"\ntimezone = "Europe/Paris"')
    spec, data, root = sales_files(tmp_path, text)
    newest = due_time(trigger("0 3 * * 1", "Europe/Paris"), datetime.now(UTC))
    assert newest is not None
    with Registry(root) as reg:
        train(Spec.from_dict(tomllib.loads(text)), data, reg, backend="local")
        assert claim(reg.store, _name(spec, data), newest - timedelta(days=7))
    cmd = [sys.executable, "-c", KILLED_AFTER_RUN, "scheduler", str(spec), str(data),
           "--registry", str(root), "--backend", "local", "--max-runs", "1"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 137, (done.stdout, done.stderr)
    assert _scheduled_runs(root) == ["completed"]

    spec.write_text(text.replace('cron = "0 3 * * 1"', 'cron = "0 4 * * 1"'))
    code, out, err = _scheduler(spec, data, root, runs=False)
    assert code == 0 and out == "" and "now: the" not in err, (out, err)
    assert _scheduled_runs(root) == ["completed"]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX FIFOs")
def test_a_firing_taken_over_before_its_run_began_is_not_run_by_its_first_scheduler(
    tmp_path: Path,
) -> None:
    """A scheduler held between its claim and its run (suspended, or reading a spec on a
    stalled disk) while another took its firing over checked only whether its beat thread had
    yet found that out: after the hold it went on, at once, before its next beat (up to 30 s
    later), and trained the firing beside the one that took it over — then cleared that
    one's mark. The spec here is a FIFO: the scheduler's read of it at the firing (the
    third) waits until the firing has been taken over. Now the scheduler asks the registry
    before its run begins, and leaves the firing to the other."""
    spec, data, root, stamp = _missed(tmp_path)
    name = _name(spec, data)
    text = spec.read_text()
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    taken: list[str] = []
    done = threading.Event()

    def serve() -> None:
        """Each read of the spec gets its text; one made while the firing is this
        scheduler's finds it taken over first (``claim_retry`` by "another scheduler")."""
        while not done.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader yet
                time.sleep(0.01)
                continue
            with Registry.open(root) as reg:
                mark = failed_firing(reg.store, name)
                if not taken and mark is not None and mark.owner is not None:
                    assert claim_retry(reg.store, name, mark, "99-1-0123456789ab")
                    taken.append(mark.owner)
            os.set_blocking(fd, True)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            time.sleep(0.3)  # its reader closes (read to the end) before the next open

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        code, out, err = _run(_cmd(fifo, data, root), 120)
    finally:
        done.set()
        server.join(10)
    assert taken, (out, err)  # the firing was claimed, then taken over before the run
    assert code == 1, (out, err)
    assert f"the {stamp} firing was taken over by another scheduler" in out, out
    assert _scheduled_runs(root) == []  # not run here: left to the scheduler that took it
    with Registry.open(root) as reg:
        mark = failed_firing(reg.store, name)
    assert mark is not None and mark.owner == "99-1-0123456789ab" and mark.attempts == 2


def test_a_run_that_succeeded_leaves_the_mark_of_the_scheduler_that_took_it_over(
    tmp_path: Path,
) -> None:
    """A scheduler held past the bound once its run had begun finishes that run beside the
    scheduler that took the firing over; its success cleared the other's mark, under way
    (its beats then found no mark: a failure of its run went unrecorded). Now only a mark of
    its own, or a failure recorded, is cleared."""
    due = datetime(2026, 12, 7, 3, tzinfo=UTC)
    first, other = "4242-777-0123456789ab", "99-1-0123456789ab"
    with Registry(tmp_path / "registry") as reg:
        name = schedule_id("s", "0 3 * * 1", "UTC", ["changed"], "sales.csv")
        assert claim(reg.store, name, due, first)
        seen = failed_firing(reg.store, name)
        assert seen is not None and claim_retry(reg.store, name, seen, other)
        clear_failure(reg.store, name, due, first)  # the held scheduler's run succeeded
        mark = failed_firing(reg.store, name)
        assert mark is not None and mark.owner == other and mark.attempts == 2
        assert beat_mark(reg.store, name, due, other)  # the other's beats go on
        clear_failure(reg.store, name, due, other)  # its run succeeded too
        assert failed_firing(reg.store, name) is None
