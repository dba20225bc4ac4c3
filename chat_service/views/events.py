"""GET /api/events: Server-Sent Events with resumption."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from chat_service import events, inputs, validation
from chat_service.errors import Busy, RateLimited, Unavailable
from chat_service.replaying import Replay
from chat_service.state import CONFIG, HUB, METRICS, REPLAYER

log = logging.getLogger(__name__)

# How long a refused client should wait before opening a stream again.
RETRY_STREAM_SECONDS = 10


async def stream(request: web.Request) -> web.StreamResponse:
    """Stream `message.created` / `message.deleted`, first replaying what a resuming
    client (Last-Event-ID or ?after_id=) missed, a page at a time (`Replay`)."""
    cursor = validation.event_cursor(request.headers.get("Last-Event-ID"),
                                     request.query.get("after_id"))
    hub = request.app[HUB]
    # Subscribe before reading the replay, so no event falls in between.
    try:
        subscriber = hub.subscribe(inputs.client_address(request))
    except events.TooManyStreams as e:
        request.app[METRICS].limited.labels(
            "streams_address" if e.per_address else "streams_process").inc()
        if e.per_address:
            raise RateLimited(RETRY_STREAM_SECONDS, "too many open event streams from your "
                                                    "address") from None
        raise Busy("this server has its most event streams open; try again shortly",
                   RETRY_STREAM_SECONDS) from None
    try:
        replay = None if cursor is None else request.app[REPLAYER].start(cursor)
        # The first page is read before answering, so PostgreSQL being down is a 503.
        chunk = None if replay is None else await replay.next_chunk()
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            # nginx (the ingress) must not buffer the stream.
            "X-Accel-Buffering": "no"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            await response.write(b"retry: 3000\n\n")
            if replay is not None and not await _rest_of_replay(response, replay, chunk):
                return response
            await _live(request, response, subscriber, replay.last_id if replay else 0)
        return response
    finally:
        hub.unsubscribe(subscriber)


async def _rest_of_replay(response: web.StreamResponse, replay: Replay,
                          chunk: bytes | None) -> bool:
    """Send the replay from `chunk` on; False if it had to stop (the stream ends, and the
    client resumes from the last id it got)."""
    while chunk is not None:
        await response.write(chunk)
        try:
            chunk = await replay.next_chunk()
        except Unavailable as e:
            # The answer is under way, so no error can be sent any more.
            log.warning("ending a resuming stream: %s", e.message)
            return False
    if replay.truncated:
        await response.write(b"event: resync\ndata: {}\n\n")
    return True


async def _live(request: web.Request, response: web.StreamResponse,
                subscriber: events.Subscriber, replayed_up_to: int) -> None:
    heartbeat = request.app[CONFIG].sse_heartbeat
    while True:
        try:
            event = await asyncio.wait_for(subscriber.queue.get(), heartbeat)
        except TimeoutError:
            await response.write(b": keep-alive\n\n")
            continue
        if event is None:
            return
        if event["type"] == events.CREATED and int(event["data"]["id"]) <= replayed_up_to:
            continue  # already sent in the replay
        await response.write(events.sse_frame(event))
