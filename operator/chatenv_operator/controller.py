"""Level-triggered work queues: the reconcile loops of the operator.

kopf watches the API and calls ``Controller.enqueue(name)`` for every event
that concerns an object (its own changes and those of its children). Each
controller keeps at most one pending entry per name, never reconciles one
name in two workers at once, retries failures with exponential backoff, and
re-queues a name after the delay a reconcile asks for. Reconcile functions are
synchronous (they use the blocking Kubernetes client) and run in threads.

No finalizers are involved: deleting an object needs nothing from this
process; its children go through Kubernetes' garbage collector.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from . import logs

log = logging.getLogger(__name__)


class Outcome(Protocol):
    requeue_after: float | None
    gone: bool  # the object no longer exists: forget the key


ReconcileFn = Callable[[str], Outcome]


class Observer(Protocol):
    """Told about every reconcile (for the metrics); must not block."""

    def reconciled(self, controller: str, key: str, seconds: float, ok: bool) -> None: ...

    def forgotten(self, controller: str, key: str) -> None: ...


class _Unobserved:
    def reconciled(self, controller: str, key: str, seconds: float, ok: bool) -> None:
        pass

    def forgotten(self, controller: str, key: str) -> None:
        pass


@dataclass
class Stats:
    reconciles: int = 0
    failures: int = 0
    """Failed passes; each is retried after a backoff (the work queue's retries)."""
    seconds: float = 0.0
    by_key: collections.Counter[str] = field(default_factory=collections.Counter)


@dataclass
class Controller:
    """A named queue of keys with a pool of workers calling ``reconcile(key)``."""

    name: str
    reconcile: ReconcileFn
    workers: int = 4
    base_backoff: float = 1.0
    max_backoff: float = 300.0
    resync_interval: float = 300.0
    kind: str = ""
    """The kind of object a key names, for the log lines of its reconciles."""
    observer: Observer = field(default_factory=_Unobserved)
    stats: Stats = field(default_factory=Stats)

    def __post_init__(self) -> None:
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._since: dict[str, float] = {}  # queued key -> when it was queued (monotonic)
        self._active: set[str] = set()
        self._dirty: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._failures: dict[str, int] = {}
        self._known: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()

    # ------------------------------------------------------------------ input

    def enqueue(self, key: str, delay: float = 0.0, *, nudge: bool = False) -> None:
        """Ask for a reconcile of ``key``, now or after ``delay`` seconds.

        A ``nudge`` (an event of a child or a related object, not of the object itself)
        leaves a failing key to its backoff: it is retried when the backoff says, not
        on every event of its children.
        """
        if nudge and key in self._failures and key in self._timers:
            return
        self._known.add(key)
        if delay > 0:
            loop = asyncio.get_running_loop()
            existing = self._timers.get(key)
            due = loop.time() + delay
            if existing is not None and existing.when() <= due:
                return
            if existing is not None:
                existing.cancel()
            self._timers[key] = loop.call_later(delay, self._fire, key)
            return
        if key in self._active:
            self._dirty.add(key)  # run once more after the current pass
        elif key not in self._queued:
            self._queued.add(key)
            self._since[key] = time.monotonic()
            self._idle.clear()
            self._ready.put_nowait(key)

    def forget(self, key: str) -> None:
        """The object is gone: drop its timers, backoff state and per-object statistics."""
        self._known.discard(key)
        self._failures.pop(key, None)
        self.stats.by_key.pop(key, None)
        self.observer.forgotten(self.name, key)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(i), name=f"{self.name}-worker-{i}")
                       for i in range(self.workers)]
        self._tasks.append(asyncio.create_task(self._resync(), name=f"{self.name}-resync"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for timer in self._timers.values():
            timer.cancel()

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_interval)
            for key in sorted(self._known):
                self.enqueue(key)

    async def _worker(self, index: int) -> None:
        while True:
            key = await self._ready.get()
            self._queued.discard(key)
            self._since.pop(key, None)
            self._active.add(key)
            try:
                with logs.bound(controller=self.name, kind=self.kind or self.name, name=key):
                    await self._process(key)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.enqueue(key)
                if not self._queued and not self._active:
                    self._idle.set()

    async def _process(self, key: str) -> None:
        started = time.monotonic()
        ok = False
        try:
            outcome = await asyncio.to_thread(self.reconcile, key)
            ok = True
        except asyncio.CancelledError:
            raise
        except Exception as e:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            self.stats.failures += 1
            delay = min(self.max_backoff, self.base_backoff * 2 ** (failures - 1))
            log.warning("reconcile failed (attempt %d), retrying in %.0fs: %s", failures,
                        delay, e, exc_info=not getattr(e, "status", None))
            self.enqueue(key, delay)
            return
        finally:
            elapsed = time.monotonic() - started
            self.stats.reconciles += 1
            self.stats.by_key[key] += 1
            self.stats.seconds += elapsed
            self.observer.reconciled(self.name, key, elapsed, ok)
        self._failures.pop(key, None)
        if outcome.gone:
            self.forget(key)
        elif outcome.requeue_after is not None:
            self.enqueue(key, outcome.requeue_after)

    @property
    def depth(self) -> int:
        return len(self._queued) + len(self._active)

    @property
    def oldest_age(self) -> float:
        """Seconds the longest-waiting queued key has waited (0 with an empty queue)."""
        since = min(self._since.values(), default=None)
        return 0.0 if since is None else time.monotonic() - since

    async def wait_idle(self) -> None:
        await self._idle.wait()
