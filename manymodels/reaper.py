"""The reaper of an embedded Ray cluster: its processes die with the driver, even killed.

``ray_lifetime`` starts one with every embedded Ray (see ``Reaper``): Ray ties its GCS and
raylet to the driver, but not the raylet's agents and workers. ``owned_env`` marks the
processes ``ray.init`` starts; the reaper, a tiny process of its own, kills those of Ray's
once the driver is gone.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

OWNER_ENV = "MANYMODELS_RAY_OWNER"

# The reaper's whole program: wait for EOF on stdin (the driver closed it, or died), then
# SIGKILL every process of Ray's that inherited the driver's token, until none is left (bounded).
_REAPER = r"""
import os, select, signal, sys, time
mark = f"{sys.argv[1]}={sys.argv[2]}".encode() + b"\0"
driver = sys.argv[3]
home = os.fsencode(os.path.join(sys.argv[4], ""))

def stat(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()

def started(pid):
    return stat(pid)[19]

def ours(pid):
    # carries the token, and is Ray's: the token is in the driver's environment for all of
    # ray.init, so a subprocess another thread of the host starts meanwhile carries it too;
    # Ray's run a program of Ray's package (gcs_server, raylet, the monitors' and agents'
    # scripts) or bear a Ray worker's or agent's title
    with open(f"/proc/{pid}/environ", "rb") as f:
        if mark not in f.read():
            return False
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        command = f.read()
    return command.startswith(b"ray::") or home in command

def children(pid):
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += f.read().split()
        except OSError:
            pass
    return out

def descendants(pid, out):
    # Ray's processes: the driver's children of Ray's that carry the token (GCS, raylet) and
    # all below them (the raylet's agents, workers), each with its start time, so that a pid
    # the system gives to someone else later is never killed; nothing else the driver started.
    # Every look walks the whole tree again: a process noted before (the raylet) may have
    # started children since (its agents, whose setproctitle can erase the token).
    for child in children(pid):
        try:
            start = started(child)
            if pid != driver or out.get(child) == start or ours(child):
                out[child] = start
                descendants(child, out)
        except OSError:
            pass

seen = {}
while True:  # until the driver closes the pipe or dies: note Ray's processes, every 2 s
    descendants(driver, seen)
    ready, _, _ = select.select([sys.stdin], [], [], 2.0)
    if ready:
        if not os.read(sys.stdin.fileno(), 4096):
            break
        descendants(driver, seen)  # asked to look now (before ray.shutdown): then say so
        os.write(sys.stdout.fileno(), b"k")
descendants(driver, seen)  # a clean close: the driver still runs; anything started since
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    found = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            # Ray's processes started between two looks carry the token (unless they
            # rewrote their environment, as setproctitle does: hence the looks)
            hit = (pid in seen and started(pid) == seen[pid]) or ours(pid)
            if hit and pid != driver and stat(pid)[0] != b"Z":  # a zombie is dead already
                os.kill(int(pid), signal.SIGKILL)
                found += 1
        except OSError:
            pass
    if not found:
        break
    time.sleep(0.2)
"""


@contextmanager
def owned_env() -> Iterator[str]:
    """Mark the processes an embedded ``ray.init`` starts with a token in their environment.

    Every process Ray starts (GCS, raylet, agents, workers) inherits it; the driver's
    environment is restored right after, so later subprocesses of ours are not marked. The
    environment is the whole process's: a subprocess another thread starts during
    ``ray.init`` (seconds) inherits the token too, which is why the reaper also asks that a
    process be Ray's before it kills it."""
    token = uuid.uuid4().hex
    previous = os.environ.get(OWNER_ENV)
    os.environ[OWNER_ENV] = token
    try:
        yield token
    finally:
        if previous is None:
            os.environ.pop(OWNER_ENV, None)
        else:
            os.environ[OWNER_ENV] = previous


class Reaper:
    """A tiny process that kills the embedded cluster's processes once this one is gone.

    Ray already ties its GCS and raylet to the driver (``PR_SET_PDEATHSIG``), but the raylet's
    agents outlive a SIGKILLed driver by ~70 s (Ray 2.60: they spend a 60 s timeout reporting
    the raylet's death to the dead GCS), and workers linger with them. Ray's own reaper would
    make the driver a process-group leader, which breaks Ctrl-C in a terminal; this one waits
    for EOF on a pipe only the driver holds, noting the driver's descendants every 2 s, then
    kills them and every process carrying the token ``owned_env`` gave them. (The token alone
    was not enough: the agents' ``setproctitle`` can overwrite their environment, and in one CI
    run of ten two agents outlived the driver.) Linux only (``/proc``); elsewhere it is not
    started.

    Only Ray's processes are killed: one carrying the token must also run a program of
    ``home``, Ray's package directory (gcs_server, raylet, the monitors' and agents' scripts),
    or bear a Ray worker's or agent's title (``ray::…``); the tree is walked from such
    children of the driver only. A host's subprocess that inherited the token during
    ``ray.init`` is neither (it used to be killed with the cluster).
    """

    def __init__(self, token: str, home: str | None = None) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._driver = os.getpid()  # a child forked from it has nothing to say to the reaper
        if not os.path.isdir("/proc"):
            return
        home = home if home is not None else ray_home()
        env = {k: v for k, v in os.environ.items() if k != OWNER_ENV}  # never kills itself
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _REAPER, OWNER_ENV, token, str(os.getpid()), home],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C in the terminal must not stop it before its job
        )
        _live.add(self)

    def look(self, timeout: float = 5.0) -> None:
        """Have the reaper note Ray's processes now, and wait (bounded) until it has: called
        before ``ray.shutdown``, which stops the raylet first and leaves its agents to init,
        where an agent started since the last look (its token erased by ``setproctitle``)
        could no longer be found."""
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:
            return
        if os.getpid() != self._driver:
            return
        try:
            self._proc.stdin.write(b"?")
            self._proc.stdin.flush()
            ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
            if ready:
                os.read(self._proc.stdout.fileno(), 1)
        except OSError:  # the reaper is gone: close() will say nothing more either
            pass

    def close(self) -> None:
        """Reap now (after a clean ``ray.shutdown``), waiting a bounded time for it."""
        if self._proc is None or os.getpid() != self._driver:
            return
        _live.discard(self)
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None

    def forked(self) -> None:
        """In a child forked (without exec) from the driver: let go of the pipe's write end.

        The reaper waits for EOF, which it only sees once every process holding that end has
        closed it: a child forked while Ray ran (a multiprocessing or gunicorn worker) held it,
        so ``close`` waited its 15 s, killed the reaper, and nothing was reaped. The child's
        descriptors are pointed at /dev/null rather than closed, so that its file objects,
        whenever they are closed, close nothing of the child's own."""
        if self._proc is None:
            return
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    os.dup2(devnull, pipe.fileno())
        finally:
            os.close(devnull)


_live: weakref.WeakSet[Reaper] = weakref.WeakSet()  # the reapers this process started


def ray_home() -> str:
    """Ray's package directory, spelled as Ray spells the programs it starts."""
    import ray

    return os.path.dirname(os.path.abspath(ray.__file__))


def _forked_child() -> None:
    """After a fork without exec, this process is not the driver: its copies of the reapers'
    pipes let go (``Reaper.forked``)."""
    for reaper in list(_live):
        reaper.forked()
    _live.clear()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forked_child)
