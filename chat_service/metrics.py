"""Prometheus metrics of one application, in a registry of its own (no global state).

Pure bookkeeping; `/metrics` renders `Metrics.render()` in the text format. When the
server runs several worker processes, each writes its values to files in a directory
they share (prometheus_client's multiprocess mode) and any worker's `/metrics` sums
all of them, so a scrape sees the whole pod whichever worker answers it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = CONTENT_TYPE_LATEST
# prometheus_client's own name for the shared directory.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess_files(directory: Path) -> None:
    """Make metrics created from now on in this process write to files in `directory`.

    Called in each worker process, before its application (and so its metrics) exists.
    """
    os.environ[MULTIPROCESS_ENV] = str(directory)
    prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]


class Metrics:
    """The service's instruments."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self._multiprocess_dir = multiprocess_dir
        self._readers: list[tuple[Gauge, Callable[[], float]]] = []
        self.registry = CollectorRegistry()
        # Gauges of live state: summed over the live worker processes.
        live = {"multiprocess_mode": "livesum"}
        self.requests = Counter(
            "chat_http_requests", "HTTP requests by route template, method and status.",
            ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "chat_http_request_duration_seconds", "HTTP request latency by route template.",
            ["route", "method"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        # A request's two series, looked up once per (route, method, status): every
        # request records them, and prometheus_client's labels() is not free.
        self._per_request: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.db_pool_size = Gauge(
            "chat_db_pool_size", "PostgreSQL connections held by the pool.",
            registry=self.registry, **live)  # type: ignore[arg-type]
        self.db_pool_free = Gauge(
            "chat_db_pool_free", "PostgreSQL connections idle in the pool.",
            registry=self.registry, **live)  # type: ignore[arg-type]
        self.live_clients = Gauge(
            "chat_live_clients", "Connected Server-Sent Events clients.",
            registry=self.registry, **live)  # type: ignore[arg-type]
        self.messages_created = Counter(
            "chat_messages_created", "Messages created through this process.",
            registry=self.registry)
        self.events_received = Counter(
            "chat_events_received", "Live-update events received from Redis pub/sub.",
            registry=self.registry)
        # Up (1) or down (0) over the live workers: 0 when any worker found it down.
        worst = {"multiprocess_mode": "livemin"}
        self.dependency_up = Gauge(
            "chat_dependency_up", "Whether a dependency answered the latest readiness check "
            "(1) or not (0), by dependency; readiness itself needs only PostgreSQL.",
            ["dependency"], registry=self.registry, **worst)  # type: ignore[arg-type]
        self.events_subscribed = Gauge(
            "chat_events_subscribed", "Whether the live-update subscription to Redis is up.",
            registry=self.registry, **worst)  # type: ignore[arg-type]
        self.limited = Counter(
            "chat_limited_requests", "Requests refused by a limit (rate, quota, streams), "
            "by the limit.", ["limit"], registry=self.registry)

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request by route template, method and status, and its latency."""
        key = (route, method, status)
        series = self._per_request.get(key)
        if series is None:
            series = (self.requests.labels(route, method, str(status)),
                      self.latency.labels(route, method))
            self._per_request[key] = series
        series[0].inc()
        series[1].observe(seconds)

    @property
    def multiprocess(self) -> bool:
        """Whether values go to the shared files of several worker processes."""
        return self._multiprocess_dir is not None

    def watch_pool(self, size: Callable[[], float], free: Callable[[], float]) -> None:
        """Read the pool gauges from the pool itself (at scrape time, or by `refresh`)."""
        self._watch(self.db_pool_size, size)
        self._watch(self.db_pool_free, free)

    def watch_live_clients(self, count: Callable[[], float],
                           subscribed: Callable[[], float]) -> None:
        """Read the live-client and subscription gauges from the event hub (at scrape time,
        or by `refresh`)."""
        self._watch(self.live_clients, count)
        self._watch(self.events_subscribed, subscribed)

    def _watch(self, gauge: Gauge, read: Callable[[], float]) -> None:
        if self.multiprocess:
            # Other workers' scrapes read the files, so the value must be written there.
            self._readers.append((gauge, read))
            gauge.set(read())
        else:
            gauge.set_function(read)

    def refresh(self) -> None:
        """Write this process's live-state gauges (multiprocess mode; a no-op otherwise)."""
        for gauge, read in self._readers:
            gauge.set(read())

    def render(self) -> bytes:
        """Every process's metrics in Prometheus' text exposition format."""
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        self.refresh()
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self._multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry)
