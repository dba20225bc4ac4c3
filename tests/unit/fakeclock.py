"""A fake clock for the work queue (``controller.Clock``): time moves only when a test says.

``advance(seconds)`` wakes every sleeper due within that time, in order, letting the
event loop run everything that became runnable after each, so the test sees the exact
moment of every reconcile. Reconciles run inline (``inline``), or take fake time
(``taking``), never a thread or a wall-clock sleep.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any


async def settle() -> None:
    """Let every task that can run, run (no I/O and no threads here: a bounded number of
    loop turns is enough)."""
    for _ in range(200):
        await asyncio.sleep(0)


class FakeClock:
    def __init__(self) -> None:
        self.time = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.time + seconds, next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        end = self.time + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= end:
            due, _, future = heapq.heappop(self._sleepers)
            if future.done():  # cancelled meanwhile
                continue
            self.time = max(self.time, due)
            future.set_result(None)
            await settle()
        self.time = end
        await settle()


async def inline(fn: Callable[[str], Any], key: str) -> Any:
    return fn(key)


def taking(clock: FakeClock, seconds: float) -> Callable[[Callable[[str], Any], str], Any]:
    """A runner whose every reconcile takes ``seconds`` of fake time."""
    async def run(fn: Callable[[str], Any], key: str) -> Any:
        await clock.sleep(seconds)
        return fn(key)
    return run
