"""An embedded Ray instance's lifetime: it starts quietly, and its processes die with ours.

``execution.RayBackend`` starts Ray embedded by default. Ray ties its GCS and raylet to the
driver, but not the rest (see ``manymodels.reaper``), prints a token-authentication notice
at every start, replaces the process's signal handlers, and retries an unreachable cluster
address for minutes: this module holds what makes each of those fit a command-line tool and
a host process — one concern, apart from where chunks run. A process has one Ray: the
backends of runs going at once in several threads share the one manymodels started, and the
last of them to finish stops it (``acquire``, ``release``).
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from manymodels.exceptions import TrainingError
from manymodels.reaper import Reaper, owned_env
from manymodels.secrets import secrets_withheld

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


def embedded() -> bool:
    """Whether the Ray in use is the local one manymodels started (no node joins it), not a
    cluster it connected to, nor the host's own."""
    with _ours.lock:
        return _ours.started is not None and _ours.started.reaper is not None


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
            secrets_withheld(),  # the key and tokens stay in this process (README)
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
    """After a fork without exec, the Ray manymodels started is not this process's to share
    or stop (and a fresh lock: another thread of the parent may have held it)."""
    global _ours
    _ours = _Ours()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forked_child)


def probe(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes: ``ray.init`` retries an unreachable GCS for a long time."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or address == "auto":
        return  # "auto" and other forms are Ray's to resolve
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise TrainingError(f"cannot start or reach the Ray cluster at {address}: {e}") from None
