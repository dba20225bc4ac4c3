"""Live updates: one Redis pub/sub subscription per process, fanned out to SSE streams.

Every replica publishes `message.created` / `message.deleted` to the channel and
every replica's `EventHub` hands what it receives to its connected streams. When
the subscription breaks (Redis restarted), the hub resubscribes with backoff and
then replays, from PostgreSQL, messages created while it was deaf, so streams
miss nothing. The hub also admits streams: at most SSE_MAX_STREAMS in the process and
SSE_MAX_STREAMS_PER_ADDRESS from one client address (`TooManyStreams`). This module
does I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from chat_service import queries
from chat_service.database import Database
from chat_service.errors import Unavailable
from chat_service.models import Message
from chat_service.validation import LIMIT_MAX, MessageQuery

log = logging.getLogger(__name__)

CREATED = "message.created"
DELETED = "message.deleted"
# A stream that falls this far behind is closed; its client reconnects and replays.
_QUEUE_SIZE = 1000
_RECENT_IDS = 2000


def created_event(message: Message) -> dict[str, Any]:
    """The pub/sub payload announcing a new message."""
    return {"type": CREATED, "data": message.to_json()}


def deleted_event(message_id: int) -> dict[str, Any]:
    """The pub/sub payload announcing a deleted message."""
    return {"type": DELETED, "data": {"id": message_id}}


def sse_frame(event: dict[str, Any]) -> bytes:
    """One Server-Sent Events frame; created messages carry their id as the event id,
    so a browser's Last-Event-ID says where to resume."""
    lines = [f"event: {event['type']}"]
    if event["type"] == CREATED:
        lines.append(f"id: {event['data']['id']}")
    lines.append("data: " + json.dumps(event["data"], ensure_ascii=False))
    return ("\n".join(lines) + "\n\n").encode()


@dataclass(eq=False)
class Subscriber:
    """One connected stream's inbox; None in the queue means "close now"."""

    address: str = ""
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(_QUEUE_SIZE))


class TooManyStreams(Exception):
    """A stream was refused: the process, or the client's address, has its most open."""

    def __init__(self, *, per_address: bool) -> None:
        super().__init__("per address" if per_address else "per process")
        self.per_address = per_address


class EventHub:
    """The process's subscription to the events channel and its local subscribers."""

    def __init__(self, client: aioredis.Redis, db: Database, channel: str, *,
                 max_streams: int = 2000, max_per_address: int = 20,
                 on_event: Callable[[], None] | None = None) -> None:
        self._client = client
        self._db = db
        self._channel = channel
        self._max_streams = max_streams
        self._max_per_address = max_per_address
        self._subscribers: set[Subscriber] = set()
        self._per_address: dict[str, int] = {}
        self._recent: deque[int] = deque(maxlen=_RECENT_IDS)
        self._recent_set: set[int] = set()
        self._last_id = 0
        self._task: asyncio.Task[None] | None = None
        self._on_event = on_event
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self.subscribed = asyncio.Event()

    @property
    def client_count(self) -> int:
        """Streams connected to this process."""
        return len(self._subscribers)

    async def start(self) -> None:
        """Start listening; messages before now are the streams' replay business."""
        self._last_id = await queries.max_message_id(self._db)
        self._task = asyncio.create_task(self._listen(), name="event-hub")

    async def close(self) -> None:
        """End every stream and stop listening."""
        self.end_streams()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def end_streams(self) -> None:
        """Ask every connected stream to finish (graceful shutdown)."""
        for sub in list(self._subscribers):
            self._kick(sub)

    def subscribe(self, address: str = "") -> Subscriber:
        """Register a stream from `address`; call before replaying, so nothing falls in
        between. `TooManyStreams` when the process or the address has its most open."""
        if len(self._subscribers) >= self._max_streams:
            raise TooManyStreams(per_address=False)
        if self._per_address.get(address, 0) >= self._max_per_address:
            raise TooManyStreams(per_address=True)
        sub = Subscriber(address)
        self._subscribers.add(sub)
        self._per_address[address] = self._per_address.get(address, 0) + 1
        return sub

    def add_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call `listener(event)` for every event dispatched (after duplicates are dropped)."""
        self._listeners.append(listener)

    def unsubscribe(self, sub: Subscriber) -> None:
        """Forget a stream."""
        self._forget(sub)

    def _forget(self, sub: Subscriber) -> None:
        if sub not in self._subscribers:
            return
        self._subscribers.discard(sub)
        left = self._per_address.get(sub.address, 0) - 1
        if left > 0:
            self._per_address[sub.address] = left
        else:
            self._per_address.pop(sub.address, None)

    def _kick(self, sub: Subscriber) -> None:
        self._forget(sub)
        if sub.queue.full():
            # Make room for the close marker: the stream is closing anyway.
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)

    def dispatch(self, event: dict[str, Any]) -> None:
        """Hand an event to every local stream (duplicates of a created id are dropped)."""
        if event.get("type") == CREATED:
            message_id = int(event["data"]["id"])
            if message_id in self._recent_set:
                return
            if len(self._recent) == self._recent.maxlen:
                self._recent_set.discard(self._recent[0])
            self._recent.append(message_id)
            self._recent_set.add(message_id)
            self._last_id = max(self._last_id, message_id)
        if self._on_event is not None:
            self._on_event()
        for listener in self._listeners:
            listener(event)
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("closing a live stream that fell %d events behind", _QUEUE_SIZE)
                self._kick(sub)

    async def _listen(self) -> None:
        delay = 0.1
        first = True
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self.subscribed.set()
                if not first:
                    log.info("resubscribed to %s", self._channel)
                    await self._catch_up()
                first, delay = False, 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._receive(message["data"])
            except (redis.exceptions.RedisError, OSError) as e:
                self.subscribed.clear()
                log.warning("event subscription lost (%s); retrying in %.1f s",
                            type(e).__name__, delay)
                first = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(redis.exceptions.RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _receive(self, data: bytes | str) -> None:
        try:
            event = json.loads(data)
            if event["type"] in (CREATED, DELETED):
                int(event["data"]["id"])
                self.dispatch(event)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed event on %s", self._channel)

    async def _catch_up(self) -> None:
        """Replay messages created while the subscription was down."""
        try:
            while True:
                page = await queries.list_messages(
                    self._db, MessageQuery(after_id=self._last_id, limit=LIMIT_MAX))
                for message in page:
                    self.dispatch(created_event(message))
                if len(page) < LIMIT_MAX:
                    return
        except Unavailable:
            # Streams reconnecting later replay from their own Last-Event-ID.
            log.warning("could not replay missed messages: PostgreSQL unavailable")
