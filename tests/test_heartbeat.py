"""A running run's heartbeat (``manymodels.heartbeat``): what tells a run whose process is
gone on another machine — where its pid cannot be looked up — from one still training there.
Runs on "another machine" are real runs whose recorded owner names a machine id that is not
this one, as a run started elsewhere on a shared registry records it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import (
    ago,
    linear_frame,
    make_run,
    mark_running,
    other_machine_tag,
    spec_dict,
    wait_for,
)

from manymodels.doctor import check
from manymodels.exceptions import RunTakenOver, TrainingError
from manymodels.heartbeat import SILENT_AFTER, Heartbeat, silent_for, spoken
from manymodels.pipeline import train
from manymodels.registry import Registry


def test_silence_is_counted_only_past_the_limit_and_only_for_running_runs() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    beat = (now - timedelta(seconds=SILENT_AFTER + 5)).isoformat()
    assert silent_for("running", beat, now) == pytest.approx(SILENT_AFTER + 5)
    assert silent_for("running", (now - timedelta(seconds=5)).isoformat(), now) is None
    assert silent_for("completed", beat, now) is None
    assert silent_for("running", None, now) is None  # recorded before heartbeats
    assert silent_for("running", "not a time", now) is None
    assert [spoken(s) for s in (5, 95, 7300, 3 * 86400)] == ["5 s", "1 min", "2 h", "3 days"]


def test_a_heartbeat_beats_until_its_block_ends(tmp_path: Path) -> None:
    with Registry(tmp_path / "reg") as reg:
        reg.store.create_run(make_run("r1"))
        first = reg.get_run("r1").heartbeat_at
        started = reg.get_run("r1").started_at
        assert first is not None and first >= started  # a new run has just shown it is alive
        with Heartbeat(reg.store, "r1", every=0.02):
            wait_for(
                lambda: reg.get_run("r1").heartbeat_at != first,
                "a beat after the run's first", timeout=10, every=0.01,
            )  # fmt: skip
        last = reg.get_run("r1").heartbeat_at
        assert last is not None and first is not None and last > first
        time.sleep(0.1)
        assert reg.get_run("r1").heartbeat_at == last  # the block ended: no more beats
        reg.store.finish_run("r1", "completed")
        reg.store.beat("r1")  # a finished run is not brought back to life
        assert reg.get_run("r1").heartbeat_at == last


def _trained(root: Path) -> tuple[dict[str, Any], Any, str]:
    spec, df = spec_dict(), linear_frame(3, 30)
    summary = train(spec, df, root, backend="local")
    assert summary.run.heartbeat_at is not None
    return spec, df, summary.run.run_id


def test_a_run_beating_on_another_machine_is_not_resumed_here(tmp_path: Path) -> None:
    """While its process elsewhere still beats, a resume here would train it twice: refused.
    Silent past ``SILENT_AFTER``, it reads so — in ``runs``, in ``doctor`` — and resumes."""
    root = tmp_path / "reg"
    spec, df, run_id = _trained(root)
    with Registry(root) as reg:
        mark_running(reg, run_id, other_machine_tag(), ago(5))
        run = reg.get_run(run_id)
        assert run.state == "running" and run.silence is None and not run.killed
        (problem,) = [p for p in check(reg).problems if p.kind == "unfinished_run"]
        assert "is running (process 4242 on another machine, heartbeat at" in problem.message
    with pytest.raises(TrainingError, match="still running \\(process 4242 on another machine"):
        train(spec, df, root, backend="local", resume=run_id)
    with Registry(root) as reg:
        mark_running(reg, run_id, other_machine_tag(), ago(2 * 3600 + 30))
        run = reg.get_run(run_id)
        assert run.state == "running (no heartbeat for 2 h)" and not run.killed
        (problem,) = [p for p in check(reg).problems if p.kind == "unfinished_run"]
        assert "has sent no heartbeat for 2 h: finish it with" in problem.message
        assert "but process 4242 on another machine has sent" in problem.message
    resumed = train(spec, df, root, backend="local", resume=run_id)
    assert resumed.run.status == "completed" and resumed.run.run_id == run_id


def test_doctor_names_the_host_a_run_elsewhere_recorded(tmp_path: Path) -> None:
    """Doctor said "its process elsewhere" of a run beating on another machine, and "its
    process (on another machine, or before a reboot)" of one gone silent there, though the run
    recorded its host: it names it now, as ``RunBusy`` does (``run_busy.whereabouts``)."""
    root = tmp_path / "reg"
    _, _, run_id = _trained(root)
    with Registry(root) as reg:
        mark_running(reg, run_id, other_machine_tag(), ago(5), host="build-7")
        (problem,) = [p for p in check(reg).problems if p.kind == "unfinished_run"]
        assert "is running (process 4242 on host build-7, heartbeat at " in problem.message
        assert "elsewhere" not in problem.message, problem.message
        mark_running(reg, run_id, other_machine_tag(), ago(2 * 3600 + 30), host="build-7")
        (problem,) = [p for p in check(reg).problems if p.kind == "unfinished_run"]
        assert "but process 4242 on host build-7 has sent no heartbeat for 2 h" in problem.message
        assert "reboot" not in problem.message, problem.message


def test_a_run_recorded_before_heartbeats_claims_nothing(tmp_path: Path) -> None:
    """No heartbeat at all (a run of an older manymodels): neither silent nor beating, so its
    state is what it was, and a resume is left to the owner's pid where it can be read."""
    root = tmp_path / "reg"
    spec, df, run_id = _trained(root)
    with Registry(root) as reg:
        mark_running(reg, run_id, other_machine_tag(), None)
        run = reg.get_run(run_id)
        assert run.state == "running" and run.silence is None
    resumed = train(spec, df, root, backend="local", resume=run_id)
    assert resumed.run.status == "completed"


def test_the_first_beat_is_at_once(tmp_path: Path) -> None:
    """A run may wait between its creation and its work (Ray starting): the heartbeat says
    it is alive as soon as it starts, not one interval later."""
    with Registry(tmp_path / "reg") as reg:
        reg.store.create_run(make_run("r1"))
        first = reg.get_run("r1").heartbeat_at
        with Heartbeat(reg.store, "r1", every=3600):
            wait_for(
                lambda: reg.get_run("r1").heartbeat_at != first,
                "a beat long before the hour's interval", timeout=10, every=0.01,
            )  # fmt: skip


UNREACHABLE = """
import sys
sys.path.insert(0, sys.argv[2])
from factories import linear_frame, spec_dict
from manymodels.exceptions import TrainingError
from manymodels.pipeline import train
try:
    train(spec_dict(), linear_frame(3, 30), sys.argv[1], backend="ray", ray_address="127.0.0.1:9")
except TrainingError as e:
    print("refused:", e)
"""


def test_a_backend_that_cannot_start_fails_the_run(tmp_path: Path) -> None:
    """Nothing listens at the Ray address: the run is recorded failed (it stayed running).
    In a process of its own: one that has Ray running already would use it."""
    import subprocess
    import sys

    root = tmp_path / "reg"
    tests = str(Path(__file__).parent)
    out = subprocess.run(
        [sys.executable, "-c", UNREACHABLE, str(root), tests],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert "refused: cannot start or reach the Ray cluster at 127.0.0.1:9" in out.stdout
    with Registry(root) as reg:
        (run,) = reg.list_runs()
    assert run.status == "failed" and "Ray cluster" in (run.error or "")


def test_two_processes_taking_over_one_silent_run_one_is_refused(tmp_path: Path) -> None:
    """Both judged the run silent from the same look; the writes are serialised, and the
    reopen is conditional on what was seen: the second finds the run changed."""
    with Registry(tmp_path / "reg") as reg:
        reg.store.create_run(make_run("r1"))
        mark_running(reg, "r1", other_machine_tag(), ago(3 * 3600))
        run = reg.get_run("r1")
        seen = (run.status, run.heartbeat_at)
        reg.store.reopen_run("r1", 0, owner="first", seen=seen)
        with pytest.raises(RunTakenOver, match="changed while this process looked at it"):
            reg.store.reopen_run("r1", 0, owner="second", seen=seen)
        assert reg.get_run("r1").options["owner"] == "first"


def test_a_process_woken_after_a_takeover_writes_nothing_more(tmp_path: Path) -> None:
    """A process paused past its heartbeat's silence (a suspended laptop, a frozen VM) is
    taken over by a resume elsewhere, then wakes: its next commit is refused, it neither
    records its partitions a second time nor closes the run, and it stops with one line."""
    from manymodels.pipeline import Progress

    root = tmp_path / "reg"
    spec, df = spec_dict(), linear_frame(8, 30)
    elsewhere = other_machine_tag()
    seen: list[int] = []

    def takeover_after_first_chunk(p: Progress) -> None:
        seen.append(p.trained)
        if p.trained and len(seen) == 2:  # one chunk committed: the run is resumed elsewhere
            with Registry(root) as other:
                (run,) = other.list_runs()
                other.store.reopen_run(run.run_id, run.n_partitions, owner=elsewhere)

    with pytest.raises(TrainingError, match=r"resumed by process 4242 on another machine"):
        train(spec, df, root, backend="local", progress=takeover_after_first_chunk)
    assert len(seen) == 2  # no chunk after the takeover was committed
    with Registry(root) as reg:
        (run,) = reg.list_runs()
        outcomes = [o for o in reg.store.run_outcomes(run.run_id) if o.key != "__fallback__"]
        assert run.status == "running" and run.options["owner"] == elsewhere  # not closed
        assert run.n_trained == seen[1] == len(outcomes) < 8
        assert reg.store.beat(run.run_id, owner=elsewhere)
        assert not reg.store.beat(run.run_id, owner="1-2-" + "a" * 12)  # the woken process
        with pytest.raises(RunTakenOver):
            reg.store.finish_run(run.run_id, "failed", owner="1-2-" + "a" * 12)
    with Registry(root) as reg:
        assert reg.get_run(run.run_id).status == "running"


def test_a_heartbeat_stops_once_its_run_is_taken_over(tmp_path: Path) -> None:
    with Registry(tmp_path / "reg") as reg:
        reg.store.create_run(make_run("r1"))
        mark_running(reg, "r1", "mine", ago(1))
        reg.store.reopen_run("r1", 0, owner=other_machine_tag())
        taken = reg.get_run("r1").heartbeat_at
        with Heartbeat(reg.store, "r1", "mine", every=0.01) as beats:
            assert beats.taken_over.wait(10)
        assert reg.get_run("r1").heartbeat_at == taken  # the woken process left no beat


def test_a_reopen_returns_what_the_run_recorded_up_to_it(tmp_path: Path) -> None:
    """A paused process may commit a chunk between a resume's look at the run and its reopen
    (its heartbeat thread wakes later than its main thread): the keys the resume skips are
    read in the reopen's own transaction, so they include that chunk."""
    from manymodels.registry.entities import PartitionOutcome

    with Registry(tmp_path / "reg") as reg:
        reg.store.create_run(make_run("r1"))
        mark_running(reg, "r1", other_machine_tag(), ago(3 * 3600))
        seen_then = reg.store.recorded_keys("r1")
        late = PartitionOutcome("k=late", "skipped", "", "", 3, "fp")
        reg.store.record("r1", [], [late], libraries={}, owner=other_machine_tag())
        run = reg.get_run("r1")  # the late commit changed neither status nor heartbeat
        done = reg.store.reopen_run("r1", 1, owner="me", seen=(run.status, run.heartbeat_at))
        assert "k=late" not in seen_then and done == {"k=late"}
        with pytest.raises(RunTakenOver, match=r"resumed by another process while this one"):
            reg.store.record("r1", [], [late], libraries={}, owner=other_machine_tag())


def test_work_stops_once_the_heartbeat_finds_the_run_taken_over(tmp_path: Path) -> None:
    """The heartbeat's finding alone stops the work at the next finished task, before any
    commit: here the run's record still names this process (so no commit would be refused),
    and nothing is recorded."""
    import threading

    from manymodels.data import prepare
    from manymodels.execution import InProcessBackend
    from manymodels.run_chunks import Tally, execute
    from manymodels.run_plan import plan_run
    from manymodels.spec import Spec

    spec = Spec.coerce(spec_dict())
    table, _ = prepare(spec, linear_frame(4, 30))
    with Registry(tmp_path / "reg") as reg:
        plan = plan_run(reg, spec, table, "frame", resume=None, only=None, changed_only=False,
                        notes={})  # fmt: skip
        taken = threading.Event()
        taken.set()
        with pytest.raises(RunTakenOver, match=f"run {plan.run_id} was resumed by process"):
            execute(reg, spec, table, plan, InProcessBackend(), strict=False, progress=None,
                    tally=Tally(run_id=plan.run_id), taken_over=taken)  # fmt: skip
        assert reg.store.run_outcomes(plan.run_id) == []
        assert reg.get_run(plan.run_id).n_trained == 0


def test_ctrl_c_after_a_takeover_says_so_instead_of_offering_a_resume(tmp_path: Path) -> None:
    """Ctrl-C in a process whose run another one resumed: the run is that process's to close,
    so the answer is the takeover's one line, not "finish it with --resume"."""
    root = tmp_path / "reg"
    spec, df = spec_dict(), linear_frame(8, 30)

    def takeover_then_ctrl_c(p: Any) -> None:
        if p.trained:
            with Registry(root) as other:
                (run,) = other.list_runs()
                other.store.reopen_run(run.run_id, run.n_partitions, owner=other_machine_tag())
            raise KeyboardInterrupt

    with pytest.raises(TrainingError, match="resumed by process 4242 on another machine"):
        train(spec, df, root, backend="local", progress=takeover_then_ctrl_c)
    with Registry(root) as reg:
        (run,) = reg.list_runs()
        assert run.status == "running" and run.error is None  # left to its new owner


def test_doctor_notes_a_run_training_now_and_does_not_fail_on_it(tmp_path: Path) -> None:
    """A ``doctor`` from cron exited 1 whenever it overlapped a healthy ``train``: a run whose
    process lives here, or beats elsewhere, is a note; a silent one is still a problem."""
    from typer.testing import CliRunner

    from manymodels.cli import app
    from manymodels.tempnames import writer_tag

    root = tmp_path / "reg"
    _, _, run_id = _trained(root)
    for owner in (writer_tag(), other_machine_tag()):  # this live process; a beating one
        with Registry(root) as reg:
            mark_running(reg, run_id, owner, ago(5))
        out = CliRunner().invoke(app, ["doctor", "--registry", str(root)])
        assert out.exit_code == 0, out.output
        first, last = out.stdout.strip().splitlines()
        assert first.startswith(f"note: run {run_id} ") and " is running (" in first
        assert last.startswith("ok: ") and last.endswith("; no problems")
        shown = json.loads(
            CliRunner().invoke(app, ["doctor", "--registry", str(root), "--json"]).stdout
        )
        assert shown["ok"] and shown["problems"] == [] and len(shown["notes"]) == 1
    for stamp in (ago(-3 * 3600), "garbage"):  # a clock ahead, or no time: no proof of life
        with Registry(root) as reg:
            mark_running(reg, run_id, other_machine_tag(), stamp)
        assert CliRunner().invoke(app, ["doctor", "--registry", str(root)]).exit_code == 1
    with Registry(root) as reg:
        mark_running(reg, run_id, other_machine_tag(), ago(2 * 3600 + 30))
    silent = CliRunner().invoke(app, ["doctor", "--registry", str(root), "--json"])
    assert silent.exit_code == 1
    (problem,) = json.loads(silent.stdout)["problems"]
    assert problem["note"] is False and "has sent no heartbeat for 2 h" in problem["message"]


def test_a_beat_stamped_ahead_of_this_clock_is_not_beating(tmp_path: Path) -> None:
    """`Run.beating` was true for a heartbeat stamped two hours ahead (a clock running ahead
    where the run beat): each caller had to check `ahead` besides, or took such a run for a
    live one. Now it is not beating, and says how far ahead it is; a beat a minute ahead
    (within the silence limit) or a few seconds ago still is."""
    root = tmp_path / "reg"
    _, _, run_id = _trained(root)
    with Registry(root) as reg:
        for stamp, beating in ((ago(-2 * 3600 - 30), False), (ago(-60), True), (ago(5), True)):
            mark_running(reg, run_id, other_machine_tag(), stamp, host="build-7")
            run = reg.get_run(run_id)
            assert run.beating is beating, stamp
            assert (run.ahead is not None) is (not beating), stamp
        assert run.state == "running"
        mark_running(reg, run_id, other_machine_tag(), "not a time", host="build-7")
        assert reg.get_run(run_id).beating is False
