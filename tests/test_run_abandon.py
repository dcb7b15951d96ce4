"""``manymodels runs abandon`` against the process that ran the run: one silent elsewhere
(paused, cut off from the database) may still be alive, and must not write into the run
once it was given up."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from factories import ago, linear_frame, make_run, mark_running, other_machine_tag, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError, RunTakenOver
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry.entities import PartitionOutcome
from manymodels.run_abandon import abandon_run
from manymodels.tempnames import MACHINE


def test_a_silent_process_that_wakes_cannot_reopen_or_complete_its_abandoned_run(
    tmp_path: Path,
) -> None:
    """A run on another machine silent past ``SILENT_AFTER`` can be abandoned; its process,
    paused rather than dead, then woke and closed it ``completed`` (error cleared, its
    versions recorded into it): the abandoned run read as a finished one, and could become
    the spec's current full run. Now its writes are refused as after a resume elsewhere."""
    owner = other_machine_tag()
    with Registry.open(tmp_path / "reg", create=True) as reg:
        silent = dataclasses.replace(
            make_run("r1"), started_at="2020-01-01T00:00:00+00:00", options={"owner": owner}
        )
        reg.store.create_run(silent)
        mark_running(reg, "r1", owner, silent.started_at)  # silent since it started
        assert abandon_run(reg, "r1", "its machine is gone").status == "failed"
        assert reg.store.beat("r1", owner) is False  # its heartbeat stops
        with pytest.raises(RunTakenOver, match="was abandoned"):
            reg.store.record_run_options("r1", {"global": []}, owner=owner)
        with pytest.raises(RunTakenOver, match="was abandoned"):
            reg.store.finish_run("r1", "completed", owner=owner)
        run = reg.get_run("r1")
    assert run.status == "failed" and run.error == "abandoned: its machine is gone"
    assert run.options["abandoned"]["reason"] == "its machine is gone"


def test_runs_show_of_an_abandoned_run_does_not_ask_for_a_resume(tmp_path: Path) -> None:
    """`runs show` of an abandoned run with lost partitions said "train them with --resume",
    which is refused for it, and a failed run abandoned kept only its old error: nothing
    shown said it was given up. Now the lost table says it was abandoned, and a line when
    and why."""
    root = tmp_path / "reg"
    with Registry.open(root, create=True) as reg:
        run = dataclasses.replace(
            make_run("r1", n_partitions=1), options={"owner": other_machine_tag()}
        )
        reg.store.create_run(run)
        lost = PartitionOutcome(
            key="a", status="lost", error_type="WorkerDied", message="node gone"
        )
        reg.store.record("r1", [], [lost], libraries={})
        reg.store.finish_run("r1", "failed", error="OSError: disk full")
        abandon_run(reg, "r1", "nobody needs it")
    shown = CliRunner().invoke(app, ["runs", "show", "r1", "--registry", str(root)])
    assert shown.exit_code == 0, shown.output
    assert "--resume" not in shown.output and "the run was abandoned" in shown.output
    assert "nobody needs it" in shown.output, shown.output


@pytest.mark.parametrize(
    ("owner", "host", "where"),
    [
        (other_machine_tag(), "build-7", "process 4242 on host build-7"),
        (
            f"4242-x-{MACHINE}",
            os.uname().nodename,
            "process 4242 on this machine, which /proc does not show here (hidepid?)",
        ),
    ],
    ids=["another-host", "hidden-here"],
)
def test_abandon_of_a_run_training_where_this_process_cannot_see_names_where(
    tmp_path: Path, owner: str, host: str, where: str
) -> None:
    """Refused while it beats, the line said "its process elsewhere" — which host, not said
    (the run records it), and "elsewhere" for a process of this machine /proc hides — where
    RunBusy for the same run names it (``run_busy.whereabouts``)."""
    root = tmp_path / "reg"
    run_id = train(spec_dict(), linear_frame(3, 30), root, backend="local").run.run_id
    with Registry(root) as reg:
        mark_running(reg, run_id, owner, ago(5), host=host)
        with pytest.raises(DataError) as refused:
            abandon_run(reg, run_id)
    assert str(refused.value) == f"run {run_id} is still training ({where}): stop it first"
