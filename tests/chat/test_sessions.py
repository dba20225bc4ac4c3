"""Sessions: at most SESSION_MAX_PER_USER per user, and an absolute lifetime."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace

import redis.asyncio as aioredis
from chathelpers import Service, running_service
from servers import RedisServer

from chat_service.config import Config
from chat_service.redis_store import (
    LEGACY_SESSION_PREFIX,
    SESSION_PREFIX,
    RedisStore,
    create_client,
)
from chat_service.telemetry import IdsOnlyTracer

PW = "correct horse"


def _key(token: str) -> str:
    return "chat:session:" + hashlib.sha256(token.encode()).hexdigest()


async def _login(svc: Service, nickname: str) -> str:
    reply = await svc.call("POST", "/api/login", json_body={"nickname": nickname, "password": PW})
    assert reply.status == 200
    return str(reply.body["token"])


async def _works(svc: Service, token: str) -> bool:
    status = (await svc.post(token, "still here?")).status
    assert status in (201, 401)
    return status == 201


async def test_a_login_ends_the_oldest_sessions_beyond_the_cap(
        config: Config, redis_server: RedisServer) -> None:
    async with running_service(replace(config, session_max_per_user=3)) as svc:
        tokens = [(await svc.register("many"))["token"]]
        tokens += [await _login(svc, "many") for _ in range(4)]
        other = (await svc.register("other"))["token"]
        assert [await _works(svc, t) for t in tokens] == [False, False, True, True, True]
        assert await _works(svc, other)
        # A session that ended by itself (idle, logout) frees its place: the next login
        # ends nothing that still works beyond the cap.
        assert (await svc.call("POST", "/api/logout", token=tokens[2])).status == 204
        newest = await _login(svc, "many")
        assert [await _works(svc, t) for t in (*tokens[3:], newest)] == [True, True, True]
        client = aioredis.from_url(redis_server.url)
        try:
            index = await client.zrange("chat:user-sessions:1", 0, -1)
            assert len(index) == 3
            assert await client.ttl("chat:user-sessions:1") > config.session_max_lifetime
        finally:
            await client.aclose()


async def test_a_session_ends_at_its_lifetime_however_often_used(
        config: Config, redis_server: RedisServer) -> None:
    lifetime = 200_000  # longer than the idle lifetime (86,400 s)
    async with running_service(replace(config, session_max_lifetime=lifetime)) as svc:
        token = (await svc.register("busy"))["token"]
        assert await _works(svc, token)
        client = aioredis.from_url(redis_server.url)
        try:
            stored = json.loads(await client.get(_key(token)))
            assert abs(stored["c"] - time.time()) < 5
            # Logged in longer ago than the lifetime, and used all along (its idle expiry is
            # fresh).
            stored["c"] -= lifetime + 1
            await client.set(_key(token), json.dumps(stored), keepttl=True)
            assert await client.ttl(_key(token)) > 86000
            assert not await _works(svc, token)
            assert await client.exists(_key(token)) == 0
            # In its last idle period, Redis' expiry follows the lifetime.
            fresh = await _login(svc, "busy")
            stored = json.loads(await client.get(_key(fresh)))
            stored["c"] -= lifetime - 600
            await client.set(_key(fresh), json.dumps(stored), keepttl=True)
            assert await _works(svc, fresh)
            assert 500 < await client.ttl(_key(fresh)) <= 600
        finally:
            await client.aclose()


async def test_sessions_stored_before_the_lifetime_get_one(
        service: Service, redis_server: RedisServer) -> None:
    user = await service.register("old")
    client = aioredis.from_url(redis_server.url)
    try:
        # As the previous release stored it: no login time.
        await client.set(_key("an-older-token-of-ours-0123456789abcdefghijk"),
                         json.dumps({"u": user["id"], "n": "old"}), ex=86400)
        assert await _works(service, "an-older-token-of-ours-0123456789abcdefghijk")
        stored = json.loads(await client.get(_key("an-older-token-of-ours-0123456789abcdefghijk")))
        assert abs(stored["c"] - time.time()) < 5
    finally:
        await client.aclose()


async def test_ending_a_users_sessions_scans_every_page(config: Config) -> None:
    # The admin's "end every session of this user" reads all session keys, page by page
    # (each page under its own deadline): here far more than one page of others' sessions,
    # with the user's own among them, in both formats.
    store = RedisStore(create_client(config), IdsOnlyTracer(), config)
    try:
        others = {f"{SESSION_PREFIX}{n:064x}": json.dumps({"u": 1000 + n, "n": f"u{n}",
                                                           "c": int(time.time())})
                  for n in range(2500)}
        await store.client.mset(others)
        mine = [await store.create_session(7, "seven") for _ in range(3)]
        legacy = "ab" * 32
        await store.client.set(LEGACY_SESSION_PREFIX + legacy, "7")
        assert await store.delete_user_sessions(7) == 4
        assert [await store.get_session(t) for t in mine] == [None, None, None]
        assert await store.legacy_session_user(legacy) is None
        assert await store.client.exists(*others) == len(others)
    finally:
        await store.client.aclose()
