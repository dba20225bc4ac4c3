"""The newest messages in memory, so the latest page and the empty poll cost no query.

One `LatestMessages` per process holds the newest visible messages (up to
`LIMIT_MAX`) as a consistent snapshot of PostgreSQL: every visible message with an
id between its oldest and `max_id` is in it, so an `after_id` cursor paged from it
never skips a message. It is kept current by the `message.created` / `message.deleted`
events the event hub receives (and by this process's own posts, at once). A created
event is applied only when it is the very next id; anything else (a gap, an event
that overtook another, a deletion that leaves the snapshot short) marks it stale,
and the next request reloads it with one query, all waiting requests sharing it.

Events can be lost (a publish that failed while Redis was down), so the snapshot is
also revalidated against PostgreSQL's stamp (highest id, deletion counter) when it is
older than `max_age` seconds, and not used at all while the hub is not subscribed.
A reader may therefore see a message up to `max_age` late, never out of order.

Answers are encoded once and tagged with a hash of their bytes (`etag.body_tag`), so
the same page has the same ETag in every process. Does I/O only through `queries`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from chat_service import etag, queries
from chat_service.database import Database
from chat_service.models import Message, encode_message
from chat_service.validation import LIMIT_MAX, MessageQuery

# Rendered answers kept per snapshot; a snapshot change drops them all.
_RENDERED_MAX = 256
EMPTY = b"[]"


class LatestMessages:
    """A snapshot of the newest visible messages, refreshed by events and by age."""

    def __init__(self, db: Database, *, max_age: float, usable: Callable[[], bool],
                 capacity: int = LIMIT_MAX) -> None:
        self._db = db
        self._max_age = max_age
        self._usable = usable
        self._capacity = capacity
        self._page: list[Message] = []
        self._encoded: list[bytes] = []
        self._complete = False  # the page holds every visible message there is
        self._stamp: tuple[int, int] | None = None  # (max id, deletion version); None: stale
        self._checked_at = 0.0
        self._refresh: asyncio.Future[None] | None = None
        self._rendered: dict[tuple[int, int], tuple[str, bytes]] = {}

    async def answer(self, query: MessageQuery) -> tuple[str, bytes] | None:
        """(ETag, JSON body) of `query` from memory, or None when the snapshot cannot
        answer it (an older page, `before_id`, or live updates are down)."""
        if query.before_id is not None or not self._usable():
            return None
        if self._stamp is None or time.monotonic() - self._checked_at > self._max_age:
            await self._refreshed()
        assert self._stamp is not None
        after = query.after_id or 0
        key = (after, query.limit)
        hit = self._rendered.get(key)
        if hit is not None:
            return hit
        chosen = self._select(query.after_id, query.limit)
        if chosen is None:
            return None
        body = b"[" + b",".join(self._encoded[i] for i in chosen) + b"]"
        rendered = (etag.body_tag(body), body)
        if len(self._rendered) >= _RENDERED_MAX:
            self._rendered.clear()
        self._rendered[key] = rendered
        return rendered

    def _select(self, after_id: int | None, limit: int) -> range | None:
        """Indexes into the page answering the query, or None if the page cannot."""
        assert self._stamp is not None
        page = self._page
        if after_id is None:
            if len(page) < limit and not self._complete:
                return None
            return range(max(0, len(page) - limit), len(page))
        if after_id >= self._stamp[0]:
            return range(0)
        if not self._complete and (not page or after_id < page[0].id - 1):
            return None
        start = next((i for i, m in enumerate(page) if m.id > after_id), len(page))
        return range(start, min(len(page), start + limit))

    def on_event(self, event: dict[str, Any]) -> None:
        """Apply a hub event (`message.created` / `message.deleted`) to the snapshot."""
        if event.get("type") == "message.created":
            data = event["data"]
            self.note_created(Message.from_json(data))
        elif event.get("type") == "message.deleted":
            self._note_deleted(int(event["data"]["id"]))

    def note_created(self, message: Message) -> None:
        """A committed message: appended if it is the next id, else the snapshot is stale."""
        if self._stamp is None:
            return
        max_id, version = self._stamp
        if message.id <= max_id:
            return  # known already (or hard-deleted since)
        if message.id != max_id + 1:
            self._stale()
            return
        self._page.append(message)
        self._encoded.append(encode_message(message))
        if len(self._page) > self._capacity:
            del self._page[0], self._encoded[0]
            self._complete = False
        self._stamp = (message.id, version)
        self._rendered.clear()

    def _note_deleted(self, message_id: int) -> None:
        if self._stamp is None:
            return
        index = next((i for i, m in enumerate(self._page) if m.id == message_id), None)
        if index is not None:
            del self._page[index], self._encoded[index]
            self._rendered.clear()
        # The deletion counter moved; and a short page may need older messages back.
        self._stale()

    def _stale(self) -> None:
        self._stamp = None
        self._rendered.clear()

    async def _refreshed(self) -> None:
        """Revalidate or reload the snapshot; concurrent callers share one refresh."""
        if self._refresh is None:
            self._refresh = asyncio.ensure_future(self._do_refresh())
            self._refresh.add_done_callback(self._refresh_done)
        await asyncio.shield(self._refresh)

    def _refresh_done(self, future: asyncio.Future[None]) -> None:
        self._refresh = None
        if not future.cancelled():
            future.exception()  # retrieved: each waiter gets it raised

    async def _do_refresh(self) -> None:
        started = time.monotonic()
        stamp = await queries.list_stamp(self._db)
        if stamp == self._stamp:
            self._checked_at = started
            return
        page = await queries.list_messages(self._db, MessageQuery(limit=self._capacity))
        # Events may have moved the snapshot on meanwhile; the reload is the truth as of
        # the stamp, read before the rows, so it never claims more than it holds.
        self._page = page
        self._encoded = [encode_message(m) for m in page]
        self._complete = len(page) < self._capacity
        self._stamp = (max(stamp[0], page[-1].id if page else 0), stamp[1])
        self._checked_at = started
        self._rendered.clear()
