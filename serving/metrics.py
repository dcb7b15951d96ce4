"""Prometheus metrics of one app, in a ``CollectorRegistry`` of its own.

A per-app registry (not the process-global default) lets several apps live in one process,
as they do in tests. Request counters and histograms are updated by the request middleware;
cache and alias-table figures are read from their owners at scrape time, so the hot path pays
nothing for them.

``label`` gives every series constant labels: a Ray Serve replica names itself (``replica``),
as a scrape through Serve's proxy reaches one replica or another, and two replicas' counters
under one series would read as a counter that keeps resetting.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from serving.cache import CacheStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LOAD_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Observed(Protocol):
    """What the collector reads at scrape time (``ModelService`` provides it)."""

    def cache_stats(self) -> CacheStats: ...

    def counters(self) -> dict[str, int]: ...

    def alias_stats(self) -> dict[str, float]: ...


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "manymodels_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "manymodels_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.load_seconds = Histogram(
            "manymodels_model_load_duration_seconds",
            "Time to fetch, verify (sha256) and unpickle one model.",
            buckets=LOAD_BUCKETS,
            registry=self.registry,
        )
        self._collector: _ServiceCollector | None = None
        self._labelled: _Labelled | None = None

    def label(self, **labels: str) -> None:
        """Add ``labels`` to every series this registry renders (set once, at start-up)."""
        self._labelled = _Labelled(self.registry, labels)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def observe_load(self, key: str, version: int, seconds: float) -> None:
        self.load_seconds.observe(seconds)

    def watch(self, service: Observed) -> None:
        """Expose a service's cache and alias-table figures (replacing any previous one)."""
        self.unwatch()
        self._collector = _ServiceCollector(service)
        self.registry.register(self._collector)

    def unwatch(self) -> None:
        if self._collector is not None:
            self.registry.unregister(self._collector)
            self._collector = None

    def render(self) -> bytes:
        return generate_latest(self._labelled or self.registry)


class _Labelled:
    """A registry's metrics with constant labels added to each sample, at scrape time."""

    def __init__(self, registry: CollectorRegistry, labels: dict[str, str]) -> None:
        self.registry, self.labels = registry, labels

    def collect(self) -> Iterable[Metric]:
        for metric in self.registry.collect():
            metric.samples = [
                s._replace(labels={**s.labels, **self.labels}) for s in metric.samples
            ]
            yield metric


class _ServiceCollector(Collector):
    def __init__(self, service: Observed) -> None:
        self.service = service

    def describe(self) -> Iterator[Metric]:
        return iter(())  # dynamic values; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        s = self.service.cache_stats()
        for name, value, text in (
            ("hits", s.hits, "Model lookups answered from the cache."),
            ("misses", s.misses, "Model lookups that waited for a load."),
            ("loads", s.loads, "Model loads run (successful or not)."),
            ("load_failures", s.load_failures, "Model loads that failed (e.g. tampered)."),
            ("evictions", s.evictions, "Models evicted by the cache size bound."),
        ):
            yield CounterMetricFamily(f"manymodels_model_cache_{name}", text, value=value)
        yield GaugeMetricFamily("manymodels_models_loaded", "Models in the cache.", value=s.size)
        yield GaugeMetricFamily(
            "manymodels_model_cache_capacity", "Cache size bound.", value=s.max_size
        )
        c = self.service.counters()
        yield CounterMetricFamily(
            "manymodels_fallback_uses",
            "Fallback answers: each request adds the partitions it asked for that the fallback "
            "model answered (no label per partition).",
            value=c["fallback_uses"],
        )
        yield CounterMetricFamily(
            "manymodels_fallback_rows",
            "Rows answered by the fallback model (compare with manymodels_predicted_rows).",
            value=c["fallback_rows"],
        )
        yield CounterMetricFamily(
            "manymodels_predicted_rows", "Rows scored.", value=c["predicted_rows"]
        )
        a = self.service.alias_stats()
        yield GaugeMetricFamily(
            "manymodels_alias_table_size",
            "Partitions in the router's production alias table.",
            value=a["size"],
        )
        yield GaugeMetricFamily(
            "manymodels_alias_table_age_seconds",
            "Seconds since the alias table was last read from the registry.",
            value=a["age_seconds"],
        )
