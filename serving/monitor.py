"""What the router keeps of the rows it scores, for drift: a bounded sample, flushed to the
registry as bin counts.

On the hot path (``RowSampler.offer_many``) a request costs one lock and a few list operations
per model: at most ``PER_REQUEST`` of its rows per model go into that partition's reservoir of
``rows_per_partition`` rows, and a batch over more than ``models_per_request`` models offers
the rows of every k-th of them in turn (k = models / models_per_request: the Python loop over
100 models cost ~20 % of a 100-partition batch's throughput). Each reservoir is a uniform sample
of what was offered since the last flush (once
full, the gap to the next row kept is drawn — exponential with mean ``seen / rows`` — so rows
passed over cost a comparison, not a random number), and at most
``max_partitions`` partitions are held at once — past that, rows of further partitions are
dropped (counted) and the flusher is woken early. So memory is bounded by
``max_partitions × rows_per_partition`` rows whatever the traffic.

Every ``flush_seconds`` (and at shutdown) the flusher swaps the reservoirs out, bins each
partition's rows with its version's training profile (``manymodels.monitoring.profile``),
counts its text values that training never had (``monitoring.unseen``: a set lookup a row)
and adds the counts to the registry (``monitoring.store.add_samples``) in one transaction, off
the request path. Prometheus sees totals only — rows sampled and dropped, actuals received, and
how many partitions are over the drift threshold — never a label per partition.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from manymodels.feature_schema import FeatureSchema
from manymodels.monitoring.profile import live_counts, with_calendar, with_lags
from manymodels.monitoring.report import Thresholds
from manymodels.monitoring.unseen import unseen_counts
from manymodels.registry.engine import batches
from manymodels.registry.pg_silence import answered_by, long_statements

if TYPE_CHECKING:
    from serving.served import ServedModel
    from serving.service import ModelService

logger = logging.getLogger("manymodels.serving")

PER_REQUEST = 16
# A flush reads the schemas of ``FLUSH_CHUNK`` evicted models at a time (bounded reads and
# memory) and gives the GIL up after every ``YIELD_EVERY`` models binned (~1 ms of Python):
# the flush's JSON and binning run in a thread beside the event loop, which otherwise waited
# up to the 5 ms switch interval each time it wanted the GIL back — that roughly doubled the
# cold p99 (190-250 -> 420-460 ms, #17). Yielding after every model made a flush wait for the
# event loop once per model, up to 5 ms each when the loop is saturated.
FLUSH_CHUNK = 200
YIELD_EVERY = 8
STOP_SECONDS = 10.0  # the most a router's exit waits for the monitor's last flush (``stop``)
Pair = tuple[str, int]
T = TypeVar("T")


def production_last(samples: list[Any], production: Callable[[str], int | None]) -> list[Any]:
    """``samples`` with each partition's production version after its others: of several
    samples of one partition, the drift row keeps the last (``store.add_samples``)."""
    return sorted(samples, key=lambda s: s.version == production(s.key))  # stable


class RowSampler:
    """Per (partition, version), a reservoir of the rows scored since the last flush."""

    def __init__(
        self,
        *,
        rows_per_partition: int = 64,
        max_partitions: int = 2_000,
        models_per_request: int = 8,
    ) -> None:
        self.rows_per_partition = rows_per_partition
        self.max_partitions = max_partitions
        self.models_per_request = models_per_request
        self._turn = 0
        # per model: its reservoir, and [rows seen, the next row to keep once it is full]
        self._pending: dict[Pair, tuple[list[Mapping[str, Any]], list[int]]] = {}
        self._lock = threading.Lock()
        self._random = random.Random(0)
        self.full = threading.Event()  # the partition bound was hit: flush early
        self.sampled_rows = 0
        self.dropped_rows = 0

    def offer(
        self,
        key: str,
        version: int,
        rows: Sequence[Mapping[str, Any]],
        idx: Sequence[int] | None = None,
    ) -> None:
        """Consider a request's rows of one model (``idx`` selects them from ``rows``)."""
        self.offer_many(rows, ((key, version, idx),))

    def offer_groups(
        self,
        rows: Sequence[Mapping[str, Any]],
        pairs: Sequence[Pair],
        groups: Mapping[str, Sequence[int]],
    ) -> None:
        """``offer_many`` for a batch's models (``pairs``) and their rows (``groups``, by
        key): this request's turn of them is chosen before their entries are built."""
        self._offer(rows, [(k, v, groups[k]) for k, v in self._turn_of(pairs)])

    def _turn_of(self, models: Sequence[T]) -> Sequence[T]:
        """All of ``models``, or, past ``models_per_request``, every k-th from this request's
        turn (round robin: each model offered one request in k)."""
        if len(models) <= self.models_per_request:
            return models
        k = -(-len(models) // self.models_per_request)
        self._turn = (self._turn + 1) % k
        return models[self._turn :: k]

    def offer_many(
        self,
        rows: Sequence[Mapping[str, Any]],
        models: Iterable[tuple[str, int, Sequence[int] | None]],
    ) -> None:
        """Consider a request's rows of several models at once (one lock for all): each
        ``(key, version, idx)`` names a model and its rows' indexes (``None``: all rows)."""
        self._offer(rows, self._turn_of(list(models)))

    def _offer(
        self,
        rows: Sequence[Mapping[str, Any]],
        chosen: Sequence[tuple[str, int, Sequence[int] | None]],
    ) -> None:
        """``offer_many`` of this request's turn of models (``_turn_of`` chose them). A model
        with one row, as each of a batch over 100 partitions has, skips the loop over its
        rows: that loop's set-up was most of its cost (the same row kept, the same draws)."""
        cap = self.rows_per_partition
        pending = self._pending
        draw = self._random
        sampled = 0
        with self._lock:
            for key, version, idx in chosen:
                n = len(idx) if idx is not None else len(rows)
                entry = pending.get((key, version))
                if entry is None:
                    if len(pending) >= self.max_partitions:
                        self.dropped_rows += min(n, PER_REQUEST)
                        self.full.set()
                        continue
                    entry = pending[(key, version)] = ([], [0, 0])
                reservoir, state = entry  # state: rows seen, the next one to keep once full
                if n == 1:
                    sampled += 1
                    state[0] += 1
                    if len(reservoir) < cap:
                        reservoir.append(rows[idx[0]] if idx is not None else rows[0])
                    elif state[0] >= state[1]:  # as below
                        reservoir[draw.randrange(cap)] = (
                            rows[idx[0]] if idx is not None else rows[0]
                        )
                        state[1] = state[0] + 1 + int(draw.expovariate(cap / state[0]))
                    continue
                step = n // PER_REQUEST or 1
                taken = 0
                for j in range(0, n, step):
                    if taken == PER_REQUEST:
                        break
                    taken += 1
                    state[0] += 1
                    if len(reservoir) < cap:
                        reservoir.append(rows[idx[j]] if idx is not None else rows[j])
                    elif state[0] >= state[1]:  # kept with probability cap/seen, by skipping
                        reservoir[draw.randrange(cap)] = (
                            rows[idx[j]] if idx is not None else rows[j]
                        )
                        state[1] = state[0] + 1 + int(draw.expovariate(cap / state[0]))
                sampled += taken
            self.sampled_rows += sampled

    def take(self) -> dict[Pair, list[Mapping[str, Any]]]:
        """Everything sampled since the last take (the reservoirs start empty again)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self.full.clear()
        return {pair: rows for pair, (rows, _) in pending.items()}

    def held(self) -> int:
        with self._lock:
            return sum(len(rows) for rows, _ in self._pending.values())


class Monitor:
    """The sampler, its flusher thread and the monitoring figures of one router."""

    def __init__(
        self,
        service: ModelService,
        *,
        flush_seconds: float = 60.0,
        sampler: RowSampler | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.service = service
        self.flush_seconds = flush_seconds
        self.sampler = sampler or RowSampler()
        self.thresholds = thresholds or Thresholds()
        self.actual_rows = 0
        self.flushes = 0
        self.drifted = 0
        self.last_flush_seconds = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()

    def start(self) -> None:
        self.service.sampler = self.sampler
        self._thread = threading.Thread(target=self._run, name="monitor-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling, then flush what is held (so a restart loses nothing sampled) — within
        ``STOP_SECONDS``: a registry database that does not answer held a router's exit on
        SIGTERM for as long as its connections waited (25 s with PostgreSQL frozen; Kubernetes
        kills 30 s after its SIGTERM; found by the outage attack). The last flush's waits for
        PostgreSQL end by then (``answered_by``): it fails like any flush, its sample dropped
        and logged, rather than running on in a thread after the registry is closed."""
        self.service.sampler = None
        self._stop.set()
        self.sampler.full.set()
        deadline = time.monotonic() + STOP_SECONDS
        if self._thread is not None:
            self._thread.join(timeout=STOP_SECONDS)
            if self._thread.is_alive():  # its own flush still waits for the database
                logger.warning(
                    "monitoring: a flush still runs after %g s (is the registry database "
                    "answering?): the last one is skipped, its sample dropped",
                    STOP_SECONDS,
                )
                return
        with answered_by(deadline):
            self.flush()

    def _run(self) -> None:
        self.recount()  # a router (re)started reads what the registry holds, not 0
        deadline = time.monotonic() + self.flush_seconds
        while not self._stop.is_set():
            self.sampler.full.wait(timeout=max(deadline - time.monotonic(), 0.0))
            if self._stop.is_set():
                return
            self.flush()
            deadline = time.monotonic() + self.flush_seconds

    def flush(self) -> int:
        """Bin what was sampled and add it to the registry; returns partitions written. A
        failure (a read-only or unreachable registry) is logged and the sample dropped."""
        from manymodels.monitoring import store

        # Not a request: a flush of 100,000 partitions' samples may wait silently on its
        # server (an upsert of many rows, a count over the drift index, a lock another
        # session holds); cut at the silence bound, a healthy server's flush was dropped as
        # "frozen" every time. Its server, asked, says whether it is at work on it; a frozen
        # one is still given up on, and ``stop``'s deadline still ends the last flush.
        with self._flush_lock, long_statements():
            pending = self.sampler.take()
            if not pending:  # nothing sampled: the count still follows retrains, rollbacks
                self.recount()
                return 0
            try:
                started = time.perf_counter()
                samples = []
                for chunk in batches(list(pending), FLUSH_CHUNK):
                    sources = self._sources(chunk)
                    for i, pair in enumerate(chunk, 1):
                        s = self._sample(pair, pending[pair], sources.get(pair))
                        if s is not None:
                            samples.append(s)
                        if i % YIELD_EVERY == 0:
                            time.sleep(0)  # hand the GIL to the event loop: see YIELD_EVERY
                samples = production_last(samples, self.service.aliases.get)
                engine = self.service.registry.store.engine
                if samples:
                    store.add_samples(engine, samples)
                self.drifted = store.count_drifted(engine, self.thresholds.drift)
            except Exception as e:
                logger.warning("monitoring flush of %d partition(s) failed: %s", len(pending), e)
                return 0
            self.flushes += 1
            self.last_flush_seconds = time.perf_counter() - started
            return len(samples)

    def recount(self) -> None:
        """``drifted`` read again from the registry (one index range count). It was read only
        after a flush that wrote a sample: a restarted router said 0 drifted partitions until
        traffic was sampled and flushed (an alert on it resolved at every deploy), and one
        without traffic kept a count that retrains and rollbacks had changed. A registry that
        does not answer leaves the last count (logged at debug: every minute in an outage)."""
        from manymodels.monitoring import store

        try:
            with long_statements():  # not a request either: see ``flush``
                self.drifted = store.count_drifted(
                    self.service.registry.store.engine, self.thresholds.drift
                )
        except Exception as e:
            logger.debug("monitoring: counting drifted partitions failed: %s", e)

    def _sources(self, pairs: Sequence[Pair]) -> dict[Pair, ServedModel | str]:
        """Where each sampled version's feature schema and training profile are: the cached
        model (``ServedModel``), or, for a model the cache has evicted, its schema's JSON text,
        read from the registry in a few batched reads. One ``get_version`` per evicted model (a
        whole entity and its aliases, ~3 ms each under cold load) made a flush under cold
        traffic cost more than the requests it sampled (#17). A version gone (deleted by gc
        since it answered) is left out."""
        out: dict[Pair, ServedModel | str] = {}
        missing: list[Pair] = []
        for pair in pairs:
            model = self.service.cache.held(*pair)
            if model is None:
                missing.append(pair)
            else:
                out[pair] = model
        if missing:
            for key, version, row in self.service.registry.store.model_refs(missing):
                out[(key, version)] = row.feature_schema_json
        return out

    def _sample(
        self, pair: Pair, rows: list[Mapping[str, Any]], source: ServedModel | str | None
    ) -> Any:
        from manymodels.monitoring.store import Sample

        if source is None:
            return None
        if isinstance(source, str):
            schema = FeatureSchema.from_json(source)
            profile = schema.profile
        else:
            schema, profile = source.schema, source.profile()  # profile kept as text
        if not profile:
            return None  # trained before profiles were recorded: nothing to compare with
        key, version = pair
        rows = list(with_calendar(with_lags(rows, schema), schema))  # derived features drift too
        counts = {
            name: live_counts(stats, [row.get(name) for row in rows if name in row])
            for name, stats in profile.get("features", {}).items()
        }
        counts.update(unseen_counts(profile, rows))  # text values training never had
        return Sample(key, version, len(rows), counts, profile)

    def collector(self) -> Collector:
        return _MonitorCollector(self)


class _MonitorCollector(Collector):
    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        m = self.monitor
        yield CounterMetricFamily(
            "manymodels_monitor_sampled_rows",
            "Scored rows kept for drift.",
            value=m.sampler.sampled_rows,
        )
        yield CounterMetricFamily(
            "manymodels_monitor_dropped_rows",
            "Scored rows not sampled because the partition bound was reached.",
            value=m.sampler.dropped_rows,
        )
        yield CounterMetricFamily(
            "manymodels_monitor_flushes", "Drift samples written to the registry.", value=m.flushes
        )
        yield CounterMetricFamily(
            "manymodels_actual_rows", "Rows of actuals received.", value=m.actual_rows
        )
        yield GaugeMetricFamily(
            "manymodels_monitor_last_flush_seconds",
            "Wall time of the last drift flush (binning and writing its sample).",
            value=m.last_flush_seconds,
        )
        if m._thread is None:  # monitoring off: no count is read, and a 0 reads "none"
            return
        yield GaugeMetricFamily(
            "manymodels_partitions_drifted",
            f"Partitions in production with a drift score of {m.thresholds.drift:g} or more "
            "(read at start and at every flush).",
            value=m.drifted,
        )


def start_monitor(app: Any, service: ModelService, settings: Any, metrics: Any) -> None:
    """Start sampling for the app (unless ``settings.monitor`` is off); ``app.state.monitor``
    holds it either way (actuals are counted without sampling)."""
    monitor = Monitor(service, flush_seconds=settings.monitor_flush_seconds)
    if settings.monitor:
        monitor.start()
    app.state.monitor = monitor
    app.state.monitor_collector = monitor.collector()
    metrics.register(app.state.monitor_collector)


def stop_monitor(app: Any, metrics: Any) -> None:
    monitor: Monitor | None = getattr(app.state, "monitor", None)
    if monitor is None:
        return
    if monitor._thread is not None:
        monitor.stop()
    metrics.unregister(app.state.monitor_collector)
    app.state.monitor = None
