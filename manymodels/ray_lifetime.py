"""An embedded Ray instance's lifetime: it starts quietly, and its processes die with ours.

``execution.RayBackend`` starts Ray embedded by default. Ray ties its GCS and raylet to the
driver, but not the rest (see ``Reaper``), prints a token-authentication notice at every
start, and retries an unreachable cluster address for minutes: this module holds what makes
each of those fit a command-line tool — one concern, apart from where chunks run. A process
has one Ray: the backends of runs going at once in several threads share the one manymodels
started, and the last of them to finish stops it (``acquire``, ``release``).
"""

from __future__ import annotations

import importlib
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from manymodels.exceptions import TrainingError

RAY_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"
RAY_WORKER_LOGGER = "ray._private.worker"


@contextmanager
def quiet_token_notice(*, embedded: bool) -> Iterator[None]:
    """Mute Ray's "Token authentication is enabled… Set RAY_AUTH_MODE=disabled" notice while
    an *embedded* instance starts: the cluster is ours, local and short-lived, and the notice
    would open every command's output. Token auth itself stays on (Ray's default: the token
    in ``~/.ray/auth_token``); a cluster named by ``--ray-address`` is left as Ray sets it up.

    The notice is a warning of one logger; setting ``RAY_AUTH_MODE=token`` instead would need
    Ray's cached config refreshed in this process, or the driver cannot reach its own GCS."""
    logger = logging.getLogger(RAY_TOKEN_LOGGER)
    level = logger.level
    if embedded:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class _NoSigtermNote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("SIGTERM handler is not set")


@contextmanager
def quiet_thread_note() -> Iterator[None]:
    """Mute Ray's "SIGTERM handler is not set because current thread is not the main thread"
    while ``_Started`` runs ``ray.init`` in a thread of its own: leaving the process's SIGTERM
    handler alone is the point, and the note would open every command's output."""
    logger, note = logging.getLogger(RAY_WORKER_LOGGER), _NoSigtermNote()
    logger.addFilter(note)
    try:
        yield
    finally:
        logger.removeFilter(note)


@contextmanager
def host_signal_handlers() -> Iterator[None]:
    """Keep the process's signal handlers while an embedded Ray starts.

    The driver's core worker installs Ray's C++ failure handler for SIGTERM (and SIGSEGV,
    SIGABRT…) over the process's own: a host's SIGTERM handler never ran again, not even
    after ``ray.shutdown``, and SIGTERM printed a stack trace and killed the process. Ray
    installs it unless ``ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER`` (read from the
    environment when Ray is imported, too late for us to set) is true when the worker is
    created, inside ``ray.init``. ``ray.init`` itself replaces the SIGTERM handler (with
    ``sys.exit``) only from the main thread, and ``_Started`` calls it from a thread of its
    own; so the host's handlers stay in force while our Ray runs and after it stops. For
    ``manymodels train`` that is the default action: SIGTERM ends it, as with the in-process
    backend, and the reaper takes the cluster down."""
    constants = importlib.import_module("ray._private.ray_constants")
    previous = getattr(constants, _NO_FAILURE_HANDLER, False)
    setattr(constants, _NO_FAILURE_HANDLER, True)
    try:
        yield
    finally:
        setattr(constants, _NO_FAILURE_HANDLER, previous)


_NO_FAILURE_HANDLER = "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"
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


class _Started:
    """A Ray manymodels started: the thread it was started from, which lives as long as it
    runs, and its reaper.

    Ray ties its GCS and raylet to the *thread* that started them (``PR_SET_PDEATHSIG`` fires
    when that thread ends, not the process): started from a run's own thread, Ray was killed
    under the runs sharing it as soon as that thread ended."""

    def __init__(self, ray: Any, reaper: Reaper | None) -> None:
        self.ray, self.reaper = ray, reaper
        self.up = threading.Event()  # ray.init returned, or raised ``failure``
        self.done = threading.Event()  # the thread may end
        self.abandoned = False
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="manymodels-ray", daemon=True)
        self._init: dict[str, Any] = {}

    def start(self, **init: Any) -> None:
        """``ray.init(**init)`` in the thread, waiting for it; raises what it raised. When the
        wait is interrupted (Ctrl-C), the thread stops Ray itself once it is up."""
        self._init = init
        self.thread.start()
        try:
            self.up.wait()
        except BaseException:
            self.abandoned = True
            self.done.set()
            raise
        if self.failure is not None:
            raise self.failure

    def _run(self) -> None:
        try:
            self.ray.init(**self._init)
        except BaseException as e:  # raised in the caller's thread by start
            self.failure = e
        self.up.set()
        self.done.wait()
        if self.abandoned:
            self.stop(shutdown=self.failure is None)

    def stop(self, *, shutdown: bool = True) -> None:
        if self.reaper is not None:
            self.reaper.look()
        if shutdown and self.ray.is_initialized():
            self.ray.shutdown()
        self.done.set()
        if self.reaper is not None:
            self.reaper.close()  # whatever shutdown left behind goes now, not in a minute


class _Ours:
    """The Ray manymodels started in this process, and how many backends use it now."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # held while Ray starts or stops: seconds
        self.users = 0
        self.started: _Started | None = None


_ours = _Ours()


def acquire(
    ray: Any,
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
) -> bool:
    """Use the Ray this process runs, starting it when none is: embedded (``address`` None)
    or connected to the cluster at ``address``. True when it is manymodels' (then ``release``
    once when done), False for a Ray the host started itself, which we never shut down.

    Several runs in threads of one process share one Ray: it can be initialised once, and
    the run that started it used to shut it down under the others (``SystemExit`` in their
    threads), or two runs started it at once ("called ray.init twice"). Starting is done
    under a lock; a Ray is reused as it runs (the first caller's ``address`` and sizes)."""
    with _ours.lock:
        if _ours.started is not None and _ours.started.abandoned:
            _ours.started.thread.join()  # a start interrupted by Ctrl-C: it stops itself
            _ours.started = None
        if ray.is_initialized():
            if not _ours.users:
                return False
            _ours.users += 1
            return True
        if _ours.started is not None:  # ours, shut down under its users by someone else
            _ours.started.stop()
            _ours.started = None
        _ours.started = _start(
            ray, address, num_cpus=num_cpus, object_store_memory=object_store_memory
        )
        _ours.users += 1
        return True


def release() -> None:
    """A user of the Ray ``acquire`` started is done: the last one shuts it down."""
    with _ours.lock:
        _ours.users -= 1
        if _ours.users > 0:
            return
        _ours.users = 0
        started, _ours.started = _ours.started, None
        if started is not None:
            started.stop()


def _start(
    ray: Any, address: str | None, *, num_cpus: int | None, object_store_memory: int | None
) -> _Started:
    if address:
        probe(address)
    started: _Started | None = None
    try:
        # "local" starts an embedded instance; None would silently join any cluster that
        # `ray start` left running on this machine.
        with (
            quiet_token_notice(embedded=address is None),
            quiet_thread_note(),
            host_signal_handlers(),
            owned_env() as token,
        ):
            # A cluster we start dies with us, even when we are killed (see Reaper); started
            # first, as ray.init itself takes seconds to kill us in.
            started = _Started(ray, Reaper(token) if address is None else None)
            try:
                started.start(
                    address=address or "local",
                    num_cpus=num_cpus if address is None else None,
                    object_store_memory=object_store_memory if address is None else None,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except BaseException:
                if started.abandoned:  # interrupted: its thread stops it once up
                    _ours.started = started
                raise
    except Exception as e:
        if started is not None and not started.abandoned:
            started.stop(shutdown=False)
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise TrainingError(f"cannot start or reach {where}: {e}") from e
    return started


def _forked_child() -> None:
    """After a fork without exec, this process is not the driver: its copies of the reapers'
    pipes let go, and the Ray manymodels started is not its to share or stop (a fresh lock
    too: another thread of the parent may have held it)."""
    global _ours
    for reaper in list(_live):
        reaper.forked()
    _live.clear()
    _ours = _Ours()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forked_child)


def ray_home() -> str:
    """Ray's package directory, spelled as Ray spells the programs it starts."""
    import ray

    return os.path.dirname(os.path.abspath(ray.__file__))


def probe(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes: ``ray.init`` retries an unreachable GCS for a long time."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or address == "auto":
        return  # "auto" and other forms are Ray's to resolve
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise TrainingError(f"cannot start or reach the Ray cluster at {address}: {e}") from None
