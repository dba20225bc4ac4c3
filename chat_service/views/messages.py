"""List, post and delete messages."""

from __future__ import annotations

import logging

from aiohttp import web

from chat_service import etag, events, inputs, queries, throttling, validation
from chat_service.errors import Forbidden, NotFound, RedisUnavailable, Unauthorized
from chat_service.models import Refused, encode_message, encode_messages
from chat_service.state import DB, LATEST, METRICS, REDIS, WRITER

log = logging.getLogger(__name__)


async def list_messages(request: web.Request) -> web.Response:
    """GET /api/messages: a page of messages, oldest first, with an ETag (304 if unchanged).

    The newest messages are answered from memory (`LatestMessages`); older pages and
    `before_id` from PostgreSQL. Both tag the same answer alike.
    """
    query = validation.message_query(request.query)
    answer = await request.app[LATEST].answer(query)
    if answer is None:
        body = encode_messages(await queries.list_messages(request.app[DB], query))
        answer = (etag.body_tag(body), body)
    tag, body = answer
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if etag.matches(request.headers.get("If-None-Match"), tag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers, content_type="application/json")


async def create_message(request: web.Request) -> web.Response:
    """POST /api/messages: store a message (201 once committed) and announce it; 429
    past the posting rate limit, 403 past the author's storage quota."""
    _, session = await inputs.require_session(request)
    text = validation.text(await inputs.json_object(request))
    await throttling.count_post(request, session.user_id)
    # Committed and announced when this returns (see MessageWriter).
    message = await request.app[WRITER].insert(session.user_id, text)
    if message is Refused.AUTHOR_GONE:
        raise Unauthorized("the account no longer exists")
    if message is Refused.OVER_QUOTA:
        request.app[METRICS].limited.labels("storage_quota").inc()
        raise Forbidden("you have stored as much text as one user may; delete nothing, "
                        "it still counts: ask an administrator", code="quota_exceeded")
    request.app[METRICS].messages_created.inc()
    return web.Response(body=encode_message(message), status=201,
                        content_type="application/json")


async def delete_message(request: web.Request) -> web.Response:
    """DELETE /api/messages/{id}: soft-delete one of the caller's messages (204), else 404."""
    _, session = await inputs.require_session(request)
    raw_id = request.match_info["id"]
    message_id = int(raw_id) if len(raw_id) <= 19 else validation.ID_MAX + 1
    if message_id > validation.ID_MAX or not await queries.soft_delete_message(
            request.app[DB], message_id, session.user_id):
        raise NotFound("message not found")
    await _announce(request, events.deleted_event(message_id))
    return web.Response(status=204)


async def _announce(request: web.Request, event: dict[str, object]) -> None:
    try:
        await request.app[REDIS].publish(event)
    except RedisUnavailable:
        # The change is committed, so the request still succeeds; hubs replay
        # creations from PostgreSQL when their subscription comes back.
        log.warning("could not publish %s: Redis unavailable", event["type"])
