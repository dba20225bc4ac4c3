"""Grouping concurrent calls: one batched call at a time, the rest wait for the next.

Used where the other side does the work in one go at no extra cost: session look-ups
(one Redis pipeline) and message inserts (one statement, one commit). Pure asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """Runs one batched call at a time; keys asked for meanwhile go in the next batch.

    A lone caller is not delayed; under load, callers share round trips. Every caller
    of a batch gets the batch's error if it fails.
    """

    def __init__(self, fetch: Callable[[list[K]], Awaitable[list[V]]], limit: int) -> None:
        self._fetch = fetch
        self._limit = limit
        self._pending: list[tuple[K, asyncio.Future[V]]] = []
        self._task: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V:
        """The value `fetch` gives for `key`."""
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._pending.append((key, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:self._limit]
                del self._pending[:self._limit]
                try:
                    values = await self._fetch([key for key, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch + self._pending:
                        future.cancel()
                    raise
                except Exception as e:  # every caller of the batch gets the error
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(e)
                    continue
                for (_, future), value in zip(batch, values, strict=True):
                    if not future.done():
                        future.set_result(value)
        finally:
            self._task = None
