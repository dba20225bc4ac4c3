"""The Redis layer: sessions, rate-limit counters, event publishing, with a span per call.

Redis outages surface as `RedisUnavailable` (a 503), and so does a call that takes
longer than REDIS_TIMEOUT_SECONDS (one deadline per call, however many commands it
sends). redis-py reconnects by itself on the next command once Redis is back. What
many concurrent requests ask for (session look-ups, rate-limit counts, new messages'
events) goes to Redis as one script call each: one command to encode and one reply
to parse, where a pipeline costs redis-py a command and a reply per item.

Session tokens are stored only as their SHA-256 digest, so a copy of Redis holds no
usable credential. Sessions the original backend made (`session:<64 hex>` -> user id,
the raw token in the key) are read until first use, when `upgrade_legacy_session`
moves them to this format. This module does I/O.

Keys (every one has an expiry, so Redis can evict under `volatile-*` policies; sessions
carry the longest):

- `chat:session:<sha256 of the token>`: `{"u": user id, "n": nickname, "c": login time}`,
  expiring SESSION_TTL_SECONDS after its last use, refused after
  SESSION_MAX_LIFETIME_SECONDS from its login whatever its expiry says;
- `chat:user-sessions:<user id>`: a sorted set of the user's session digests by login
  time, so a login can end the oldest beyond SESSION_MAX_PER_USER (expires with the
  longest possible session);
- `chat:ratelimit:...`: counters and waits (`chat_service.throttling`), expiring with
  their window or wait.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from chat_service.coalescing import Coalescer
from chat_service.config import Config
from chat_service.errors import RedisUnavailable
from chat_service.models import SessionInfo

SESSION_PREFIX = "chat:session:"
USER_SESSIONS_PREFIX = "chat:user-sessions:"
RATE_PREFIX = "chat:ratelimit:"
# Stores a session and ends the user's oldest beyond the cap, atomically (one script).
# KEYS: the new session, the user's index[, an original-format key to drop]. ARGV: value,
# idle TTL, most sessions, login time (µs; made later than the newest so order is strict),
# index TTL, session key prefix, the new digest.
# (It touches session keys it derives from the index: fine on one Redis, not on a cluster.)
_CREATE_SESSION = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if KEYS[3] then redis.call('DEL', KEYS[3]) end
for _, digest in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('EXISTS', ARGV[6] .. digest) == 0 then redis.call('ZREM', KEYS[2], digest) end
end
local score = tonumber(ARGV[4])
local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) >= score then score = tonumber(newest[2]) + 1 end
redis.call('ZADD', KEYS[2], score, ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[5])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
local ended = 0
if excess > 0 then
  for _, digest in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess - 1)) do
    ended = ended + redis.call('DEL', ARGV[6] .. digest)
    redis.call('ZREM', KEYS[2], digest)
  end
end
return ended
"""
# Reads sessions and renews their idle expiry. KEYS: session keys; ARGV: the idle TTL.
# Returns each value, or nil (a Lua false) for a missing one.
_GETEX_ALL = """
local found = {}
for i, key in ipairs(KEYS) do found[i] = redis.call('GETEX', key, 'EX', ARGV[1]) end
return found
"""
# Counts one attempt per key, each in a fixed window from its first attempt. KEYS:
# counters (repeats count twice); ARGV: their windows. Returns count, seconds left, ...
_HIT_ALL = """
local counted = {}
for i, key in ipairs(KEYS) do
  counted[2 * i - 1] = redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[i], 'NX')
  counted[2 * i] = redis.call('TTL', key)
end
return counted
"""
# Publishes messages in order. ARGV: the channel, then the messages.
_PUBLISH_ALL = """
for i = 2, #ARGV do redis.call('PUBLISH', ARGV[1], ARGV[i]) end
return #ARGV - 1
"""
# The original backend's sessions: `session:<token>` -> the user id as text, where the
# token is 32 random bytes in lower-case hex.
LEGACY_SESSION_PREFIX = "session:"
_LEGACY_TOKEN = re.compile(r"[0-9a-f]{64}")
# Tokens are token_urlsafe(32): 43 characters. Anything far off is not ours.
_TOKEN_MAX = 128

_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError,
                TimeoutError)


def create_client(config: Config, *, for_pubsub: bool = False) -> aioredis.Redis:
    """A Redis client with a short connect timeout, so an outage turns into a 503 quickly.

    Neither client has a socket timeout: the pub/sub client waits for messages (and
    relies on keepalive pings), and `RedisStore` gives each call one deadline rather
    than redis-py one per command sent and per reply read.
    """
    return aioredis.Redis(
        host=config.redis_host, port=config.redis_port, db=config.redis_db,
        password=config.redis_password or None,
        socket_connect_timeout=config.redis_timeout,
        socket_timeout=None,
        socket_keepalive=True,
        # One quick retry covers a connection that died while idle in the pool.
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), retries=1),
        health_check_interval=10 if for_pubsub else 0,
        client_name="chat-service",
    )


def token_digest(token: str) -> str:
    """The SHA-256 hex digest under which a token's session is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class RedisStore:
    """Sessions, rate-limit counters and event publishing on one Redis client."""

    def __init__(self, client: aioredis.Redis, tracer: Tracer, config: Config) -> None:
        self.client = client
        self._tracer = tracer
        self._timeout = config.redis_timeout
        self._session_ttl = config.session_ttl
        self._session_lifetime = config.session_max_lifetime
        self._sessions_per_user = config.session_max_per_user
        self._create_session = client.register_script(_CREATE_SESSION)
        self._getex_script = client.register_script(_GETEX_ALL)
        self._hit_script = client.register_script(_HIT_ALL)
        self._publish_script = client.register_script(_PUBLISH_ALL)
        self._channel = config.events_channel
        self._session_reads: Coalescer[str, Any] = Coalescer(self._getex_all, limit=256)
        self._hits: Coalescer[tuple[str, int], tuple[int, int]] = Coalescer(
            self._hit_all, limit=256)

    @asynccontextmanager
    async def _call(self, operation: str) -> AsyncIterator[None]:
        with self._tracer.start_as_current_span(
            f"redis {operation}", kind=SpanKind.CLIENT,
            attributes={"db.system": "redis", "db.operation": operation},
        ) as span:
            try:
                async with asyncio.timeout(self._timeout):
                    yield
            except _UNAVAILABLE as e:
                span.set_status(Status(StatusCode.ERROR, type(e).__name__))
                raise RedisUnavailable() from None

    async def ping(self) -> None:
        """A round trip (readiness)."""
        async with self._call("PING"):
            await self.client.ping()

    async def create_session(self, user_id: int, nickname: str) -> str:
        """A new random token (256 bits) for the user; only its digest is stored. Ends the
        user's oldest sessions beyond SESSION_MAX_PER_USER."""
        token = secrets.token_urlsafe(32)
        await self._store_session(token_digest(token), user_id, nickname)
        return token

    async def _store_session(self, digest: str, user_id: int, nickname: str,
                             drop: str | None = None) -> None:
        now_us = time.time_ns() // 1000
        keys = [SESSION_PREFIX + digest, f"{USER_SESSIONS_PREFIX}{user_id}"]
        if drop is not None:
            keys.append(drop)
        async with self._call("EVALSHA"):
            await self._create_session(keys=keys, args=[
                json.dumps({"u": user_id, "n": nickname, "c": now_us // 1_000_000}),
                self._session_ttl, self._sessions_per_user, now_us,
                self._session_lifetime + self._session_ttl, SESSION_PREFIX, digest])

    async def get_session(self, token: str) -> SessionInfo | None:
        """The session of `token`, renewing its idle timeout; None if unknown or expired.

        Look-ups that arrive while one is under way go together in the next round trip
        (one script call), so many concurrent requests cost a few round trips, not one each.
        """
        if not token or len(token) > _TOKEN_MAX:
            return None
        key = SESSION_PREFIX + token_digest(token)
        raw = await self._session_reads.get(key)
        if raw is None:
            return None
        data = json.loads(raw)
        session = SessionInfo(user_id=int(data["u"]), nickname=str(data["n"]))
        created = data.get("c")
        if not isinstance(created, int):
            # Stored before sessions had a lifetime: it starts now.
            data["c"] = int(time.time())
            async with self._call("SET"):
                await self.client.set(key, json.dumps(data), keepttl=True)
            return session
        left = created + self._session_lifetime - int(time.time())
        if left <= 0:
            async with self._call("DEL"):
                await self.client.delete(key)
            return None
        if left < self._session_ttl:
            # Its last day (or idle period): let Redis drop it when its lifetime ends.
            async with self._call("EXPIRE"):
                await self.client.expire(key, left)
        return session

    async def _getex_all(self, keys: list[str]) -> list[Any]:
        async with self._call("GETEX"):
            return list(await self._getex_script(keys=keys, args=[self._session_ttl]))

    async def legacy_session_user(self, token: str) -> int | None:
        """The user id of an original-format session `token`, if one is stored.

        Checks this format once more when the original's key is gone, since a
        concurrent request may have just upgraded the same token.
        """
        if not is_legacy_token(token):
            return None
        async with self._call("GET"):
            raw = await self.client.get(LEGACY_SESSION_PREFIX + token)
        if raw is None:
            again = await self.get_session(token)
            return None if again is None else again.user_id
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        # A bigint id, or nothing of ours.
        if not (text.isascii() and text.isdigit() and len(text) <= 19):
            return None
        return int(text) if int(text) < 2**63 else None

    async def upgrade_legacy_session(self, token: str, user_id: int,
                                     nickname: str) -> SessionInfo:
        """Store an original-format session in this format and drop the original's key
        (which held the raw token), atomically; from now on it lives like any session."""
        await self._store_session(token_digest(token), user_id, nickname,
                                  drop=LEGACY_SESSION_PREFIX + token)
        return SessionInfo(user_id=user_id, nickname=nickname)

    async def delete_session(self, token: str) -> bool:
        """End a session (of either format); False if there was none."""
        keys = [SESSION_PREFIX + token_digest(token)]
        if is_legacy_token(token):
            keys.append(LEGACY_SESSION_PREFIX + token)
        async with self._call("DEL"):
            return bool(await self.client.delete(*keys))

    async def delete_user_sessions(self, user_id: int) -> int:
        """End every session of a user (admin: deleted user, new password).

        Scans the session keys rather than trusting the user's index: sessions stored
        before the index existed, and the original backend's, are not in it. Rare admin
        work.
        """
        async with self._call("DEL"):
            await self.client.delete(f"{USER_SESSIONS_PREFIX}{user_id}")
        removed = 0
        for prefix in (SESSION_PREFIX, LEGACY_SESSION_PREFIX):
            cursor = 0
            while True:
                # A deadline per page: a Redis with many sessions takes many of them.
                async with self._call("SCAN"):
                    cursor, keys = await self.client.scan(cursor, match=prefix + "*",
                                                          count=500)
                    if keys:
                        removed += await self._delete_if_user(keys, user_id)
                if cursor == 0:
                    break
        return removed

    async def _delete_if_user(self, keys: list[Any], user_id: int) -> int:
        values = await self.client.mget(keys)
        doomed = [k for k, v in zip(keys, values, strict=True)
                  if v is not None and _session_user(v) == user_id]
        return int(await self.client.delete(*doomed)) if doomed else 0

    async def hit_rate_limit(self, bucket: str, window: int) -> tuple[int, int]:
        """Count one attempt in `bucket` (a fixed window of `window` seconds from its first
        attempt); returns (attempts in this window, seconds left). Counts that arrive while
        one is under way go together in the next round trip."""
        return await self._hits.get((RATE_PREFIX + bucket, window))

    async def _hit_all(self, items: list[tuple[str, int]]) -> list[tuple[int, int]]:
        async with self._call("INCR"):
            results = await self._hit_script(keys=[key for key, _ in items],
                                             args=[window for _, window in items])
        counted = []
        for index, (_, window) in enumerate(items):
            count, ttl = int(results[2 * index]), int(results[2 * index + 1])
            counted.append((count, ttl if ttl > 0 else window))
        return counted

    async def wait_left(self, bucket: str) -> int:
        """Seconds left of a wait set by `impose_wait` on `bucket` (0: none)."""
        async with self._call("TTL"):
            ttl = await self.client.ttl(RATE_PREFIX + bucket)
        return max(0, int(ttl))

    async def count_failure(self, bucket: str, remember: int, shared: str,
                            window: int) -> tuple[int, int]:
        """Count a failure in `bucket` (kept `remember` seconds after its latest failure)
        and in `shared` (a fixed window); returns both counts."""
        key, shared_key = RATE_PREFIX + bucket, RATE_PREFIX + shared
        async with self._call("INCR"):
            pipe = self.client.pipeline(transaction=True)
            pipe.incr(key)
            pipe.expire(key, remember)
            pipe.incr(shared_key)
            pipe.expire(shared_key, window, nx=True)
            count, _, shared_count, _ = await pipe.execute()
        return int(count), int(shared_count)

    async def impose_wait(self, bucket: str, seconds: int, *, remember: str,
                          remember_seconds: int) -> None:
        """Make `bucket` wait `seconds`, and keep the failures of `remember` as long."""
        async with self._call("SET"):
            pipe = self.client.pipeline(transaction=True)
            pipe.set(RATE_PREFIX + bucket, b"1", ex=seconds)
            pipe.expire(RATE_PREFIX + remember, remember_seconds)
            await pipe.execute()

    async def clear(self, *buckets: str) -> None:
        """Forget these counters and waits."""
        async with self._call("DEL"):
            await self.client.delete(*(RATE_PREFIX + b for b in buckets))

    async def publish(self, event: dict[str, Any]) -> None:
        """Send a live-update event to every replica's subscribers."""
        async with self._call("PUBLISH"):
            await self.client.publish(self._channel, json.dumps(event))

    async def publish_all(self, events: list[dict[str, Any]]) -> None:
        """Send several events, in order, in one round trip."""
        async with self._call("PUBLISH"):
            await self._publish_script(
                args=[self._channel, *(json.dumps(event) for event in events)])


def is_legacy_token(token: str) -> bool:
    """Whether `token` has the shape of the original backend's tokens (64 hex digits)."""
    return _LEGACY_TOKEN.fullmatch(token) is not None


def _session_user(value: bytes | str) -> int | None:
    """The user id in a stored session of either format (JSON here, a number in the
    original's)."""
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if isinstance(data, dict):
        user = data.get("u")
        return user if isinstance(user, int) else None
    return data if isinstance(data, int) and not isinstance(data, bool) else None

