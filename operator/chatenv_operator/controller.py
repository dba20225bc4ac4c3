"""Level-triggered work queues: the reconcile loops of the operator.

The watches (``watching``, through ``runtime``) call ``Controller.enqueue(name)`` for
every event that concerns an object (its own changes and those of its children).
Each controller keeps at most one pending entry per name, never reconciles one
name in two workers at once, retries failures with exponential backoff, and
re-queues a name after the delay a reconcile asks for. Workers follow the load:
one starts for each name waiting, up to ``max_workers``, and each stops when the
queue is empty. Reconcile functions are synchronous (they use the blocking
Kubernetes client) and run in threads; time comes from a ``Clock``, so the tests
can run the queue on a fake one.

No finalizers are involved: deleting an object needs nothing from this
process; its children go through Kubernetes' garbage collector.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from . import logs

log = logging.getLogger(__name__)


class Outcome(Protocol):
    requeue_after: float | None
    gone: bool  # the object no longer exists: forget the key


ReconcileFn = Callable[[str], Outcome]
Runner = Callable[[ReconcileFn, str], Awaitable[Outcome]]
"""How a reconcile is run: in a thread (``asyncio.to_thread``), or inline in tests."""


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class LoopClock:
    """The event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


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
    """A named queue of keys with workers calling ``reconcile(key)``."""

    name: str
    reconcile: ReconcileFn
    max_workers: int = 16
    """Reconciles at once, at most; workers start as keys wait and stop when none do."""
    base_backoff: float = 1.0
    max_backoff: float = 300.0
    resync_interval: float = 300.0
    kind: str = ""
    """The kind of object a key names, for the log lines of its reconciles."""
    observer: Observer = field(default_factory=_Unobserved)
    clock: Clock = field(default_factory=LoopClock)
    run: Runner = asyncio.to_thread
    stats: Stats = field(default_factory=Stats)

    def __post_init__(self) -> None:
        self._ready: collections.deque[str] = collections.deque()
        self._queued: set[str] = set()
        self._since: dict[str, float] = {}  # queued key -> when it was queued
        self._active: set[str] = set()
        self._dirty: set[str] = set()
        self._timers: dict[str, tuple[float, asyncio.Task[None]]] = {}
        self._failures: dict[str, int] = {}
        self._known: set[str] = set()
        self._workers: set[asyncio.Task[None]] = set()
        self._running = 0  # workers between their start and their last look at the queue
        self._started = False
        self._resync: asyncio.Task[None] | None = None
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
            due = self.clock.now() + delay
            existing = self._timers.get(key)
            if existing is not None and existing[0] <= due:
                return
            if existing is not None:
                existing[1].cancel()
            self._timers[key] = (due, asyncio.create_task(self._later(key, delay)))
            return
        if key in self._active:
            self._dirty.add(key)  # run once more after the current pass
        elif key not in self._queued:
            self._queued.add(key)
            self._since[key] = self.clock.now()
            self._ready.append(key)
            self._idle.clear()
            self._grow()

    def forget(self, key: str) -> None:
        """The object is gone: drop its timers, backoff state and per-object statistics."""
        self._known.discard(key)
        self._failures.pop(key, None)
        self.stats.by_key.pop(key, None)
        self.observer.forgotten(self.name, key)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer[1].cancel()

    async def _later(self, key: str, delay: float) -> None:
        await self.clock.sleep(delay)
        self._timers.pop(key, None)
        self.enqueue(key)

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        self._started = True
        self._resync = asyncio.create_task(self._resync_loop(), name=f"{self.name}-resync")
        self._grow()

    async def stop(self) -> None:
        self._started = False
        tasks = [*self._workers, *(t for _, t in self._timers.values())]
        if self._resync is not None:
            tasks.append(self._resync)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _grow(self) -> None:
        """One worker per waiting key, up to ``max_workers``."""
        if not self._started:
            return
        idle = self._running - len(self._active)
        for _ in range(min(len(self._ready) - idle, self.max_workers - self._running)):
            self._running += 1
            task = asyncio.create_task(self._worker(), name=f"{self.name}-worker")
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    async def _resync_loop(self) -> None:
        while True:
            await self.clock.sleep(self.resync_interval)
            for key in sorted(self._known):
                self.enqueue(key)

    async def _worker(self) -> None:
        try:
            while self._ready:
                key = self._ready.popleft()
                self._queued.discard(key)
                self._since.pop(key, None)
                self._active.add(key)
                try:
                    with logs.bound(controller=self.name, kind=self.kind or self.name,
                                    name=key):
                        await self._process(key)
                finally:
                    self._active.discard(key)
                    if key in self._dirty:
                        self._dirty.discard(key)
                        self.enqueue(key)
                    if not self._queued and not self._active:
                        self._idle.set()
        finally:
            self._running -= 1

    async def _process(self, key: str) -> None:
        started = self.clock.now()
        ok = False
        try:
            outcome = await self.run(self.reconcile, key)
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
            elapsed = self.clock.now() - started
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
    def workers(self) -> int:
        """Workers running now."""
        return self._running

    @property
    def oldest_age(self) -> float:
        """Seconds the longest-waiting queued key has waited (0 with an empty queue)."""
        since = min(self._since.values(), default=None)
        return 0.0 if since is None else self.clock.now() - since

    async def wait_idle(self) -> None:
        await self._idle.wait()
