"""The reaper of an embedded Ray cluster, on a process tree shaped like Ray's.

Ray's raylet (a child of the driver, carrying the owner token) starts its agents *after* the
reaper first noted it, and an agent's ``setproctitle`` may erase the token from its
environment. A reaper that stopped walking below a process it had already noted missed those
agents: in CI they outlived ``manymodels serve`` (tests/serving/test_serve_ray_lifetime.py).
Here a stand-in "raylet" starts a token-less "agent" between two looks, deterministically.
The stand-in runs a script of a directory given to the reaper as Ray's package directory: the
reaper kills only processes of Ray's, not a host's subprocess that inherited the token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from manymodels.reaper import OWNER_ENV, Reaper

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="the reaper reads /proc")

RAYLET = r"""
import subprocess, sys, time
sys.stdin.readline()  # started after the reaper's first look, like the raylet's agents
env = {"PATH": "/usr/bin:/bin"}  # no owner token: what setproctitle can leave
agent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], env=env)
print(agent.pid, flush=True)
time.sleep(120)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _raylet(home: Path) -> Path:
    """The stand-in raylet's script, in the directory the reaper is told is Ray's."""
    script = home / "raylet.py"
    script.write_text(RAYLET)
    return script


def test_children_started_after_a_process_was_noted_are_reaped_without_the_token(
    tmp_path: Path,
) -> None:
    token = uuid.uuid4().hex
    reaper = Reaper(token, str(tmp_path))
    agent = 0
    with subprocess.Popen(
        [sys.executable, _raylet(tmp_path)],
        env={**os.environ, OWNER_ENV: token},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as raylet:
        try:
            reaper.look()  # notes the raylet, which has no children yet
            assert raylet.stdin is not None and raylet.stdout is not None
            raylet.stdin.write("start\n")
            raylet.stdin.flush()
            agent = int(raylet.stdout.readline())
            assert OWNER_ENV.encode() not in Path(f"/proc/{agent}/environ").read_bytes()
            reaper.look()  # the agent exists now; only the tree below the raylet leads to it
            started = time.monotonic()
            reaper.close()
            assert time.monotonic() - started < 5, "the reaper waited on a zombie"
            assert raylet.wait(10) == -9  # the reaper's SIGKILL, not the cleanup below
            assert _gone(agent, 10), "the raylet's token-less agent outlived the reaper"
        finally:
            raylet.kill()
            if agent and _running(agent):
                os.kill(agent, 9)


def test_processes_without_the_token_outside_ray_are_left_alone(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    reaper = Reaper(token, str(tmp_path))
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        reaper.look()
        reaper.close()
        assert bystander.poll() is None, "a child of the driver without the token was killed"
    finally:
        bystander.kill()
        bystander.wait()


def test_a_host_process_that_inherited_the_token_is_left_alone(tmp_path: Path) -> None:
    """The token is in the whole process's environment during ``ray.init``: a subprocess
    another thread of the host starts then carries it too, and was killed with Ray."""
    token = uuid.uuid4().hex
    reaper = Reaper(token, str(tmp_path))
    marked = {**os.environ, OWNER_ENV: token}
    sleep = [sys.executable, "-c", "import time; time.sleep(120)"]
    with (
        subprocess.Popen(sleep, env=marked) as host,
        subprocess.Popen([sys.executable, _raylet(tmp_path)], env=marked) as ray,
    ):
        try:
            reaper.look()
            reaper.close()
            assert ray.wait(10) == -9, "the reaper left Ray's process running"
            assert host.poll() is None, "the host's subprocess was killed with Ray's"
        finally:
            host.kill()
            ray.kill()


# The driver forks a child without exec (a multiprocessing or gunicorn worker) while Ray runs:
# the child inherits the reaper's pipe, whose write end the reaper waits to see closed.
FORK_WHILE_RAY_RUNS = r"""
import json, multiprocessing, sys, time, uuid
from manymodels.reaper import Reaper

reaper = Reaper(uuid.uuid4().hex, sys.argv[1])
proc = reaper._proc
child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,))
child.start()
started = time.monotonic()
reaper.close()
print(json.dumps({"seconds": time.monotonic() - started, "reaper": proc.returncode,
                  "child_alive": child.is_alive()}))
child.kill()
child.join()
"""


def test_a_child_forked_from_the_driver_does_not_hold_the_reaper_open(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", FORK_WHILE_RAY_RUNS, str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.splitlines()[-1])
    # was: close waited 15 s for an EOF the child's copy of the pipe held back, then SIGKILLed
    # the reaper (-9) before it reaped anything
    assert seen["reaper"] == 0 and seen["seconds"] < 10, seen
    assert seen["child_alive"], seen  # not the reaper's to kill
