"""A run started while another run of the same spec trains on the registry (``run_busy``):
a `manymodels train` by hand beside a scheduler's firing, or beside another `train`, trained
the partitions the first had not reached yet at the same time — a second version of the same
rows each, the first run's own left unpromoted. It is refused now, before it records a run,
naming the run that trains; a run whose process is gone, or silent past the heartbeat limit,
blocks nothing. Runs on "another machine" are real runs whose recorded owner names a machine
id that is not this one (``factories.other_machine_tag``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from factories import (
    ago,
    dead_process_tag,
    linear_frame,
    mark_running,
    other_machine_tag,
    sales_toml,
    slowfit_env,
    spec_dict,
    wait_for,
)

from manymodels.exceptions import DataError, RunBusy, TrainingError
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry.job_outcomes import JOB_NOTE
from manymodels.run_abandon import abandon_run
from manymodels.samples import store_sales
from manymodels.tempnames import writer_tag

BIN = Path(sys.executable).parent


def test_a_run_beside_a_beating_run_of_its_spec_is_refused_until_it_goes_silent(
    tmp_path: Path,
) -> None:
    root = tmp_path / "reg"
    spec, df = spec_dict(), linear_frame(3, 30)
    first = train(spec, df, root, backend="local").run.run_id
    with Registry(root) as reg:
        mark_running(reg, first, other_machine_tag(), ago(5))
    with pytest.raises(RunBusy) as refused:
        train(spec, linear_frame(3, 31), root, backend="local")
    said = str(refused.value)
    assert refused.value.run_id == first
    assert isinstance(refused.value, TrainingError)  # as a resume's refusal: one line, exit 1
    assert said.startswith(f"run {first} (train, started "), said
    assert "process 4242 on another machine, heartbeat at " in said, said
    assert said.endswith(
        "wait for it to end, or stop process 4242 on the machine it runs on: it blocks no run "
        "once its heartbeat has been silent for 2 min"
    ), said
    assert "abandon" not in said, said  # it refuses a run beating elsewhere:
    with Registry(root) as reg, pytest.raises(DataError, match="still training"):
        abandon_run(reg, first)
    assert "\n" not in said
    with Registry(root) as reg:  # nothing recorded beside it
        assert [r.run_id for r in reg.list_runs(limit=5)] == [first]
        mark_running(reg, first, other_machine_tag(), ago(2 * 3600))  # silent: gone
    second = train(spec, linear_frame(3, 31), root, backend="local").run
    assert second.status == "completed" and second.run_id != first


def test_a_run_of_a_process_on_this_machine_is_named_with_how_to_stop_it(tmp_path: Path) -> None:
    """Its process alive here: stopped (``kill``), it is abandoned or resumed — what the line
    says to do, unlike for a run beating elsewhere, which `runs abandon` goes on refusing."""
    root = tmp_path / "reg"
    spec = spec_dict()
    first = train(spec, linear_frame(3, 30), root, backend="local").run.run_id
    with Registry(root) as reg:
        mark_running(reg, first, writer_tag(), ago(5))  # this test's process: alive
    with pytest.raises(RunBusy) as refused:
        train(spec, linear_frame(3, 31), root, backend="local")
    said = str(refused.value)
    assert f"process {os.getpid()} on this machine) is still training spec 'test'" in said, said
    assert said.endswith(
        f"wait for it to end, or stop it (`kill {os.getpid()}`): once its process is gone "
        f"`manymodels runs abandon {first}` gives it up, `train --resume {first}` finishes it"
    ), said
    with Registry(root) as reg:
        mark_running(reg, first, dead_process_tag(), ago(5))  # killed: as the line said
        assert abandon_run(reg, first).status == "failed"


def test_a_run_records_its_host_and_one_beating_on_another_host_is_named_by_it(
    tmp_path: Path,
) -> None:
    """A run recorded no host name, so a run refused beside one training elsewhere was told
    "process 4242 on another machine" — which of the machines sharing the registry, it did
    not say. Each run records its host as it starts (``options["host"]``, no new column) and
    the refusal names it."""
    root = tmp_path / "reg"
    spec = spec_dict()
    first = train(spec, linear_frame(3, 30), root, backend="local").run
    assert first.options["host"] == os.uname().nodename
    with Registry(root) as reg:  # as a process on the host build-7 records it, training
        mark_running(reg, first.run_id, other_machine_tag(), ago(5), host="build-7")
    with pytest.raises(RunBusy) as refused:
        train(spec, linear_frame(3, 31), root, backend="local")
    said = str(refused.value)
    assert "process 4242 on host build-7, heartbeat at " in said, said
    assert "stop process 4242 on build-7: it blocks no run once its heartbeat" in said, said
    assert "another machine" not in said and "\n" not in said, said


def test_a_run_of_this_machine_whose_process_cannot_be_looked_up_is_not_another_machines(
    tmp_path: Path,
) -> None:
    """A run whose process this machine cannot look up (``/proc`` mounted ``hidepid``, or
    unreadable when the run started: its start time ``x``) was said to train "on another
    machine", and to be stopped there; its owner's machine id is this one's."""
    from manymodels.tempnames import MACHINE

    root = tmp_path / "reg"
    spec = spec_dict()
    first = train(spec, linear_frame(3, 30), root, backend="local").run.run_id
    with Registry(root) as reg:
        mark_running(reg, first, f"4242-x-{MACHINE}", ago(5), host=os.uname().nodename)
    with pytest.raises(RunBusy) as refused:
        train(spec, linear_frame(3, 31), root, backend="local")
    said = str(refused.value)
    assert "process 4242 on this machine, which /proc does not show here (hidepid?)" in said
    assert "another machine" not in said and "another container" not in said, said
    assert said.endswith(
        "wait for it to end, or stop it (`kill 4242`): it blocks no run once its process is "
        "gone or its heartbeat has been silent for 2 min"
    ), said


def test_a_killed_run_or_a_router_job_blocks_no_run(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    spec, df = spec_dict(), linear_frame(3, 30)
    first = train(spec, df, root, backend="local").run.run_id
    with Registry(root) as reg:
        mark_running(reg, first, dead_process_tag(), ago(5))  # kill -9: left to --resume
    second = train(spec, linear_frame(3, 31), root, backend="local").run
    assert second.status == "completed"
    with Registry(root) as reg:  # a router's retrain job: one partition, seconds
        mark_running(reg, first, other_machine_tag(), ago(5))
        reg.store.record_run_options(first, {JOB_NOTE: "job1"})
    assert train(spec, linear_frame(3, 32), root, backend="local").run.status == "completed"
    other = {**spec, "name": "another-spec"}  # another spec's run trains other models
    with Registry(root) as reg:
        mark_running(reg, second.run_id, other_machine_tag(), ago(5))
    with pytest.raises(RunBusy):
        train(spec, linear_frame(3, 33), root, backend="local")
    assert train(other, linear_frame(3, 33), root, backend="local").run.status == "completed"


def test_a_run_beside_a_training_run_is_refused_before_its_data_is_read(tmp_path: Path) -> None:
    """The refusal came only once the whole table was read and prepared (minutes for a big
    one); a table it cannot even read shows it: the busy run is named, not the table."""
    root = tmp_path / "reg"
    spec = spec_dict()
    first = train(spec, linear_frame(3, 30), root, backend="local").run.run_id
    with Registry(root) as reg:
        mark_running(reg, first, other_machine_tag(), ago(5))
    unreadable = tmp_path / "broken.csv"
    unreadable.write_text("not,the,columns\n1,2,3\n")
    for registry in (root, Registry(root)):  # where it is, or the registry opened
        with pytest.raises(RunBusy) as refused:
            train(spec, unreadable, registry, backend="local")
        assert refused.value.run_id == first
        if isinstance(registry, Registry):
            registry.close()


def test_a_resume_beside_another_run_of_its_spec_training_is_refused(tmp_path: Path) -> None:
    """`train --resume` of a killed run skipped the busy check (its own checks look at that
    run only) and resumed beside another run of the spec training: the same partitions
    twice. Refused now, naming the other run; the killed run itself blocks nothing."""
    root = tmp_path / "reg"
    spec, df = spec_dict(), linear_frame(3, 30)
    killed = train(spec, df, root, backend="local").run.run_id
    other = train(spec, linear_frame(3, 31), root, backend="local").run.run_id
    with Registry(root) as reg:
        mark_running(reg, killed, dead_process_tag(), ago(5))  # kill -9: left to --resume
        mark_running(reg, other, other_machine_tag(), ago(5))  # training elsewhere
    with pytest.raises(RunBusy) as refused:
        train(spec, df, root, backend="local", resume=killed)
    assert refused.value.run_id == other
    with Registry(root) as reg:
        mark_running(reg, other, other_machine_tag(), ago(2 * 3600))  # gone silent
    resumed = train(spec, df, root, backend="local", resume=killed).run
    assert resumed.run_id == killed and resumed.status == "completed"


@pytest.mark.slow
def test_train_by_hand_beside_a_run_of_the_spec_exits_1_naming_it(tmp_path: Path) -> None:
    env = slowfit_env(tmp_path)
    spec, data, root = tmp_path / "spec.toml", tmp_path / "sales.csv", tmp_path / "registry"
    spec.write_text(sales_toml("busy").replace("sklearn.linear_model.Ridge", "slowfit:make"))
    store_sales(n_stores=2).to_csv(data, index=False)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    command = [BIN / "manymodels", "train", spec, data, "--registry", root, "--backend", "local"]
    first = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**env, "SLOWFIT_DIR": str(blocked), "SLOWFIT_AFTER": "1"},
    )  # fmt: skip
    try:
        wait_for(blocked / "fitting", "the train held in its second fit", process=first)
        with Registry.open(root) as reg:
            (run,) = reg.list_runs(limit=5)
        second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert second.returncode == 1, second.stdout + second.stderr
        (line,) = second.stderr.strip().splitlines()
        assert f"run {run.run_id} (train, started {run.started_at[:19]}, process " in line, line
        assert f"{first.pid} on this machine) is still training spec 'busy'" in line, line
        assert f"`manymodels runs abandon {run.run_id}`" in line, line
        with Registry.open(root) as reg:  # nothing recorded beside it
            assert [r.run_id for r in reg.list_runs(limit=5)] == [run.run_id]
    finally:
        first.kill()
        first.wait(30)
    # killed in its fit: no longer training, so it holds no run back
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr


def test_a_heartbeat_stamped_ahead_of_this_clock_blocks_nothing(tmp_path: Path) -> None:
    """A run whose heartbeat is stamped two hours ahead (a clock running ahead on the machine it
    ran on) read as beating: every run of its spec was refused (``RunBusy``), and so were its
    `runs abandon` and its resume, until this clock caught up — though ``doctor`` already took
    such a beat for no proof. They all ask ``run_busy.training_now`` now, and doctor says the
    heartbeat is ahead of this clock."""
    from manymodels.doctor import check

    root = tmp_path / "reg"
    spec = spec_dict()
    first = train(spec, linear_frame(3, 30), root, backend="local").run.run_id
    with Registry(root) as reg:
        mark_running(reg, first, other_machine_tag(), ago(-2 * 3600 - 30), host="build-7")
        (problem,) = [p for p in check(reg).problems if p.kind == "unfinished_run"]
        assert (
            "but process 4242 on host build-7 stamped its heartbeat " in problem.message
            and "2 h ahead of this clock" in problem.message
            and f"--resume {first}" in problem.message
        ), problem.message
    second = train(spec, linear_frame(3, 31), root, backend="local").run
    assert second.status == "completed" and second.run_id != first
    with Registry(root) as reg:
        mark_running(reg, first, other_machine_tag(), ago(-60), host="build-7")  # within limit
    with pytest.raises(RunBusy):  # a clock a minute ahead is still trusted, as doctor does
        train(spec, linear_frame(3, 31), root, backend="local")
    with Registry(root) as reg:
        mark_running(reg, first, other_machine_tag(), ago(-2 * 3600 - 30), host="build-7")
        assert abandon_run(reg, first).status == "failed"
