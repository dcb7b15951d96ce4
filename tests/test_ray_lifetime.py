"""Embedded Ray is ours: it says nothing on start, and it dies with the command that started it.

``manymodels train --backend ray`` runs as a user starts it, in its own process; it is killed
with SIGKILL while a Ray worker runs one of its tasks. Ray ties its GCS and raylet to the
driver itself, but its agents used to outlive the driver by ~70 s; the reaper started with
the embedded cluster (``manymodels.reaper.Reaper``) must leave nothing behind well before
that: within 30 s on a busy 2-core CI machine (it takes a few seconds on a quiet one).

manymodels is also a library inside other processes: runs in several threads of one host share
the one Ray manymodels started, which stops when the last of them is done, and the reaper
leaves the host's own subprocesses alone. Those that start Ray run in a fresh interpreter each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from proctree import TOKEN_NOTICE, alive, descendants, ray_processes, wait_gone

from manymodels.ray_lifetime import acquire, release
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
from manymodels.reaper import OWNER_ENV

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


class SlowRay:
    """Ray's start and stop as a driver sees them, slow enough for two threads to meet."""

    def __init__(self, *, up: bool = False) -> None:
        self.up, self.inits, self.shutdowns = up, 0, 0

    def is_initialized(self) -> bool:
        return self.up

    def init(self, **kwargs: object) -> None:
        assert not self.up, "Maybe you called ray.init twice by accident?"
        time.sleep(0.3)
        self.up, self.inits = True, self.inits + 1

    def shutdown(self) -> None:
        self.up, self.shutdowns = False, self.shutdowns + 1


def test_one_ray_is_started_for_users_in_threads_and_stopped_after_the_last() -> None:
    ray, barrier, owns = SlowRay(), threading.Barrier(2), []
    threads = [
        threading.Thread(target=lambda: (barrier.wait(), owns.append(acquire(ray))))
        for _ in range(2)
    ]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert owns == [True, True] and ray.inits == 1
    release()
    assert ray.up, "stopped while a user still runs on it"
    release()
    assert not ray.up and ray.shutdowns == 1


def test_a_ray_the_host_started_is_used_and_never_stopped() -> None:
    ray = SlowRay(up=True)
    assert acquire(ray) is False
    assert ray.inits == 0 and ray.up


# Two runs in two threads of one host start their backends at the same moment, a third joins
# later; the first two finish while the third still runs tasks. One Ray serves them all, and
# only the last to finish stops it.
SHARED_BY_THREADS = r"""
import json, threading
import ray
from manymodels.execution import RayBackend

barrier, backends, errors = threading.Barrier(2), {}, []
def start(name):
    barrier.wait()
    try:
        backends[name] = RayBackend()
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=start, args=(name,)) for name in "ab"]
[t.start() for t in threads]
[t.join() for t in threads]
seen = {"errors": errors, "up": []}
if not errors:
    third = RayBackend()
    for name in "ab":
        backends[name].close()
        seen["up"].append(ray.is_initialized())
    seen["tasks"] = dict(third.map_unordered(json.loads, ["1", "2"]))
    third.close()
    seen["up"].append(ray.is_initialized())
print(json.dumps(seen))
"""


@pytest.mark.slow
def test_runs_in_threads_share_one_embedded_ray_until_the_last_is_done() -> None:
    run = subprocess.run(
        [sys.executable, "-c", SHARED_BY_THREADS], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["errors"] == [], seen  # was: "Maybe you called ray.init twice by accident?"
    assert seen["up"] == [True, True, False], seen  # the first to start stopped it under us
    assert seen["tasks"] == {"0": 1, "1": 2}
    assert "SIGTERM handler is not set" not in run.stderr  # Ray starts in a thread of ours


# A host with a SIGTERM handler of its own (a graceful shutdown) starts a run on embedded Ray
# from its main thread or from another, and gets SIGTERM while Ray runs and after it stopped.
HOST_SIGTERM = r"""
import json, os, signal, sys, threading, time
from manymodels.execution import RayBackend

got = []
signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
def term():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.5)  # the handler runs in the main thread, between two bytecodes
backends = []
if sys.argv[1] == "main":
    backends.append(RayBackend())
else:
    starter = threading.Thread(target=lambda: backends.append(RayBackend()))
    starter.start()
    starter.join()
term()
running = len(got)
assert dict(backends[0].map_unordered(json.loads, ["1"])) == {0: 1}
backends[0].close()
term()
print(json.dumps({"while_running": running, "after": len(got)}))
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("thread", ["main", "other"])
def test_the_hosts_sigterm_handler_runs_while_our_ray_runs_and_after(thread: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", HOST_SIGTERM, thread], capture_output=True, text=True, timeout=300
    )
    # was: Ray's C++ failure handler printed a stack and killed the process (-15), or Ray's
    # own handler raised SystemExit in the host's main thread
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.splitlines()[-1]) == {"while_running": 1, "after": 2}
    assert "SIGTERM received" not in run.stderr


# A host forks a worker (multiprocessing "fork", no exec) while a run trains on embedded Ray.
FORK_WHILE_TRAINING = r"""
import json, multiprocessing, time
from manymodels import ray_lifetime
from manymodels.execution import RayBackend

backend = RayBackend()
reaper = ray_lifetime._ours.started.reaper._proc
assert dict(backend.map_unordered(json.loads, ["1"])) == {0: 1}
child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,))
child.start()
backend.close()
print(json.dumps({"reaper": reaper.returncode, "child_alive": child.is_alive()}))
child.kill()
child.join()
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the reaper reads /proc")
def test_a_worker_the_host_forks_while_ray_runs_does_not_hold_the_reaper_open() -> None:
    run = subprocess.run(
        [sys.executable, "-c", FORK_WHILE_TRAINING], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # was: -9, close waited 15 s for the reaper, then killed it before it reaped anything
    assert json.loads(run.stdout.splitlines()[-1]) == {"reaper": 0, "child_alive": True}


# A driver holding the signing key and the router's tokens in its environment (how the CLI
# and `manymodels serve` take them) starts embedded Ray and asks a worker what it sees.
SECRETS_IN_WORKERS = r"""
import json, os, ray
from manymodels.execution import RayBackend

SECRET_VARIABLES = ("MANYMODELS_SIGNING_KEY", "MANYMODELS_ADMIN_TOKEN", "MANYMODELS_READ_TOKEN")
backend = RayBackend()
@ray.remote
def seen():
    return {name: os.environ.get(name) for name in SECRET_VARIABLES}
worker = ray.get(seen.remote())
print(json.dumps({"worker": worker, "driver": {n: os.environ.get(n) for n in SECRET_VARIABLES}}))
backend.close()
"""


@pytest.mark.slow
def test_the_signing_key_and_tokens_never_reach_embedded_ray_workers() -> None:
    """README: the key is checked in the driver, so it never travels to Ray workers. Every
    process an embedded ``ray.init`` starts inherited the driver's environment: a worker read
    MANYMODELS_SIGNING_KEY, and the admin and read tokens, from ``os.environ``."""
    secrets = {
        "MANYMODELS_SIGNING_KEY": "a-signing-key-of-32-characters!!",
        "MANYMODELS_ADMIN_TOKEN": "an-admin-token",
        "MANYMODELS_READ_TOKEN": "a-read-token",
    }
    run = subprocess.run(
        [sys.executable, "-c", SECRETS_IN_WORKERS],
        capture_output=True, text=True, timeout=300, env={**os.environ, **secrets},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["worker"] == dict.fromkeys(secrets), seen
    assert seen["driver"] == secrets  # the driver's own environment is given back
