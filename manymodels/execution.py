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
import math
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from manymodels.exceptions import TrainingError

CHUNKS_PER_WORKER = 4  # enough slack to balance uneven chunks, few enough to keep overhead low
MAX_PARTITIONS_PER_CHUNK = 1000  # so progress and registry commits stream at large N


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

    workers = 1

    def map_unordered(
        self, fn: Callable[..., Any], items: Sequence[Any], *shared: Any
    ) -> Iterator[tuple[int, Any]]:
        for i, item in enumerate(items):
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
        self._pending: list[Any] = []
        if not ray.is_initialized():
            if address:
                _probe(address)
            try:
                # "local" starts an embedded instance; None would silently join any cluster
                # that `ray start` left running on this machine.
                ray.init(
                    address=address or "local",
                    num_cpus=num_cpus if address is None else None,
                    object_store_memory=object_store_memory if address is None else None,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except Exception as e:
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
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns = False


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes: ``ray.init`` retries an unreachable GCS for a long time."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or address == "auto":
        return  # "auto" and other forms are Ray's to resolve
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise TrainingError(f"cannot start or reach the Ray cluster at {address}: {e}") from None


def make_backend(name: str = "ray", *, address: str | None = None) -> Backend:
    """``ray`` (embedded, or a cluster when ``address`` is given) or ``local`` (this process)."""
    if name == "local":
        return InProcessBackend()
    if name == "ray":
        return RayBackend(address)
    raise TrainingError(f"unknown backend '{name}' (expected 'ray' or 'local')")
