"""Prometheus metrics of one application, in a registry of its own (no global state).

Pure bookkeeping; `/metrics` renders `Metrics.render()` in the text format.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The service's instruments."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "chat_http_requests", "HTTP requests by route template, method and status.",
            ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "chat_http_request_duration_seconds", "HTTP request latency by route template.",
            ["route", "method"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.db_pool_size = Gauge(
            "chat_db_pool_size", "PostgreSQL connections held by the pool.",
            registry=self.registry)
        self.db_pool_free = Gauge(
            "chat_db_pool_free", "PostgreSQL connections idle in the pool.",
            registry=self.registry)
        self.live_clients = Gauge(
            "chat_live_clients", "Connected Server-Sent Events clients.",
            registry=self.registry)
        self.messages_created = Counter(
            "chat_messages_created", "Messages created through this process.",
            registry=self.registry)
        self.events_received = Counter(
            "chat_events_received", "Live-update events received from Redis pub/sub.",
            registry=self.registry)

    def watch_pool(self, size: Callable[[], float], free: Callable[[], float]) -> None:
        """Read the pool gauges from the pool itself at scrape time."""
        self.db_pool_size.set_function(size)
        self.db_pool_free.set_function(free)

    def watch_live_clients(self, count: Callable[[], float]) -> None:
        """Read the live-client gauge from the event hub at scrape time."""
        self.live_clients.set_function(count)

    def render(self) -> bytes:
        """The registry in Prometheus' text exposition format."""
        return generate_latest(self.registry)
