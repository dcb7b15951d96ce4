"""Where chunks of partitions run: in this process, or fanned out on Ray.

The seam is one method, ``Backend.map_unordered(fn, items, *shared)``, yielding ``(index,
result)`` as each item finishes (``result`` is the exception if the task itself died), so the
pipeline can stream results into the registry and never waits for the slowest chunk to commit
the others. ``import ray`` happens only in ``RayBackend``.

Work is split into **chunks of partitions per task**, sized from the partition count and the
cluster's CPUs: one task per partition would spend more on scheduling than on fitting.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import select
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np

from manymodels.exceptions import TrainingError

CHUNKS_PER_WORKER = 4  # enough slack to balance uneven chunks, few enough to keep overhead low
MAX_PARTITIONS_PER_CHUNK = 1000  # so progress and registry commits stream at large N
_RAY_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"


class Backend(Protocol):
    """Runs ``fn(item, *shared)`` for each item, yielding ``(index, result_or_exception)``."""

    @property
    def workers(self) -> int: ...

    def map_unordered(
        self, fn: Callable[..., Any], items: Sequence[Any], *shared: Any
    ) -> Iterator[tuple[int, Any]]: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


def plan_chunks(
    offsets: np.ndarray,
    workers: int,
    *,
    per_worker: int = CHUNKS_PER_WORKER,
    max_partitions: int = MAX_PARTITIONS_PER_CHUNK,
) -> list[tuple[int, int]]:
    """``(start, stop)`` partition ranges with roughly equal *rows* each (rows ≈ work)."""
    n = len(offsets) - 1
    if n <= 0:
        return []
    target = min(n, max(workers * per_worker, math.ceil(n / max_partitions)))
    total = offsets[-1] - offsets[0]
    cuts = offsets[0] + total * np.arange(1, target) / target
    bounds = np.searchsorted(offsets, cuts, side="left")
    edges = sorted({0, n, *bounds.clip(1, n - 1).tolist()})
    chunks = list(itertools.pairwise(edges))
    # Very skewed row counts can still give one huge chunk; split by partition count too.
    out: list[tuple[int, int]] = []
    for a, b in chunks:
        step = max_partitions
        out += [(s, min(b, s + step)) for s in range(a, b, step)]
    return out


class InProcessBackend:
    """Runs every item here, in order: for tests, debugging, and tiny jobs not worth a cluster."""

    name = "local"
    workers = 1

    def map_unordered(
        self, fn: Callable[..., Any], items: Sequence[Any], *shared: Any
    ) -> Iterator[tuple[int, Any]]:
        """One thread per native pool (OpenMP, BLAS) while ``fn`` runs, as in a Ray worker
        (``num_cpus=1``): per-partition fits are small, and HistGradientBoosting's threads
        spinning up for each cost more than they gave (65 tiny fits: 87 s in process with
        threads, 24 s on Ray, busy 2-core machine) — and a model's result must not depend on
        the backend that fitted it."""
        from threadpoolctl import threadpool_limits

        for i, item in enumerate(items):
            with threadpool_limits(limits=1):
                try:
                    result = fn(item, *shared)
                except Exception as e:  # the task died; the pipeline records it per partition
                    result = e
            yield i, result

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass


class RayBackend:
    """Chunks as Ray tasks: embedded local Ray by default, or a cluster by ``address``.

    At most ``2 × workers`` tasks are in flight, so the driver never ships (or holds results
    for) the whole table at once.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        object_store_memory: int | None = None,
    ) -> None:
        import ray

        self._ray = ray
        self._owns = False
        self._reaper: _Reaper | None = None
        self._pending: list[Any] = []
        if not ray.is_initialized():
            if address:
                _probe(address)
            try:
                # "local" starts an embedded instance; None would silently join any cluster
                # that `ray start` left running on this machine.
                with _quiet_token_notice(embedded=address is None), _owned_env() as token:
                    # A cluster we start dies with us, even when we are killed (see _Reaper);
                    # started first, as ray.init itself takes seconds to kill us in.
                    self._reaper = _Reaper(token) if address is None else None
                    ray.init(
                        address=address or "local",
                        num_cpus=num_cpus if address is None else None,
                        object_store_memory=object_store_memory if address is None else None,
                        include_dashboard=False,
                        log_to_driver=False,
                        configure_logging=False,
                    )
            except Exception as e:
                self.close()
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                raise TrainingError(f"cannot start or reach {where}: {e}") from e
            self._owns = True

    @property
    def workers(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def map_unordered(
        self, fn: Callable[..., Any], items: Sequence[Any], *shared: Any
    ) -> Iterator[tuple[int, Any]]:
        ray = self._ray
        remote = ray.remote(num_cpus=1, max_retries=1)(fn)
        shared_refs = [ray.put(s) for s in shared]
        limit = 2 * self.workers
        index_of: dict[Any, int] = {}
        next_item = 0
        while next_item < len(items) or index_of:
            while next_item < len(items) and len(index_of) < limit:
                ref = remote.remote(items[next_item], *shared_refs)
                index_of[ref] = next_item
                next_item += 1
            self._pending = list(index_of)
            done, _ = ray.wait(self._pending, num_returns=1)
            ref = done[0]
            i = index_of.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as e:  # worker crashed, OOM, unpicklable result…
                result = e
            yield i, result
        self._pending = []

    def cancel(self) -> None:
        for ref in self._pending:
            self._ray.cancel(ref, force=True)
        self._pending = []

    def close(self) -> None:
        if self._reaper is not None:
            self._reaper.look()
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        if self._reaper is not None:
            self._reaper.close()  # whatever shutdown left behind goes now, not in a minute
            self._reaper = None
        self._owns = False


@contextmanager
def _quiet_token_notice(*, embedded: bool) -> Iterator[None]:
    """Mute Ray's "Token authentication is enabled… Set RAY_AUTH_MODE=disabled" notice while
    an *embedded* instance starts: the cluster is ours, local and short-lived, and the notice
    would open every command's output. Token auth itself stays on (Ray's default: the token
    in ``~/.ray/auth_token``); a cluster named by ``--ray-address`` is left as Ray sets it up.

    The notice is a warning of one logger; setting ``RAY_AUTH_MODE=token`` instead would need
    Ray's cached config refreshed in this process, or the driver cannot reach its own GCS."""
    logger = logging.getLogger(_RAY_TOKEN_LOGGER)
    level = logger.level
    if embedded:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


_OWNER_ENV = "MANYMODELS_RAY_OWNER"

# The reaper's whole program: wait for EOF on stdin (the driver closed it, or died), then
# SIGKILL every process that inherited the driver's token, until none is left (bounded).
_REAPER = r"""
import os, select, signal, sys, time
mark = f"{sys.argv[1]}={sys.argv[2]}".encode() + b"\0"
driver = sys.argv[3]

def stat(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()

def started(pid):
    return stat(pid)[19]

def marked(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return mark in f.read()

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
    # Ray's processes: the driver's children that carry the token (GCS, raylet) and all
    # below them (the raylet's agents, workers), each with its start time, so that a pid the
    # system gives to someone else later is never killed; nothing else the driver started.
    # Every look walks the whole tree again: a process noted before (the raylet) may have
    # started children since (its agents, whose setproctitle can erase the token).
    for child in children(pid):
        try:
            start = started(child)
            if pid != driver or out.get(child) == start or marked(child):
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
            # processes started between two looks carry the token (unless they rewrote
            # their environment, as setproctitle does: hence the looks)
            hit = (pid in seen and started(pid) == seen[pid]) or marked(pid)
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
def _owned_env() -> Iterator[str]:
    """Mark the processes an embedded ``ray.init`` starts with a token in their environment.

    Every process Ray starts (GCS, raylet, agents, workers) inherits it; the driver's
    environment is restored right after, so later subprocesses of ours are not marked."""
    token = uuid.uuid4().hex
    previous = os.environ.get(_OWNER_ENV)
    os.environ[_OWNER_ENV] = token
    try:
        yield token
    finally:
        if previous is None:
            os.environ.pop(_OWNER_ENV, None)
        else:
            os.environ[_OWNER_ENV] = previous


class _Reaper:
    """A tiny process that kills the embedded cluster's processes once this one is gone.

    Ray already ties its GCS and raylet to the driver (``PR_SET_PDEATHSIG``), but the raylet's
    agents outlive a SIGKILLed driver by ~70 s (Ray 2.60: they spend a 60 s timeout reporting
    the raylet's death to the dead GCS), and workers linger with them. Ray's own reaper would
    make the driver a process-group leader, which breaks Ctrl-C in a terminal; this one waits
    for EOF on a pipe only the driver holds, noting the driver's descendants every 2 s, then
    kills them and every process carrying the token ``_owned_env`` gave them. (The token alone
    was not enough: the agents' ``setproctitle`` can overwrite their environment, and in one CI
    run of ten two agents outlived the driver.) Linux only (``/proc``); elsewhere it is not
    started.
    """

    def __init__(self, token: str) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        if not os.path.isdir("/proc"):
            return
        env = {k: v for k, v in os.environ.items() if k != _OWNER_ENV}  # never kills itself
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _REAPER, _OWNER_ENV, token, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C in the terminal must not stop it before its job
        )

    def look(self, timeout: float = 5.0) -> None:
        """Have the reaper note Ray's processes now, and wait (bounded) until it has: called
        before ``ray.shutdown``, which stops the raylet first and leaves its agents to init,
        where an agent started since the last look (its token erased by ``setproctitle``)
        could no longer be found."""
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:
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
        if self._proc is None:
            return
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


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes: ``ray.init`` retries an unreachable GCS for a long time."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or address == "auto":
        return  # "auto" and other forms are Ray's to resolve
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise TrainingError(f"cannot start or reach the Ray cluster at {address}: {e}") from None


BACKENDS = ("auto", "ray", "local")
RAY_MIN_WORK = 1_000_000
"""Below this many rows × candidate configurations, ``auto`` trains in this process.

Embedded Ray pays a fixed ~5–8 s (start-up, worker imports and warm-up) on a quiet 2-core
machine, and at most divides the rest by the number of cores ``w``; it wins only when the
in-process time exceeds ``start-up × w / (w − 1)``, ~10–16 s on 2 cores. In process a Ridge
partition costs ~15 µs per row and configuration (benchmarks/README.md: 10,000 partitions ×
100 rows × 1 configuration is 14.1 s of single-core work; on warm Ray 8.6 s, the command 17–19
s with Ray's start-up), so the two meet near 1,000,000 units. Measured on a busy machine
(2026-11-30, whole process, Ray start-up included): 36 × 60 rows × 3 configurations 7.9 s in
process vs 53 s on Ray, 200 × 50 × 3 13.9 s vs 50 s, 1,000 × 50 × 3 76 s vs 120 s; the
store-sales sample (16,480 units) 2.6 s vs 7.5–8.2 s on a quiet machine. Forests cost more per
row than Ridge: such specs cross the line later than they should, which only costs part of
the speed-up Ray would have given."""


def choose_backend(
    name: str,
    *,
    rows: int,
    configurations: int,
    partitions: int,
    address: str | None = None,
    cpus: int | None = None,
) -> tuple[str, str]:
    """``(backend, why)``: ``ray`` or ``local`` for a job, and the reason a person reads.

    ``ray`` and ``local`` are taken as given. ``auto`` picks Ray when a cluster address is
    given, else in process when one task is all there is (one partition, one CPU) or the work
    (``rows × configurations``) is below ``RAY_MIN_WORK``, else embedded Ray.
    """
    known(name)
    if name != "auto":
        return name, f"--backend {name}"
    work = rows * configurations
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    if address:
        return "ray", f"a Ray cluster was given ({address})"
    if partitions <= 1:
        return "local", "one partition is one task: Ray could not run it in parallel"
    if cpus < 2:
        return "local", "one CPU: Ray could not run tasks in parallel"
    if work < RAY_MIN_WORK:
        return "local", (
            f"small job: {rows:,} rows to fit × {configurations} configuration(s) = {work:,} < "
            f"{RAY_MIN_WORK:,}, Ray's start-up would cost more than it saves"
        )
    return "ray", (
        f"large job: {rows:,} rows to fit × {configurations} configuration(s) = {work:,} ≥ "
        f"{RAY_MIN_WORK:,}, spread over {cpus} CPUs"
    )


def known(name: str) -> None:
    """Raises ``TrainingError`` for a backend name that is not ``auto``, ``ray`` or ``local``."""
    if name not in BACKENDS:
        raise TrainingError(f"unknown backend '{name}' (expected 'auto', 'ray' or 'local')")


def backend_name(backend: Backend) -> str:
    """What a summary calls a backend object: its ``name`` (``local``, ``ray``)."""
    return str(getattr(backend, "name", type(backend).__name__))


SCORE_RAY_MIN_PARTITIONS = 20_000
"""From this many scored partitions, ``auto`` scores on Ray.

Scoring loads each partition's model once and predicts all its rows in one call: in process
that is ~0.2–0.5 ms a partition for a Ridge, rows almost free (measured 2026-12-02, busy
2-core machine: 2,000 partitions × 20 rows 0.45 s, × 100 rows 0.55 s; 200 × 2,500 rows
0.09 s). Embedded Ray's fixed 5–8 s of start-up then pays off only past ~50,000 Ridge
partitions on 2 cores; a forest's artifact takes longer to load, so the line is drawn lower.
Before this rule ``score`` defaulted to Ray: 6 s for a 5-row table."""


def choose_scoring_backend(
    name: str, *, partitions: int, address: str | None = None, cpus: int | None = None
) -> str:
    """``ray`` or ``local`` for a scoring job: ``auto`` is Ray with a cluster address, or from
    ``SCORE_RAY_MIN_PARTITIONS`` partitions on more than one CPU, else this process; the
    others as given."""
    known(name)
    if name != "auto":
        return name
    if address:
        return "ray"
    many = partitions >= SCORE_RAY_MIN_PARTITIONS and (cpus or os.cpu_count() or 1) > 1
    return "ray" if many else "local"


def make_backend(name: str = "ray", *, address: str | None = None) -> Backend:
    """``ray`` (embedded, or a cluster when ``address`` is given) or ``local`` (this process)."""
    if name == "local":
        return InProcessBackend()
    if name == "ray":
        return RayBackend(address)
    raise TrainingError(f"unknown backend '{name}' (expected 'ray' or 'local')")
