"""GET /api/events: Server-Sent Events with resumption."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from chat_service import events, queries, validation
from chat_service.models import Message
from chat_service.state import CONFIG, DB, HUB

# A client further behind than this should reload the list instead (it gets `resync`).
REPLAY_MAX = 1000


async def stream(request: web.Request) -> web.StreamResponse:
    """Stream `message.created` / `message.deleted`, first replaying what a resuming
    client (Last-Event-ID or ?after_id=) missed."""
    cursor = validation.event_cursor(request.headers.get("Last-Event-ID"),
                                     request.query.get("after_id"))
    hub = request.app[HUB]
    # Subscribe before reading the replay, so no event falls in between.
    subscriber = hub.subscribe()
    try:
        replay, truncated = await _replay(request, cursor)
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            # nginx (the ingress) must not buffer the stream.
            "X-Accel-Buffering": "no"})
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n")
        if truncated:
            await response.write(b"event: resync\ndata: {}\n\n")
        replayed_up_to = cursor or 0
        for message in replay:
            await response.write(events.sse_frame(events.created_event(message)))
            replayed_up_to = message.id
        heartbeat = request.app[CONFIG].sse_heartbeat
        with contextlib.suppress(ConnectionResetError):
            while True:
                try:
                    event = await asyncio.wait_for(subscriber.queue.get(), heartbeat)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if event is None:
                    break
                if event["type"] == events.CREATED and \
                        int(event["data"]["id"]) <= replayed_up_to:
                    continue  # already sent in the replay
                await response.write(events.sse_frame(event))
        return response
    finally:
        hub.unsubscribe(subscriber)


async def _replay(request: web.Request, cursor: int | None) -> tuple[list[Message], bool]:
    if cursor is None:
        return [], False
    found: list[Message] = []
    after = cursor
    while len(found) < REPLAY_MAX:
        page = await queries.list_messages(
            request.app[DB], validation.MessageQuery(after_id=after, limit=validation.LIMIT_MAX))
        found.extend(page)
        if len(page) < validation.LIMIT_MAX:
            return found, False
        after = page[-1].id
    return found, True
