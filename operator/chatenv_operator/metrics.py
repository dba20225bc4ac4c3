"""The operator's Prometheus metrics, in a registry of its own, and the endpoint serving them.

Counts and gauges that the operator already keeps (API requests, the work
queues, the objects it watches) are read at scrape time by a collector, so
nothing here can drift from them, and a deleted object's series disappear with
it. Reconcile durations and per-object counts are recorded as they happen.
Process metrics and a build-info metric come with the registry.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from .controller import Controller
from .kube import RequestCounter

ENVIRONMENT_PHASES = ("Provisioning", "Ready", "Suspended", "Sleeping", "Failed")
DEVSLOT_PHASES = ("Pending", "Queued", "Provisioning", "Ready", "Expiring")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


Views = Callable[[], Iterable[tuple[str, int, int]]]
"""Per watched kind: its name, the objects in view, the listings after the first."""


@dataclass
class Watched:
    """What the watches last showed, kept by the runtime: name -> phase per kind."""

    environments: dict[str, str] = field(default_factory=dict)
    devslots: dict[str, str] = field(default_factory=dict)


class _LiveCollector(Collector):
    """Reads the request counter, the work queues and the watched phases at scrape time."""

    def __init__(self, requests: RequestCounter, controllers: Callable[[], Iterable[Controller]],
                 watched: Watched, views: Views) -> None:
        self.requests = requests
        self.controllers = controllers
        self.watched = watched
        self.views = views

    def collect(self) -> Iterator[Metric]:
        api = CounterMetricFamily("chatenv_api_requests",
                                  "Kubernetes API requests sent by the operator, retries "
                                  "included, by verb and HTTP status code (error: no response).",
                                  labels=["verb", "code"])
        for (verb, code), count in sorted(self.requests.snapshot().items()):
            api.add_metric([verb, code], count)
        yield api
        sent = CounterMetricFamily("chatenv_reconcile_api_requests",
                                   "API requests sent by reconcile passes, by controller "
                                   "(a pass over objects as specified sends none).",
                                   labels=["controller"])
        by_controller = self.requests.by_controller()
        for c in self.controllers():
            sent.add_metric([c.name], by_controller.get(c.name, 0))
        yield sent
        yield from self._queues(list(self.controllers()))
        yield from self._phases("chatenv_environments", "ChatEnvironments by status.phase.",
                                self.watched.environments, ENVIRONMENT_PHASES)
        yield from self._phases("chatenv_devslots", "DevSlots by status.phase.",
                                self.watched.devslots, DEVSLOT_PHASES)
        each = GaugeMetricFamily("chatenv_environment_phase",
                                 "1 for each ChatEnvironment, labelled with its phase.",
                                 labels=["environment", "phase"])
        for name, phase in sorted(self.watched.environments.items()):
            each.add_metric([name, phase], 1)
        yield each
        cached = GaugeMetricFamily("chatenv_cache_objects",
                                   "Objects in the operator's watch-fed view, by kind.",
                                   labels=["kind"])
        relists = CounterMetricFamily("chatenv_watch_relists",
                                      "Times a watch started over with a new listing (after "
                                      "an error or an expired resourceVersion), by kind.",
                                      labels=["kind"])
        for kind, objects, restarts in self.views():
            cached.add_metric([kind], objects)
            relists.add_metric([kind], restarts)
        yield cached
        yield relists

    @staticmethod
    def _queues(controllers: list[Controller]) -> Iterator[Metric]:
        families: tuple[tuple[type[CounterMetricFamily | GaugeMetricFamily], str, str,
                              Callable[[Controller], float]], ...] = (
            (CounterMetricFamily, "chatenv_reconciles", "Reconcile passes.",
             lambda c: c.stats.reconciles),
            (CounterMetricFamily, "chatenv_reconcile_failures",
             "Failed reconcile passes (each is retried after a backoff).",
             lambda c: c.stats.failures),
            (CounterMetricFamily, "chatenv_workqueue_retries",
             "Keys put back on the work queue after a failure.", lambda c: c.stats.failures),
            (GaugeMetricFamily, "chatenv_workqueue_depth",
             "Keys queued or being reconciled.", lambda c: c.depth),
            (GaugeMetricFamily, "chatenv_workqueue_workers",
             "Workers running: they follow the queue, up to CHATENV_WORKERS.",
             lambda c: c.workers),
            (GaugeMetricFamily, "chatenv_workqueue_oldest_item_age_seconds",
             "How long the longest-waiting queued key has waited.", lambda c: c.oldest_age),
        )
        for family, name, text, value in families:
            metric = family(name, text, labels=["controller"])
            for c in controllers:
                metric.add_metric([c.name], value(c))
            yield metric

    @staticmethod
    def _phases(name: str, text: str, phases: Mapping[str, str],
                known: tuple[str, ...]) -> Iterator[Metric]:
        metric = GaugeMetricFamily(name, text, labels=["phase"])
        counts = dict.fromkeys(known, 0)
        for phase in phases.values():
            counts[phase] = counts.get(phase, 0) + 1
        for phase, count in counts.items():
            metric.add_metric([phase], count)
        yield metric


class Metrics:
    """The operator's instruments. Also the controllers' observer (``controller.Observer``)."""

    def __init__(self, requests: RequestCounter, controllers: Callable[[], Iterable[Controller]],
                 watched: Watched, views: Views = list) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        Info("chatenv_build", "The operator's version and runtime.",
             registry=self.registry).info({"version": _version("chatenv"),
                                           "kopf_version": _version("kopf"),
                                           "python_version": platform.python_version()})
        self.registry.register(_LiveCollector(requests, controllers, watched, views))
        self.duration = Histogram(
            "chatenv_reconcile_duration_seconds", "Time one reconcile pass took.",
            ["controller"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.per_object = Counter(
            "chatenv_object_reconciles", "Reconcile passes per live object.",
            ["controller", "name"], registry=self.registry)
        self.pool_slots = Gauge("chatenv_pool_slots",
                                "Slot numbers of the DevSlot pool, used or free.",
                                ["state"], registry=self.registry)
        self.pool_size = Gauge("chatenv_pool_max_slots", "The pool's size (slots.maxSlots).",
                               registry=self.registry)
        self.pool_queued = Gauge("chatenv_pool_queued_devslots",
                                 "DevSlots waiting for a free slot number.",
                                 registry=self.registry)
        self.leader = Gauge("chatenv_leader", "1 while this replica leads (holds the Lease) "
                            "and reconciles, 0 while it waits to.", registry=self.registry)

    # ------------------------------------------------------------------ controller.Observer

    def reconciled(self, controller: str, key: str, seconds: float, ok: bool) -> None:
        self.duration.labels(controller).observe(seconds)
        self.per_object.labels(controller, key).inc()

    def forgotten(self, controller: str, key: str) -> None:
        with contextlib.suppress(KeyError):  # never reconciled here
            self.per_object.remove(controller, key)

    # ------------------------------------------------------------------ the pool

    def pool(self, *, size: int, used: int, queued: int) -> None:
        """The outcome of an allocation pass."""
        self.pool_size.set(size)
        self.pool_slots.labels("used").set(used)
        self.pool_slots.labels("free").set(max(0, size - used))
        self.pool_queued.set(queued)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


async def serve(metrics: Metrics, port: int) -> web.AppRunner:
    """/metrics on ``port``, in Prometheus' text format."""
    async def scrape(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()  # noqa: S104 - scraped from the cluster
    return runner
