"""Register, log in, log out."""

from __future__ import annotations

import logging

from aiohttp import web

from chat_service import inputs, queries, throttling, validation
from chat_service.errors import Conflict, InvalidCredentials, Unauthorized
from chat_service.state import DB, HASHER, REDIS

log = logging.getLogger(__name__)


async def register(request: web.Request) -> web.Response:
    """POST /api/register: create a user and log them in (201)."""
    body = await inputs.json_object(request)
    nickname = validation.nickname(body)
    password = validation.password(body)
    await throttling.count_registration(request)
    password_hash = await request.app[HASHER].hash(password)
    user = await queries.create_user(request.app[DB], nickname, password_hash)
    if user is None:
        raise Conflict("nickname is already taken", code="nickname_taken", field="nickname")
    token = await request.app[REDIS].create_session(user.id, user.nickname)
    log.info("user registered", extra={"user_id": user.id})
    return web.json_response(
        {"id": user.id, "userId": user.id, "nickname": user.nickname, "token": token},
        status=201)


async def login(request: web.Request) -> web.Response:
    """POST /api/login: a new session token for valid credentials (200), else 401;
    429 while this address is throttled (see `chat_service.throttling`)."""
    body = await inputs.json_object(request)
    nickname = validation.login_nickname(body)
    password = validation.login_password(body)
    attempt = await throttling.start_login(request, nickname)
    app = request.app
    user = None
    if 0 < len(nickname) <= validation.NICKNAME_MAX:
        user = await queries.find_user(app[DB], nickname)
    # Unknown users are checked against a dummy hash: a failure costs the same time.
    if not await app[HASHER].verify(user.password_hash if user else None, password):
        await throttling.login_failed(request, attempt)
        raise InvalidCredentials()
    assert user is not None
    await throttling.login_succeeded(request, attempt)
    if app[HASHER].needs_rehash(user.password_hash):
        await queries.set_password_hash(app[DB], user.id, await app[HASHER].hash(password))
    token = await app[REDIS].create_session(user.id, user.nickname)
    return web.json_response({"token": token, "userId": user.id, "nickname": user.nickname})


async def logout(request: web.Request) -> web.Response:
    """POST /api/logout: end the caller's session (204)."""
    token = inputs.bearer_token(request)
    if not await request.app[REDIS].delete_session(token):
        raise Unauthorized("invalid or expired token")
    return web.Response(status=204)
