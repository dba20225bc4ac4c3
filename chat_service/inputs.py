"""Reading what a request carries: the JSON body, the bearer token, the client address.

Raise `ApiError`s for bad input; the only I/O is reading the request body.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import hdrs, web

from chat_service import queries
from chat_service.errors import ApiError, Unauthorized
from chat_service.models import SessionInfo
from chat_service.redis_store import is_legacy_token
from chat_service.state import CONFIG, DB, REDIS


class UnsupportedMediaType(ApiError):
    """The body is not declared as JSON."""

    status = 415
    code = "unsupported_media_type"


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object.

    A body without Content-Type is read as JSON, as the original backend did; 415 for
    a declared type other than application/json (or `+json`); 400 for an empty,
    malformed or non-object body; 413 (raised by aiohttp) past MAX_BODY_BYTES.
    Fields the endpoint does not know are ignored.
    """
    if hdrs.CONTENT_TYPE in request.headers:
        ctype = request.content_type
        if ctype != "application/json" and not ctype.endswith("+json"):
            raise UnsupportedMediaType("Content-Type must be application/json")
    raw = await request.read()
    if not raw.strip():
        raise ApiError("request body must be a JSON object", code="invalid_json")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        # ValueError covers bad syntax and undecodable bytes; RecursionError very deep nesting.
        raise ApiError("request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError("request body must be a JSON object", code="invalid_json")
    return body


def bearer_token(request: web.Request) -> str:
    """The token of `Authorization: Bearer <token>`, or 401."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    return token.strip()


async def require_session(request: web.Request) -> tuple[str, SessionInfo]:
    """(token, session) of an authenticated request, renewing the session; or 401.

    A token the original backend issued is accepted while its session lives, and its
    session is moved to this service's format on this first use.
    """
    token = bearer_token(request)
    redis = request.app[REDIS]
    session = await redis.get_session(token)
    if session is None and is_legacy_token(token):
        session = await _upgrade_legacy_session(request, token)
    if session is None:
        raise Unauthorized("invalid or expired token")
    return token, session


async def _upgrade_legacy_session(request: web.Request, token: str) -> SessionInfo | None:
    redis = request.app[REDIS]
    user_id = await redis.legacy_session_user(token)
    if user_id is None:
        return None
    user = await queries.find_user_by_id(request.app[DB], user_id)
    if user is None:
        return None
    return await redis.upgrade_legacy_session(token, user.id, user.nickname)


def client_address(request: web.Request) -> str:
    """The client's address: the peer, or the last X-Forwarded-For hop when trusted."""
    if request.app[CONFIG].trust_forwarded_for:
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
        if hops and hops[-1]:
            return hops[-1][:64]
    return request.remote or "unknown"
