"""Who may try again, and when: login throttling and the registration and posting limits.

Counters live in Redis (`RedisStore`), so every process and replica shares them; the
client address is `inputs.client_address` (X-Forwarded-For only from trusted proxies),
and a nickname is counted by `nicknames.key`, exactly as the user look-up finds it.

Logins are throttled so that guessing slows down without locking the owner out:

- per client address: LOGIN_RATE_LIMIT_PER_ADDRESS attempts per window, any nickname;
- per nickname *and* address: after LOGIN_FAILURES_BEFORE_DELAY failures, each further
  failure makes that address wait on that nickname, 1 s, 2 s, 4 s, ... up to
  LOGIN_DELAY_MAX_SECONDS (429 with Retry-After while it waits, without checking the
  password); a successful login clears it;
- per nickname, from everywhere: when more than LOGIN_RATE_LIMIT_PER_NICKNAME failures
  hit one nickname within a window, it is under attack and every address waits from its
  first failure on it.

No rule refuses an address for what other addresses did: the owner, logging in from
their own address with the right password, gets in while someone else guesses. Raises
`RateLimited`; does I/O only through the `RedisStore`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from aiohttp import web

from chat_service import inputs, nicknames
from chat_service.errors import RateLimited
from chat_service.state import CONFIG, METRICS, REDIS

log = logging.getLogger(__name__)


def _digest(*parts: str) -> str:
    # Digests keep client text (nicknames, header values) out of Redis key names.
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class LoginAttempt:
    """The buckets one login attempt counts in."""

    pair: str
    """Failures of this nickname from this address (and their wait)."""
    nickname: str
    """Failures of this nickname from everywhere."""

    @property
    def wait(self) -> str:
        """The bucket whose expiry is the pair's wait."""
        return self.pair.replace("login:fail:", "login:wait:", 1)


def login_delay(failures: int, free: int, longest: int) -> int:
    """Seconds an address waits after its `failures`-th failure on a nickname, when
    `free` failures are allowed without waiting (0: none)."""
    if failures <= free:
        return 0
    return min(longest, 1 << min(failures - free - 1, 30))


async def start_login(request: web.Request, nickname: str) -> LoginAttempt:
    """Count a login attempt before the password is checked; 429 while the address is
    over its limit or waits on this nickname."""
    config = request.app[CONFIG]
    redis = request.app[REDIS]
    address = inputs.client_address(request)
    key = nicknames.key(nickname)
    attempt = LoginAttempt(pair=f"login:fail:{_digest(key, address)}",
                           nickname=f"login:nick:{_digest(key)}")
    count, ttl = await redis.hit_rate_limit(f"login:addr:{_digest(address)}",
                                            config.login_rate_window)
    if count > config.login_limit_per_address:
        _limited(request, "login_address")
        raise RateLimited(ttl)
    wait = await redis.wait_left(attempt.wait)
    if wait > 0:
        _limited(request, "login_delay")
        raise RateLimited(wait)
    return attempt


async def login_failed(request: web.Request, attempt: LoginAttempt) -> None:
    """A wrong password (or unknown nickname): count it, and make the address wait once
    it has failed too often here, or the nickname is under attack."""
    config = request.app[CONFIG]
    redis = request.app[REDIS]
    window = config.login_rate_window
    failures, on_nickname = await redis.count_failure(attempt.pair, window, attempt.nickname,
                                                      window)
    free = config.login_failures_free if on_nickname <= config.login_limit_per_nickname else 0
    delay = login_delay(failures, free, config.login_delay_max)
    if delay:
        log.warning("failed logins on one nickname from one address: it waits %d s", delay)
        await redis.impose_wait(attempt.wait, delay, remember=attempt.pair,
                                remember_seconds=delay + window)


async def login_succeeded(request: web.Request, attempt: LoginAttempt) -> None:
    """The right password: this address starts afresh on this nickname."""
    await request.app[REDIS].clear(attempt.pair, attempt.wait)


async def count_registration(request: web.Request) -> None:
    """429 beyond REGISTER_RATE_LIMIT_PER_ADDRESS registrations per window."""
    config = request.app[CONFIG]
    address = inputs.client_address(request)
    count, ttl = await request.app[REDIS].hit_rate_limit(f"register:addr:{_digest(address)}",
                                                         config.login_rate_window)
    if count > config.register_limit_per_address:
        _limited(request, "register_address")
        raise RateLimited(ttl)


async def count_post(request: web.Request, user_id: int) -> None:
    """429 beyond POST_RATE_LIMIT_PER_USER messages per POST_RATE_WINDOW_SECONDS."""
    config = request.app[CONFIG]
    count, ttl = await request.app[REDIS].hit_rate_limit(f"post:user:{user_id}",
                                                         config.post_rate_window)
    if count > config.post_limit_per_user:
        _limited(request, "post_user")
        raise RateLimited(ttl, "too many messages, try again later")


def _limited(request: web.Request, limit: str) -> None:
    request.app[METRICS].limited.labels(limit).inc()
