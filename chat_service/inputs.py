"""Reading what a request carries: the JSON body, the bearer token, the client address.

Raise `ApiError`s for bad input; the only I/O is reading the request body.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
from typing import Any

from aiohttp import hdrs, web

from chat_service import queries
from chat_service.envparse import Network
from chat_service.errors import ApiError, ClientGone, RequestTimeout, Unauthorized
from chat_service.models import SessionInfo
from chat_service.redis_store import is_legacy_token
from chat_service.state import CONFIG, DB, REDIS

log = logging.getLogger(__name__)

# RFC 6750's token68: what a bearer token may look like. Ours are URL-safe base64, the
# original backend's lower-case hex; anything else (spaces, non-ASCII, bytes that are
# not UTF-8) is no token of ours.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_TOKEN_MAX = 128
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    raw = await _body(request)
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


async def _body(request: web.Request) -> bytes:
    """The whole body, within HTTP_BODY_TIMEOUT_SECONDS; `ClientGone` if the client left."""
    try:
        async with asyncio.timeout(request.app[CONFIG].http_body_timeout):
            return await request.read()
    except TimeoutError:
        raise RequestTimeout() from None
    except ConnectionError:
        # aiohttp says a client that went away mid-body with one of these.
        raise ClientGone() from None


def bearer_token(request: web.Request) -> str:
    """The token of `Authorization: Bearer <token>`, or 401.

    Header bytes that are not UTF-8 reach us as lone surrogates; they, like any text
    that cannot be a token, are a 401, never an error of ours.
    """
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token")
    if len(token) > _TOKEN_MAX or not _TOKEN.fullmatch(token):
        raise Unauthorized("invalid or expired token")
    return token


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
    """The client's address, as text.

    The TCP peer, unless the peer is a trusted proxy (TRUSTED_PROXY_CIDRS): then the
    X-Forwarded-For entries are read from the right (each proxy appends the address it
    received the request from), skipping trusted proxies, and the first other address is
    the client. An entry that is not an address (anything a client sent may be there)
    ends the walk at the last address a trusted proxy vouched for.
    """
    peer = _ip(request.remote or "")
    if peer is None:
        return request.remote or "unknown"
    trusted = request.app[CONFIG].trusted_proxies
    if not _within(peer, trusted):
        return str(peer)
    client = peer
    entries = [entry for header in request.headers.getall("X-Forwarded-For", [])
               for entry in header.split(",")]
    for entry in reversed(entries):
        hop = _ip(entry.strip())
        if hop is None:
            break
        client = hop
        if not _within(hop, trusted):
            break
    return str(client)


def _ip(text: str) -> IPAddress | None:
    """The address `text` names (IPv4-mapped IPv6 as IPv4), or None."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: IPAddress, networks: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)
