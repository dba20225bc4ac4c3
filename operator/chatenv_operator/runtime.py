"""Wiring of one operator process: settings, config, API access and the controllers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import metrics
from .config import ProjectConfig
from .constants import CHATENV_KIND, GROUP
from .controller import Controller
from .kube import Kube, lookup
from .reconcile import Result, reconcile_environment
from .settings import Settings

log = logging.getLogger(__name__)

CHATENV = lookup(f"{GROUP}/v1alpha1", CHATENV_KIND)


def _essence(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a reconcile depends on; status-only changes (our own writes) are left out."""
    meta = body.get("metadata", {})
    return (meta.get("uid"), meta.get("generation"),
            repr(sorted((meta.get("labels") or {}).items())),
            repr(sorted((meta.get("annotations") or {}).items())),
            meta.get("deletionTimestamp"))


@dataclass
class Runtime:
    """Shared by every kopf handler (passed to kopf as its ``memo``)."""

    settings: Settings
    config: ProjectConfig
    kube: Kube
    environments: Controller = field(init=False)
    _seen: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _metrics: web.AppRunner | None = None

    def __post_init__(self) -> None:
        self.environments = Controller("chatenvironment", self.reconcile_environment,
                                       workers=self.settings.workers,
                                       resync_interval=self.settings.resync_seconds)

    @property
    def controllers(self) -> list[Controller]:
        return [self.environments]

    # ------------------------------------------------------------------ reconcile

    def reconcile_environment(self, name: str) -> Result:
        body = self.kube.get(CHATENV, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return Result()  # deleted: the garbage collector takes the rest
        return reconcile_environment(self.kube, body, self.config,
                                     operator_namespace=self.settings.namespace)

    def observe_environment(self, event_type: str | None, name: str,
                            body: Mapping[str, Any]) -> None:
        if event_type == "DELETED":
            self._seen.pop(name, None)
            self.environments.forget(name)
            return
        essence = _essence(body)
        if self._seen.get(name) != essence:
            self._seen[name] = essence
            self.environments.enqueue(name)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # Reconciles block on the API client in threads: size the pool for every worker.
        threads = sum(c.workers for c in self.controllers) + 4
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="reconcile"))
        for controller in self.controllers:
            controller.start()
        if self.settings.metrics_port:
            self._metrics = await metrics.serve(self.kube, self.controllers,
                                                self.settings.metrics_port)
        log.info("operator started: project %s, %d workers per controller",
                 self.config.project, self.settings.workers)

    async def stop(self) -> None:
        for controller in self.controllers:
            await controller.stop()
        if self._metrics is not None:
            await self._metrics.cleanup()
