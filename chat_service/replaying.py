"""Replays for resuming event streams: page by page, capped, on a bounded share of the pool.

A client that reconnects with `Last-Event-ID` (or `?after_id=`) first gets the messages
it missed. `Replay.next_chunk` reads one page from PostgreSQL (at most PAGE_ROWS rows
and about PAGE_BYTES of text, cut by the query itself), renders it as SSE frames and
forgets it; the stream writes the chunk, which waits while a slow client's socket is
full, and only then asks for the next page. So a stream holds one page at a time,
whatever the client's speed, instead of its whole replay.

A replay stops at REPLAY_MAX_ROWS messages or SSE_REPLAY_MAX_BYTES of frames, whichever
comes first, and then `truncated` is set (the stream tells the client to `resync`).

Page queries go through a semaphore of SSE_REPLAY_CONNECTIONS (at most the pool's size
less one), so however many streams replay at once, requests keep the rest of the pool.
Does I/O through `queries`.
"""

from __future__ import annotations

import asyncio

from chat_service import events, queries
from chat_service.database import Database
from chat_service.models import Message

# A client further behind than this should reload the list instead (it gets `resync`).
REPLAY_MAX_ROWS = 1000
PAGE_ROWS = 100
PAGE_BYTES = 64 * 1024


class Replayer:
    """The process's replays: their share of the pool and their caps."""

    def __init__(self, db: Database, *, connections: int, max_bytes: int,
                 max_rows: int = REPLAY_MAX_ROWS) -> None:
        self._db = db
        self._gate = asyncio.Semaphore(connections)
        self.max_rows = max_rows
        self.max_bytes = max_bytes

    def start(self, after: int) -> Replay:
        """A replay of the messages after id `after`."""
        return Replay(self, after)

    async def page(self, after: int) -> list[Message]:
        """The next page of visible messages after `after`, waiting for a replay slot."""
        async with self._gate:
            return await queries.replay_page(self._db, after, PAGE_ROWS, PAGE_BYTES)


class Replay:
    """One stream's replay, a page at a time; nothing is kept once handed out."""

    def __init__(self, replayer: Replayer, after: int) -> None:
        self._replayer = replayer
        self._done = False
        self.last_id = after
        """The id of the last message handed out (the cursor, before any)."""
        self.rows = 0
        self.bytes = 0
        self.truncated = False
        """Whether messages remained when a cap was reached."""

    async def next_chunk(self) -> bytes | None:
        """The SSE frames of the next page, or None when the replay is over."""
        if self._done:
            return None
        page = await self._replayer.page(self.last_id)
        if not page:
            self._done = True
            return None
        frames = []
        for message in page:
            frame = events.sse_frame(events.created_event(message))
            if self.rows + 1 > self._replayer.max_rows or \
                    self.bytes + len(frame) > self._replayer.max_bytes:
                self.truncated = self._done = True
                break
            frames.append(frame)
            self.rows += 1
            self.bytes += len(frame)
            self.last_id = message.id
        return b"".join(frames) or None
