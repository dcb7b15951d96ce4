"""A scheduled firing that comes while a `manymodels train` of the same spec is training on
the registry (started by hand, or by another schedule): it trained the partitions that run had
not reached yet at the same time — a second version of the same rows each, and the run's own
versions of them left unpromoted ("production moved during the run"). It is skipped now, and
said; a run killed in it (its process gone) stops no firing."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from factories import (
    ago,
    firing_lines,
    mark_running,
    other_machine_tag,
    sales_files,
    sales_toml,
    slowfit_env,
    wait_for,
)

from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import store_sales
from manymodels.spec import Spec

BIN = Path(sys.executable).parent
SPEC = sales_toml("busy", '[schedule]\ncron = "*/2 * * * * *"\n', estimator="slowfit:make")


@pytest.mark.slow
def test_a_firing_while_a_train_of_the_spec_runs_is_skipped_and_said(tmp_path: Path) -> None:
    env = slowfit_env(tmp_path)
    spec, data, root = sales_files(tmp_path, SPEC)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    by_hand = subprocess.Popen(
        [BIN / "manymodels", "train", spec, data, "--registry", root, "--backend", "local"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**env, "SLOWFIT_DIR": str(blocked), "SLOWFIT_AFTER": "1"},
    )  # fmt: skip
    scheduler = [BIN / "manymodels", "scheduler", spec, data, "--registry", root,
                 "--backend", "local", "--max-runs", "1", "--no-catch-up"]  # fmt: skip
    try:
        wait_for(blocked / "fitting", "the train held in its second fit", process=by_hand)
        with Registry.open(root) as reg:
            (run,) = reg.list_runs(limit=5)
        fired = subprocess.run(scheduler, capture_output=True, text=True, env=env, timeout=120)
        assert fired.returncode == 0, fired.stderr
        (line,) = firing_lines(fired.stdout)
        assert f" skipped: run {run.run_id} (train, started " in line, line
        assert "is still training this spec on the registry" in line, line
        with Registry.open(root) as reg:  # the firing recorded no run beside it
            assert [r.run_id for r in reg.list_runs(limit=5)] == [run.run_id]
    finally:
        by_hand.kill()
        by_hand.wait(30)
    # killed in its fit: no longer training, so it holds no firing back
    fired = subprocess.run(scheduler, capture_output=True, text=True, env=env, timeout=120)
    assert fired.returncode == 0, fired.stderr
    assert " 4 trained · 2 skipped · 0 failed" in fired.stdout, fired.stdout


@pytest.mark.slow
def test_a_firing_after_the_spec_was_renamed_looks_for_runs_under_its_new_name(
    tmp_path: Path,
) -> None:
    """The spec renamed while the scheduler runs: a firing trains it under its new name (it
    reads the file at each firing), so the run it must not go beside is one of that name. It
    looked under the name read at start, found none, and trained beside it."""
    spec, data, root = tmp_path / "spec.toml", tmp_path / "sales.csv", tmp_path / "registry"
    every = '[schedule]\ncron = "*/5 * * * * *"\n'
    spec.write_text(sales_toml("before", every))
    renamed = tmp_path / "renamed.toml"
    renamed.write_text(sales_toml("after", every))
    store_sales(n_stores=2).to_csv(data, index=False)
    with Registry(root) as reg:  # a run of the new name, training on another machine
        run = train(Spec.from_toml(renamed), data, reg, backend="local").run
        mark_running(reg, run.run_id, other_machine_tag(), ago(5))
    scheduler = subprocess.Popen(
        [BIN / "manymodels", "scheduler", spec, data, "--registry", root, "--backend", "local",
         "--max-runs", "1", "--no-catch-up"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert scheduler.stderr is not None
    try:
        started = scheduler.stderr.readline()  # said once it runs, before its first firing
        assert started.startswith("scheduler: before on "), started
        spec.write_text(renamed.read_text())
        out, err = scheduler.communicate(timeout=120)
    finally:
        scheduler.kill()
        scheduler.wait(30)
    assert scheduler.returncode == 0, out + err
    (line,) = firing_lines(out)
    assert f" skipped: run {run.run_id} (train, started " in line, line
    with Registry.open(root) as reg:  # the firing recorded no run beside it
        assert [r.run_id for r in reg.list_runs(limit=5)] == [run.run_id]


def _feed(fifo: Path, data: bytes, stop: threading.Event, first: Callable[[], None]) -> None:
    """Each time a reader opens ``fifo``, ``data`` written to it (a file read whole each time
    it is opened); ``first()`` runs once the
    first reader has opened it and before anything is written: a point the firing reaches
    only after its own checks for a run of its spec, while it reads its data."""
    opened = 0
    while not stop.is_set():
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            time.sleep(0.01)
            continue
        if opened == 0:
            first()
        opened += 1
        os.set_blocking(fd, True)
        with contextlib.suppress(BrokenPipeError), os.fdopen(fd, "wb") as out:
            out.write(data)
        time.sleep(0.5)  # the reader reads to the end and closes before a writer comes again


@pytest.mark.slow
def test_a_firing_beaten_to_its_run_by_a_train_started_while_it_read_is_skipped(
    tmp_path: Path,
) -> None:
    """A `manymodels train` started by hand while a firing reads its data (after the firing
    found no run training) records its run first; the firing's run is then refused under the
    registry's lock. That refusal was the firing's error — exit 1, a failure recorded for the
    firing, and advice to abandon a live run — where the same run found a moment earlier is
    a skip; it is that skip now, whichever check finds it."""
    spec, data, root = sales_files(
        tmp_path, sales_toml("busy", '[schedule]\ncron = "*/2 * * * * *"\n')
    )
    with Registry(root) as reg:
        run = train(Spec.from_toml(spec), data, reg, backend="local").run
    fifo = tmp_path / "feed.csv"
    os.mkfifo(fifo)

    def by_hand() -> None:  # its run recorded and training, on another machine
        with Registry.open(root) as reg:
            mark_running(reg, run.run_id, other_machine_tag(), ago(1))

    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(fifo, data.read_bytes(), stop, by_hand))
    feeder.start()
    try:
        fired = subprocess.run(
            [BIN / "manymodels", "scheduler", spec, fifo, "--registry", root, "--backend",
             "local", "--max-runs", "1", "--no-catch-up"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        stop.set()
        feeder.join(30)
    assert fired.returncode == 0, fired.stdout + fired.stderr
    (line,) = firing_lines(fired.stdout)
    assert f" skipped: run {run.run_id} (train, started " in line, line
    assert "is still training this spec on the registry" in line, line
    with Registry.open(root) as reg:  # the firing recorded no run beside it
        assert [r.run_id for r in reg.list_runs(limit=5)] == [run.run_id]
