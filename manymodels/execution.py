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
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from manymodels.exceptions import TrainingError
from manymodels.ray_lifetime import acquire, embedded, release

CHUNKS_PER_WORKER = 4  # enough slack to balance uneven chunks, few enough to keep overhead low
MAX_PARTITIONS_PER_CHUNK = 1000  # so progress and registry commits stream at large N
NOTICE_SECONDS = 30.0
"""How long a run waits on a Ray cluster that had no free CPU for its tasks, nothing done,
before it says so: Ray itself waits silently (it warns of pending tasks only in some cases)."""

logger = logging.getLogger(__name__)


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
        the backend that fitted it. From a thread other than the main one, OpenMP's pools only
        (see ``_one_thread``)."""
        for i, item in enumerate(items):
            with _one_thread():
                try:
                    result = fn(item, *shared)
                except Exception as e:  # the task died; the pipeline records it per partition
                    result = e
            yield i, result

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass


def _one_thread() -> Any:
    """Native pools on one thread while a fit runs: all of them from the main thread, OpenMP's
    only from another thread.

    OpenMP's thread count is each thread's own (``omp_set_num_threads`` sets the caller's);
    BLAS's (OpenBLAS, MKL, BLIS) is the whole process's. Limited and restored from several
    threads at once, it interleaved: two runs in a host's threads left its BLAS on one thread
    for the rest of the process (A saves 2 and sets 1, B saves 1, A restores 2, B restores
    1). A count of users would not do either: the OpenBLAS builds numpy and scipy ship
    (0.3.31, 0.3.30) ignore a count set from another thread once the main thread has set one,
    so a limit set from the main thread and "restored" from another would stay. So only the
    main thread, where a run's save and restore cannot interleave with each other, touches
    BLAS; a run in another thread fits with the host's BLAS threads (small fits are
    single-threaded in BLAS anyway: OpenBLAS splits only large products) and leaves the
    process as it found it."""
    main = threading.current_thread() is threading.main_thread()
    return _controller().limit(limits=1, user_api=None if main else "openmp")


_CONTROLLER: tuple[int, Any] | None = None  # (modules loaded when it looked, the controller)
_CONTROLLER_LOCK = threading.Lock()


def _controller() -> Any:
    """The process's native thread pools, looked for again only when a module was imported
    since the last look. ``threadpool_limits`` walks every loaded library on each call (~3 ms,
    9 ms under load: a run of 12 global tasks and 4 chunks spent 0.15 CPU-seconds there, 3 %
    of pizzaplace's one spec). A library that brings a pool (OpenMP with LightGBM or
    scikit-learn's boosting, a BLAS) is loaded by an import, so the count of imported modules
    tells when to look again."""
    global _CONTROLLER
    import sys

    from threadpoolctl import ThreadpoolController

    with _CONTROLLER_LOCK:
        seen = len(sys.modules)
        if _CONTROLLER is None or _CONTROLLER[0] != seen:
            _CONTROLLER = (seen, ThreadpoolController())
        return _CONTROLLER[1]


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
        self._pending: list[Any] = []
        # shared with the other runs of this process; False: the host's Ray, never ours to stop
        self._owns = acquire(
            ray, address, num_cpus=num_cpus, object_store_memory=object_store_memory
        )
        self._embedded = self._owns and embedded()  # no node can join it
        self._patient = False  # said why it waits, or saw a task finish: nothing more to say

    @property
    def workers(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def map_unordered(
        self, fn: Callable[..., Any], items: Sequence[Any], *shared: Any
    ) -> Iterator[tuple[int, Any]]:
        ray = self._ray
        starved = bool(items) and not self._patient and self._no_free_cpu()
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
            done: list[Any] = []
            while not done:
                wait = None if self._patient or not starved else NOTICE_SECONDS
                done, _ = ray.wait(self._pending, num_returns=1, timeout=wait)
                if not done:
                    self._say_busy(len(index_of))
            self._patient = True  # a task finished: they run
            ref = done[0]
            i = index_of.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as e:  # worker crashed, OOM, unpicklable result…
                result = e
            yield i, result
        self._pending = []

    def _no_free_cpu(self) -> bool:
        """Whether the cluster has no CPU free for a task (each takes one) before this run's
        are submitted. One with none at all is an error where no node can join it (the Ray
        manymodels started); elsewhere it is said at once, as an autoscaler may add one."""
        total = self._ray.cluster_resources().get("CPU", 0.0)
        if total < 1:
            where = "manymodels' embedded Ray" if self._embedded else "the Ray cluster"
            why = f"{where} has no CPU ({total:g} in all) and each training task needs one"
            if self._embedded:
                raise TrainingError(
                    f"{why}: give it num_cpus of 1 or more, or train with backend='local'"
                )
            logger.warning(
                "waiting for Ray: %s: nothing runs until a node with CPUs joins (an autoscaler "
                "may add one); stop with Ctrl-C, or train with backend='local'",
                why,
            )
            self._patient = True
            return False
        return bool(self._ray.available_resources().get("CPU", 0.0) < 1)

    def _say_busy(self, tasks: int) -> None:
        """One line when a run that found no CPU free has had none of its tasks finish after
        ``NOTICE_SECONDS``, and still none is free: other work (actors, tasks) may hold them,
        or its own tasks, which took CPUs that freed meanwhile (Ray does not say which)."""
        self._patient = True
        free = self._ray.available_resources().get("CPU", 0.0)
        if free < 1:
            total = self._ray.cluster_resources().get("CPU", 0.0)
            logger.warning(
                "waiting for Ray: no free CPU on the cluster (%g of %g available) and none of "
                "the %d task(s) this run submitted has finished after %g s: other work "
                "(actors, tasks) may hold them; the run goes on as they free",
                free, total, tasks, NOTICE_SECONDS,
            )  # fmt: skip

    def cancel(self) -> None:
        for ref in self._pending:
            self._ray.cancel(ref, force=True)
        self._pending = []

    def close(self) -> None:
        """Done with Ray: the last backend using the Ray manymodels started shuts it down."""
        owns, self._owns = self._owns, False
        if owns:
            release()


BACKENDS = ("auto", "ray", "local")
RAY_MIN_WORK = 1_000_000
"""Below this many rows × candidate configurations, ``auto`` trains in this process.

Embedded Ray pays a fixed ~5–8 s (start-up, worker imports and warm-up) on a quiet 2-core
machine, and at most divides the rest by the number of cores ``w``; it wins only when the
in-process time exceeds ``start-up × w / (w − 1)``, ~10–16 s on 2 cores. In process a Ridge
partition costs ~15 µs per row and configuration (benchmarks/README.md §1: 10,000 partitions ×
100 rows × 1 configuration is 14.1 s of single-core work; on warm Ray 8.6 s; the command 17–19
s with Ray's start-up, benchmarks/HISTORY.md §1), so the two meet near 1,000,000 units. Measured on
a busy machine (2026-11-30, whole process, Ray start-up included): 36 × 60 rows × 3 configurations
7.9 s in process vs 53 s on Ray, 200 × 50 × 3 13.9 s vs 50 s, 1,000 × 50 × 3 76 s vs 120 s; the
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
