"""The retrain jobs' worker threads: ``ThreadPoolExecutor``'s ``submit`` and ``shutdown`` on
daemon threads, so that a fit left running cannot hold the process's exit.

A ``ThreadPoolExecutor``'s threads are joined when the interpreter exits
(``concurrent.futures.thread._python_exit``), whatever was shut down: ``JobManager.close``
stopped waiting for a fit after ``STOP_SECONDS``, yet a program embedding the router
(``serving.local.running_server``, ``create_app`` under its own uvicorn) then waited at its
exit for as long as the fit ran — minutes — until killed. ``manymodels serve`` escaped it by
``os._exit``, which a library cannot do to its caller's process. These threads are daemons: a
pool that was shut down (its wait given by ``close``) holds nothing at exit; one that never
was (an app whose shutdown did not run) is waited for at most its ``exit_seconds`` at exit
(``JobManager.stop_seconds``: ``STOP_SECONDS``, as ``serve``'s SIGTERM does). A job left so
is ended by the next router to look ("router restarted"), as after a kill.
"""

from __future__ import annotations

import atexit
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import Any, TypeVar

T = TypeVar("T")

_open_pools: weakref.WeakSet[DaemonPool] = weakref.WeakSet()


class DaemonPool:
    """``workers`` daemon threads (started on the first ``submit``) taking calls in order;
    ``exit_seconds``: the most the process's exit waits for its calls unless shut down."""

    def __init__(self, workers: int, *, thread_name_prefix: str, exit_seconds: float) -> None:
        self.workers = workers
        self.exit_seconds = exit_seconds
        self.prefix = thread_name_prefix
        self._calls: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._pending: set[Future[Any]] = set()  # not yet done: what the exit waits for
        self._shut = False

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot submit to a pool that was shut down")
            self._pending.add(future)
            future.add_done_callback(self._pending.discard)
            self._calls.put((future, lambda: fn(*args)))
            if not self._threads:
                _open_pools.add(self)
                for n in range(self.workers):
                    thread = threading.Thread(
                        target=self._work, name=f"{self.prefix}_{n}", daemon=True
                    )
                    thread.start()
                    self._threads.append(thread)
        return future

    def _work(self) -> None:
        while True:
            item = self._calls.get()
            if item is None:
                return
            future, call = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = call()
            except BaseException as e:  # handed to whoever holds the future
                future.set_exception(e)
            else:
                future.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Cancel the queued calls (``cancel_futures``) and let the threads end once the running
        ones return; ``wait`` joins them (unbounded, as ``ThreadPoolExecutor`` does)."""
        with self._lock:
            self._shut = True
            _open_pools.discard(self)
            if cancel_futures:
                while True:
                    try:
                        item = self._calls.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            for _ in self._threads:
                self._calls.put(None)
            threads = list(self._threads)
        if wait:
            for thread in threads:
                thread.join()

    def pending(self) -> list[Future[Any]]:
        with self._lock:
            return list(self._pending)


_exit_waited = threading.Event()


def _bounded_exit_wait() -> None:
    """At exit, the pools never shut down get their ``exit_seconds`` (at once) for their
    calls. Once: a hook that must run after it (``serving.logs.start_in_replica``'s listener
    stop, registered later and so run earlier) calls it first, and the exit then does not
    wait a second ``exit_seconds`` for a call still running."""
    if _exit_waited.is_set():
        return
    _exit_waited.set()
    pools = [pool for pool in list(_open_pools) if pool.pending()]
    if pools:
        futures = [f for pool in pools for f in pool.pending()]
        wait(futures, timeout=max(pool.exit_seconds for pool in pools))


def exit_wait() -> None:
    """The bounded wait the process's exit gives the pools never shut down, now, for an exit
    hook that must follow it (see ``_bounded_exit_wait``)."""
    _bounded_exit_wait()


atexit.register(_bounded_exit_wait)
