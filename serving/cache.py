"""An LRU of loaded models keyed by ``(partition key, version)``, bounded by count.

The version is part of the key, so a promotion never invalidates anything: requests that
resolved the old version finish on it, new requests load (or find) the new one, and the old
entry simply ages out. Models never expire for being idle; only the size bound evicts.

Concurrent first requests for one model load it once: the first caller loads under a per-key
lock while the others wait on that lock and then find the model (double-checked locking, the
habit of Ray Serve's ``multiplex.py``). A load that raises (a tampered artifact, a missing
version) caches nothing, so the next request tries again and fails or succeeds on its own.

All methods are blocking and thread-safe; async callers run ``get`` in a worker thread.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import is_not
from typing import Any, Generic, TypeVar

logger = logging.getLogger("manymodels.serving.cache")

T = TypeVar("T")
CacheKey = tuple[str, int]
RECENT_LOADS = 9  # recent_load_seconds is the median of this many loads


@dataclass(frozen=True)
class CacheStats:
    """Counters since start. ``misses`` waited for a load (their own or another caller's);
    ``loads`` is how many loads actually ran, successful or not."""

    hits: int
    misses: int
    loads: int
    load_failures: int
    evictions: int
    load_seconds: float
    size: int
    max_size: int


class ModelCache(Generic[T]):
    """``get(key, version)`` returns the cached model or loads it with ``loader(key, version)``.

    ``on_load(key, version, seconds)`` is called after each successful load (for metrics),
    ``on_evict(key, version, model)`` for each model the size bound evicts (outside the lock).
    ``key_of(key, version)`` gives the tuple a loaded model is stored under (an equal one):
    callers that look models up with the same objects (``AliasTable.pairs_many``) are then
    answered by identity, without comparing tuples item by item.
    """

    def __init__(
        self,
        loader: Callable[[str, int], T],
        *,
        max_size: int,
        on_load: Callable[[str, int, float], None] | None = None,
        on_evict: Callable[[str, int, T], None] | None = None,
        key_of: Callable[[str, int], CacheKey] | None = None,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, not {max_size}")
        self.loader = loader
        self.max_size = max_size
        self.on_load = on_load
        self.on_evict = on_evict
        self.key_of = key_of
        self._items: OrderedDict[CacheKey, T] = OrderedDict()
        self._lock = threading.Lock()  # guards _items, _loading and the counters
        self._loading: dict[CacheKey, threading.Lock] = {}
        self._hits = self._misses = self._loads = self._failures = self._evictions = 0
        self._load_seconds = 0.0
        self._recent: deque[float] = deque(maxlen=RECENT_LOADS)  # see recent_load_seconds
        self._recent_seconds = 0.0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def entries(self) -> list[CacheKey]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._items)

    def discard(self, unwanted: Callable[[T], bool]) -> int:
        """Drop every cached model ``unwanted`` says must go (O(cache), for a rare event such
        as a policy change); returns how many went. A load in flight is not stopped."""
        with self._lock:
            gone = [k for k, item in self._items.items() if unwanted(item)]
            for k in gone:
                del self._items[k]
            return len(gone)

    def drop(self, keys: Collection[CacheKey]) -> int:
        """Drop these models (versions deleted from the registry); returns how many went."""
        with self._lock:
            return _drop(self._items, keys)

    def peek(self, key: str, version: int) -> T | None:
        """The cached model, or ``None``: never loads. A hit counts and refreshes its place."""
        with self._lock:
            item = self._lookup((key, version))
            if item is not None:
                self._hits += 1
            return item

    def peek_many(self, keys: Sequence[CacheKey]) -> list[T | None]:
        """``peek`` of many models under one lock, counting no hit: the caller counts those it
        used (``add_hits``), or asks again by ``peek`` if it does not use them."""
        with self._lock:
            return _touch_many(self._items, keys)

    def add_hits(self, n: int) -> None:
        with self._lock:
            self._hits += n

    def held(self, key: str, version: int) -> T | None:
        """The cached model, or ``None``, without counting a hit or refreshing its place: a
        second look at a model the request has already used (and counted)."""
        with self._lock:
            return self._items.get((key, version))

    @property
    def recent_load_seconds(self) -> float:
        """The median of the last ``RECENT_LOADS`` load times (0 before the first load).

        A median, not a mean: a full garbage collection (~140 ms under cold load) or a
        scheduler hiccup that lands inside one load is timed as that load, and a moving average
        jumped from ~1 ms to ~28 ms on it, sending every miss to a thread for seconds. Only
        loads that are slow again and again move the median. A failed load may count (a disk
        that timed out) but only when it took longer than the median: a missing file fails
        fast and says nothing about how long real loads take."""
        return self._recent_seconds

    def _record(self, seconds: float) -> None:
        """Under ``_lock``: one more load time for ``recent_load_seconds``."""
        self._recent.append(seconds)
        self._recent_seconds = statistics.median(self._recent)

    def loads_under_way(self) -> frozenset[CacheKey]:
        """The models being loaded now (each has read, or will read, its registry row)."""
        with self._lock:
            return frozenset(self._loading)

    def loading(self, key: str, version: int) -> bool:
        """Whether a load of this model is under way (a ``get`` now would wait for it)."""
        with self._lock:
            return (key, version) in self._loading

    def get(self, key: str, version: int) -> T:
        k = (key, version)
        with self._lock:
            item = self._lookup(k)
            if item is not None:
                self._hits += 1
                return item
            self._misses += 1
            key_lock = self._loading.setdefault(k, threading.Lock())
        with key_lock:
            with self._lock:
                item = self._lookup(k)
                if item is None:  # the load we waited for failed (and forgot it): ours is
                    self._loading.setdefault(k, key_lock)  # under way, for loads_under_way
            if item is not None:  # another caller loaded it while we waited
                return item
            return self._load(k, key_lock)

    def _lookup(self, k: CacheKey) -> T | None:
        item = self._items.get(k)
        if item is not None:
            self._items.move_to_end(k)
        return item

    def _load(self, k: CacheKey, key_lock: threading.Lock) -> T:
        started = time.perf_counter()
        try:
            item = self.loader(*k)
        except BaseException:
            took = time.perf_counter() - started
            with self._lock:
                self._loads += 1
                self._failures += 1
                if took > self._recent_seconds:  # a failure may raise the median, not lower it
                    self._record(took)
                self._forget_lock(k, key_lock)
            raise
        seconds = time.perf_counter() - started
        evicted: list[tuple[CacheKey, T]] = []
        if self.key_of is not None:
            k = self.key_of(*k)
        with self._lock:
            self._loads += 1
            self._load_seconds += seconds
            self._record(seconds)
            self._items[k] = item
            self._items.move_to_end(k)
            while len(self._items) > self.max_size:
                evicted.append(self._items.popitem(last=False))
            self._evictions += len(evicted)
            self._forget_lock(k, key_lock)
        if logger.isEnabledFor(logging.DEBUG):  # one per miss: metrics count them, logs need not
            logger.debug(
                "loaded model %s v%d in %.1f ms%s",
                k[0],
                k[1],
                seconds * 1000,
                f"; evicted {', '.join(f'{e[0]} v{e[1]}' for e, _ in evicted)}" if evicted else "",
            )
        if self.on_evict is not None:
            for (key, version), gone in evicted:
                self.on_evict(key, version, gone)
        if self.on_load is not None:
            self.on_load(k[0], k[1], seconds)
        return item

    def _forget_lock(self, k: CacheKey, key_lock: threading.Lock) -> None:
        if self._loading.get(k) is key_lock:
            del self._loading[k]

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                loads=self._loads,
                load_failures=self._failures,
                evictions=self._evictions,
                load_seconds=self._load_seconds,
                size=len(self._items),
                max_size=self.max_size,
            )


class CoefficientCache(Generic[T]):
    """A second, larger LRU for what the model cache evicts when a smaller form of it can
    still answer: for a linear model, its coefficients (``serving.served.coefficients_only``).

    A Ridge behind a scaler is a few dozen floats, yet the unpickled estimator, its feature
    schema (with the partition's history for forecasting) and the objects around them cost
    kilobytes and dozens of objects the garbage collector walks: ~2 KB per entry against
    ~6 KB per cached Ridge (tracemalloc, 5 features), so ten times ``cache_size`` of them
    (the router's default) is ~20 MB at a cache of 1,000. A router whose traffic spreads over
    more partitions than ``cache_size`` then answers most requests without a load: no read,
    no sha256, no unpickle. Entries come only from models
    that were loaded — verified and unpickled — in this process, so the artifact checks are
    never skipped, only not repeated. ``get`` never loads.
    """

    def __init__(self, *, max_size: int) -> None:
        self.max_size = max_size
        self._items: OrderedDict[CacheKey, T] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._items)

    def entries(self) -> list[CacheKey]:
        with self._lock:
            return list(self._items)

    def drop(self, keys: Collection[CacheKey]) -> int:
        """Drop these entries (versions deleted from the registry); returns how many went."""
        with self._lock:
            return _drop(self._items, keys)

    def get(self, key: str, version: int) -> T | None:
        if not self._items:  # max_size 0, or nothing evicted yet: no lock
            return None
        with self._lock:
            item = self._items.get((key, version))
            if item is not None:
                self._items.move_to_end((key, version))
                self.hits += 1
            return item

    def peek_many(self, keys: Sequence[CacheKey]) -> list[T | None]:
        """``get`` of many entries under one lock, counting no hit (``hits`` is the caller's)."""
        if not self._items:
            return [None] * len(keys)
        with self._lock:
            return _touch_many(self._items, keys)

    def add_hits(self, n: int) -> None:
        with self._lock:
            self.hits += n

    def put(self, key: str, version: int, item: T) -> None:
        if self.max_size < 1:
            return
        with self._lock:
            self._items[(key, version)] = item
            self._items.move_to_end((key, version))
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)

    def discard(self, unwanted: Callable[[T], bool]) -> int:
        """Drop every entry ``unwanted`` says must go; returns how many went."""
        with self._lock:
            gone = [k for k, item in self._items.items() if unwanted(item)]
            for k in gone:
                del self._items[k]
            return len(gone)


def _drop(items: OrderedDict[CacheKey, Any], keys: Collection[CacheKey]) -> int:
    """Remove ``keys`` from ``items`` (the caller holds the cache's lock); how many were there."""
    gone = [k for k in keys if items.pop(k, None) is not None]
    return len(gone)


def _touch_many(items: OrderedDict[Any, Any], keys: Sequence[Any]) -> list[Any]:
    """Each key's item or ``None``, the found ones moved to the recent end (the caller holds
    the cache's lock)."""
    found = list(map(items.get, keys))
    # consumed in C: no Python step per key
    try:  # all found, as a batch's mostly are: no filter
        deque(map(items.move_to_end, keys), maxlen=0)
    except KeyError:  # those moved before the missing one move again, in the same order
        deque(map(items.move_to_end, compress(keys, map(is_not, found, repeat(None)))), maxlen=0)
    return found
