"""Wiring of one operator process: settings, config, the watches and their cache, the
controllers, and the routing of watch events to the controllers' queues."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from . import leading, metrics, watching
from .cache import Store
from .config import ProjectConfig
from .constants import LABEL_DEVSLOT, LABEL_ENVIRONMENT
from .controller import Controller
from .kinds import CHATENV, DEVSLOT, WATCHED, Kind, Watch
from .kube import ApiError, Kube
from .passes import Memo, Pass, Result, concurrently
from .pool import reconcile_pool
from .reconcile import reconcile_environment
from .settings import Settings
from .slots import reconcile_devslot
from .sweep import sweep

log = logging.getLogger(__name__)

POOL, SWEEP = "pool", "sweep"
SYNC_TIMEOUT = 120.0


def _essence(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a reconcile depends on; status-only changes (our own writes) are left out."""
    meta = body.get("metadata", {})
    return (meta.get("uid"), meta.get("generation"),
            repr(sorted((meta.get("labels") or {}).items())),
            repr(sorted((meta.get("annotations") or {}).items())),
            meta.get("deletionTimestamp"))


def _watch_phase(phases: dict[str, str], event_type: str | None, name: str,
                 body: Mapping[str, Any], default: str) -> None:
    """Keep the phase a watch event shows (for the metrics); a deleted object leaves."""
    if event_type == "DELETED":
        phases.pop(name, None)
    else:
        phases[name] = (body.get("status") or {}).get("phase") or default


@dataclass
class Runtime:
    """Shared by every kopf handler (passed to kopf as its ``memo``)."""

    settings: Settings
    config: ProjectConfig
    kube: Kube
    cache: Store = field(default_factory=Store)
    memo: Memo = field(default_factory=Memo)
    reflectors: list[watching.Reflector] = field(init=False)
    environments: Controller = field(init=False)
    devslots: Controller = field(init=False)
    pool: Controller = field(init=False)
    watched: metrics.Watched = field(default_factory=metrics.Watched)
    instruments: metrics.Metrics = field(init=False)
    _seen: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    _first_seen: dict[str, datetime] = field(default_factory=dict)
    _metrics: web.AppRunner | None = None
    _loop: asyncio.AbstractEventLoop = field(init=False)
    _requests: concurrent.futures.ThreadPoolExecutor = field(init=False)
    elector: leading.Elector | None = field(init=False)
    """None: no election (CHATENV_LEASE_SECONDS=0, or no namespace): this process leads."""
    _election: asyncio.Task[None] | None = None
    _leading: bool = False

    def __post_init__(self) -> None:
        workers, resync = self.settings.workers, self.settings.resync_seconds
        self.reflectors = [watching.Reflector(self.kube, w, self.cache, self._watched)
                           for w in WATCHED]
        self.instruments = metrics.Metrics(self.kube.counter, lambda: self.controllers,
                                           self.watched, self._views)
        self.environments = Controller("chatenvironment", self.reconcile_environment,
                                       max_workers=workers, resync_interval=resync,
                                       kind=CHATENV.kind, observer=self.instruments)
        self.devslots = Controller("devslot", self.reconcile_devslot, max_workers=workers,
                                   resync_interval=resync, kind=DEVSLOT.kind,
                                   observer=self.instruments)
        # One worker: allocation passes never overlap, so the queue order is kept.
        self.pool = Controller("pool", self.reconcile_pool, max_workers=1,
                               resync_interval=resync, kind="DevSlotPool",
                               observer=self.instruments)
        # The requests of a pass that do not depend on each other go out together.
        self._requests = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.settings.concurrent_requests, thread_name_prefix="request")
        lease, namespace = self.settings.lease_seconds, self.settings.namespace
        self.elector = leading.Elector(
            self.kube, namespace, lease_seconds=lease, renew_seconds=lease * 0.7,
            retry_seconds=max(1.0, lease / 6)) if lease and namespace else None

    @property
    def controllers(self) -> list[Controller]:
        return [self.environments, self.devslots, self.pool]

    def _views(self) -> list[tuple[str, int, int]]:
        sizes = self.cache.sizes()
        return [(r.what.kind.kind, sizes.get(r.what.kind.kind, 0), r.relists)
                for r in self.reflectors]

    # ------------------------------------------------------------------ reconcile

    def new_pass(self) -> Pass:
        return Pass(self.kube, self.cache, self.memo, run_all=concurrently(self._requests))

    def reconcile_environment(self, name: str) -> Result:
        body = self.cache.get(CHATENV, name)
        if body is None:
            return Result(gone=True)
        if body["metadata"].get("deletionTimestamp"):
            return Result()  # being deleted: the garbage collector takes the rest
        return reconcile_environment(self.new_pass(), body, self.config,
                                     operator_namespace=self.settings.namespace)

    def reconcile_devslot(self, name: str) -> Result:
        body = self.cache.get(DEVSLOT, name)
        if body is None:
            return Result(gone=True)
        if body["metadata"].get("deletionTimestamp"):
            return Result()
        try:
            return reconcile_devslot(self.new_pass(), body, self.config,
                                     operator_namespace=self.settings.namespace)
        except ApiError as e:
            if e.namespace_terminating:  # the slot is going away under our feet
                return Result(requeue_after=2.0)
            raise

    def reconcile_pool(self, key: str) -> Result:
        if key == SWEEP:
            sweep(self.kube, grace=timedelta(seconds=self.settings.orphan_grace_seconds))
            return Result(requeue_after=self.settings.sweep_seconds)
        report = reconcile_pool(self.new_pass(), self.config, first_seen=self._first_seen,
                                wake=self._wake_devslot)
        self.instruments.pool(size=self.config.slots.max_slots, used=report.used,
                          queued=report.queued)
        return report

    def _wake_devslot(self, name: str) -> None:
        # Called from a reconcile thread: hand the key over to the event loop.
        self._loop.call_soon_threadsafe(self.devslots.enqueue, name)

    # ------------------------------------------------------------------ events

    def _watched(self, what: Watch, event_type: str, obj: Mapping[str, Any]) -> None:
        # Called from a watch's thread: hand the event over to the event loop.
        self._loop.call_soon_threadsafe(self.observe, what.kind, event_type, obj)

    def observe(self, kind: Kind, event_type: str, obj: Mapping[str, Any]) -> None:
        """Route a watch event: an object of ours changed, or one it owns did."""
        meta = obj.get("metadata") or {}
        if kind is CHATENV:
            self.observe_environment(event_type, meta["name"], obj)
        elif kind is DEVSLOT:
            self.observe_devslot(event_type, meta["name"], obj)
        else:
            self.observe_child(meta.get("labels") or {})

    def _changed(self, kind: str, event_type: str | None, name: str,
                 body: Mapping[str, Any]) -> bool:
        """Whether a watch event changes what a reconcile depends on (not just status)."""
        if event_type == "DELETED":
            self._seen.pop((kind, name), None)
            return True
        essence = _essence(body)
        if self._seen.get((kind, name)) == essence:
            return False
        self._seen[(kind, name)] = essence
        return True

    def observe_environment(self, event_type: str | None, name: str,
                            body: Mapping[str, Any]) -> None:
        owner = (body.get("metadata", {}).get("labels") or {}).get(LABEL_DEVSLOT)
        if owner:  # its readiness mirrors this environment's status
            self.devslots.enqueue(owner, nudge=True)
        _watch_phase(self.watched.environments, event_type, name, body, "Provisioning")
        if not self._changed("env", event_type, name, body):
            return
        if event_type == "DELETED":
            self.environments.forget(name)
            self.memo.forget(body.get("metadata", {}).get("uid") or "")
            if owner:
                self.pool.enqueue(POOL)  # a slot number came free
            return
        self.environments.enqueue(name)

    def observe_devslot(self, event_type: str | None, name: str,
                        body: Mapping[str, Any]) -> None:
        uid = body.get("metadata", {}).get("uid")
        if uid and uid not in self._first_seen:
            self._first_seen[uid] = datetime.now(UTC)
        _watch_phase(self.watched.devslots, event_type, name, body, "Pending")
        if not self._changed("devslot", event_type, name, body):
            return
        if event_type == "DELETED":
            self.devslots.forget(name)
            self.memo.forget(uid or "")
            self._first_seen.pop(uid or "", None)
        else:
            self.devslots.enqueue(name)
        self.pool.enqueue(POOL)

    def observe_child(self, labels: Mapping[str, str]) -> None:
        if labels.get(LABEL_ENVIRONMENT):
            self.environments.enqueue(labels[LABEL_ENVIRONMENT], nudge=True)
        if labels.get(LABEL_DEVSLOT):
            self.devslots.enqueue(labels[LABEL_DEVSLOT], nudge=True)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        # Reconciles block on the API client in threads: size the pool for every worker.
        threads = sum(c.max_workers for c in self.controllers) + 4
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="reconcile"))
        watching.start(self.reflectors)
        # No pass before every kind is listed: an empty view would mean "create it all".
        if not await asyncio.to_thread(self._wait_synced, SYNC_TIMEOUT):
            raise RuntimeError(f"the watches did not list every kind within {SYNC_TIMEOUT} s")
        log.info("watching %d kinds: %s", len(self.reflectors), ", ".join(
            f"{k} {n}" for k, n in sorted(self.cache.sizes().items())))
        if self.settings.metrics_port:
            self._metrics = await metrics.serve(self.instruments, self.settings.metrics_port)
        if self.elector is None:
            self._lead()
        else:  # the watches stay warm meanwhile: a takeover starts from a full view
            self._election = asyncio.create_task(self._elect(self.elector), name="election")

    def _lead(self) -> None:
        self._leading = True
        self.instruments.leader.set(1)
        for controller in self.controllers:
            controller.start()
        self.pool.enqueue(POOL)
        self.pool.enqueue(SWEEP, delay=self.settings.sweep_seconds)
        log.info("operator started: project %s, up to %d workers per controller",
                 self.config.project, self.settings.workers)

    async def _elect(self, elector: leading.Elector) -> None:
        """Try for the Lease until this process leads, then renew it; a leader that could
        not renew in time stops the process (its controllers first): it restarts as a
        candidate, and whatever it had queued is read again by whoever leads."""
        while True:
            try:
                leads = await asyncio.to_thread(elector.attempt)
            except (ApiError, OSError) as e:
                log.warning("leader election: %s", e)
                leads = elector.leading and not elector.lost()
                elector.leading = leads
            if leads and not self._leading:
                self._lead()
            elif self._leading and not leads:
                log.error("not the leader any more: stopping")
                for controller in self.controllers:
                    await controller.stop()
                os.kill(os.getpid(), signal.SIGTERM)
                return
            await asyncio.sleep(elector.retry_seconds)

    def _wait_synced(self, timeout: float) -> bool:
        return all(r.synced.wait(timeout) for r in self.reflectors)

    async def stop(self) -> None:
        if self._election is not None:
            self._election.cancel()
        for reflector in self.reflectors:
            reflector.stop()
        for controller in self.controllers:
            await controller.stop()
        if self.elector is not None and self.elector.leading:
            try:  # another replica takes over at once, not after the lease runs out
                await asyncio.to_thread(self.elector.release)
            except (ApiError, OSError) as e:
                log.warning("could not release the lease: %s", e)
        self._requests.shutdown(wait=False, cancel_futures=True)
        if self._metrics is not None:
            await self._metrics.cleanup()
