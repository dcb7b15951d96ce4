"""Embedded Ray is ours: it says nothing on start, and it dies with the command that started it.

``manymodels train --backend ray`` runs as a user starts it, in its own process; it is killed
with SIGKILL while a Ray worker runs one of its tasks. Ray ties its GCS and raylet to the
driver itself, but its agents used to outlive the driver by ~70 s; the reaper started with
the embedded cluster (``manymodels.ray_lifetime.Reaper``) must leave nothing behind well before
that: within 30 s on a busy 2-core CI machine (it takes a few seconds on a quiet one).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
from proctree import TOKEN_NOTICE, alive, descendants, ray_processes, wait_gone

from manymodels.samples import synthetic

BIN = Path(sys.executable).parent
SPEC = """
name = "lifetime"
partition_by = ["pid"]
target = "y"
time_column = "t"
features = ["x0", "x1", "x2", "x3", "x4"]
min_rows = 2
[validation]
strategy = "last"
size = 5
[[candidates]]
estimator = "sklearn.linear_model.Ridge"
[fallback]
enabled = false
"""


def _running_task(pid: int) -> bool:
    """A Ray worker under ``pid`` runs a task (Ray titles the process with the task's name)."""
    return any(c.startswith("ray::_run_item") for c in alive(descendants(pid)).values())


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_a_killed_train_leaves_no_ray_process_and_ray_says_nothing(tmp_path: Path) -> None:
    spec, data = tmp_path / "spec.toml", tmp_path / "data.csv"
    spec.write_text(SPEC)
    synthetic(3000, 25).to_csv(data, index=False)
    cmd: list[str | Path] = [BIN / "manymodels", "train", spec, data, "--registry", tmp_path / "r"]
    with (tmp_path / "out.txt").open("w+") as out:
        train = subprocess.Popen([*cmd, "--backend", "ray"], stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 150  # Ray starts in 5-40 s, quiet or busy machine
            while not _running_task(train.pid):
                assert train.poll() is None, f"train ended before it was killed:\n{_text(out)}"
                assert time.monotonic() < deadline, "no Ray worker ever ran a task"
                time.sleep(0.1)
            tree = descendants(train.pid)
            assert len(ray_processes(tree)) >= 4, alive(tree)  # GCS, raylet, agents, workers
        finally:
            train.send_signal(signal.SIGKILL)
            train.wait(30)
        left = wait_gone(tree, timeout=30)
        assert left == {}, f"still running 30 s after kill -9 of the driver: {left}"
        assert TOKEN_NOTICE not in _text(out)


def _text(out: IO[str]) -> str:
    out.seek(0)
    return out.read()


# A host that starts a subprocess every 50 ms in a thread of its own while manymodels starts
# embedded Ray in another: ray.init takes seconds, and the owner token is in the whole
# process's environment meanwhile.
HELPERS_DURING_INIT = r"""
import json, subprocess, threading, time
from manymodels.execution import RayBackend
from manymodels.ray_lifetime import OWNER_ENV

helpers, stop = [], threading.Event()
def spawn():
    while not stop.is_set():
        helpers.append(subprocess.Popen(["sleep", "300"], stdout=subprocess.DEVNULL))
        time.sleep(0.05)
thread = threading.Thread(target=spawn)
thread.start()
try:
    backend = RayBackend()
    stop.set()
    thread.join()
    marked = 0
    for helper in helpers:
        with open(f"/proc/{helper.pid}/environ", "rb") as f:
            marked += OWNER_ENV.encode() in f.read()
    assert dict(backend.map_unordered(json.loads, ["1"])) == {0: 1}
    backend.close()
    print(json.dumps({"helpers": len(helpers), "marked": marked,
                      "killed": sum(h.poll() is not None for h in helpers)}))
finally:
    stop.set()
    for helper in helpers:
        helper.kill()
        helper.wait()
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the reaper reads /proc")
def test_the_reaper_leaves_the_hosts_subprocesses_started_during_ray_init_alone() -> None:
    run = subprocess.run(
        [sys.executable, "-c", HELPERS_DURING_INIT], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["marked"] > 0, seen  # some started while the token was in the environment
    assert seen["killed"] == 0, f"the reaper killed the host's subprocesses: {seen}"
