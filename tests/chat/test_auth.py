"""Register, login, logout: rules, sessions in Redis, races, rate limits."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import statistics
import time
from dataclasses import replace

import redis.asyncio as aioredis
from chathelpers import Service, running_service
from servers import RedisServer

from chat_service.config import Config

PW = "correct horse"


async def test_register_returns_session_and_ids(service: Service) -> None:
    reply = await service.call("POST", "/api/register",
                               json_body={"nickname": "  alice  ", "password": PW})
    assert reply.status == 201
    body = reply.body
    assert set(body) == {"id", "userId", "nickname", "token"}
    assert body["nickname"] == "alice"
    assert body["id"] == body["userId"]
    assert isinstance(body["id"], int)
    assert len(body["token"]) >= 43
    # The token works right away.
    assert (await service.post(body["token"], "hi")).status == 201


async def test_nickname_boundaries(service: Service) -> None:
    cases = {"": 400, "   ": 400, "a": 201, "b" * 64: 201, "c" * 65: 400,
             "Наташа": 201, "日本語": 201, "José_M-1.2": 201, "two words": 201,
             "two  spaces": 400, "emoji😀": 400, "semi;colon": 400, "tab\tname": 400,
             "x" * 63 + "é": 201}
    for nickname, expected in cases.items():
        reply = await service.call("POST", "/api/register",
                                   json_body={"nickname": nickname, "password": PW})
        assert reply.status == expected, (nickname, reply.body)
        if expected == 400:
            assert reply.body["code"] == "validation_failed"
            assert reply.body["field"] == "nickname"


async def test_password_boundaries(service: Service) -> None:
    for length, expected in ((7, 400), (8, 201), (256, 201), (257, 400)):
        reply = await service.call("POST", "/api/register", json_body={
            "nickname": f"pw{length}", "password": "p" * length})
        assert reply.status == expected, (length, reply.body)
    # Unicode passwords count characters, and work for login.
    await service.register("unicodepw", "пароль🔑🔑")
    reply = await service.call("POST", "/api/login",
                               json_body={"nickname": "unicodepw", "password": "пароль🔑🔑"})
    assert reply.status == 200


async def test_register_wrong_types_and_missing_fields(service: Service) -> None:
    bodies = [{}, {"nickname": "bob"}, {"password": PW}, {"nickname": 5, "password": PW},
              {"nickname": "bob", "password": 12345678}, {"nickname": None, "password": PW},
              {"nickname": ["bob"], "password": PW}, {"nickname": "bob", "password": True},
              {"nickname": "nul\u0000", "password": PW}]
    for body in bodies:
        reply = await service.call("POST", "/api/register", json_body=body)
        assert reply.status == 400, (body, reply.body)
        assert isinstance(reply.body["error"], str)
        assert reply.body["code"] == "validation_failed"
        assert reply.body["field"] in ("nickname", "password")
    # A lone surrogate is valid JSON but not storable text: 400, not 500.
    reply = await service.call("POST", "/api/register", data='{"nickname": "\\ud800x", '
                               '"password": "correct horse"}',
                               headers={"Content-Type": "application/json"})
    assert reply.status == 400


async def test_extra_fields_are_ignored(service: Service) -> None:
    reply = await service.call("POST", "/api/register", json_body={
        "nickname": "extra", "password": PW, "admin": True, "id": 999})
    assert reply.status == 201
    assert reply.body["id"] != 999


async def test_nickname_taken_case_insensitively(service: Service) -> None:
    await service.register("Alice")
    for taken in ("Alice", "alice", "ALICE", " alice "):
        reply = await service.call("POST", "/api/register",
                                   json_body={"nickname": taken, "password": PW})
        assert reply.status == 409
        assert reply.body["code"] == "nickname_taken"
    # Non-ASCII case folding too (the database lowers Unicode).
    await service.register("Ärger")
    reply = await service.call("POST", "/api/register",
                               json_body={"nickname": "äRGER", "password": PW})
    assert reply.status == 409


async def test_concurrent_registration_one_wins(service: Service) -> None:
    for round_ in range(3):
        nick = f"racer{round_}"
        replies = await asyncio.gather(*(
            service.call("POST", "/api/register", json_body={"nickname": nick, "password": PW})
            for _ in range(4)))
        statuses = sorted(r.status for r in replies)
        assert statuses == [201, 409, 409, 409], [r.body for r in replies]


async def test_login(service: Service) -> None:
    user = await service.register("Carol")
    reply = await service.call("POST", "/api/login",
                               json_body={"nickname": "carol", "password": PW})
    assert reply.status == 200
    assert set(reply.body) == {"token", "userId", "nickname"}
    assert reply.body["userId"] == user["userId"]
    assert reply.body["nickname"] == "Carol"
    assert reply.body["token"] != user["token"]


async def test_login_failures_look_alike(service: Service) -> None:
    await service.register("dave")
    wrong = await service.call("POST", "/api/login",
                               json_body={"nickname": "dave", "password": "wrong password"})
    unknown = await service.call("POST", "/api/login",
                                 json_body={"nickname": "nobody", "password": "wrong password"})
    too_long = await service.call("POST", "/api/login",
                                  json_body={"nickname": "n" * 100, "password": "x"})
    assert wrong.status == unknown.status == too_long.status == 401
    assert wrong.body == unknown.body == too_long.body
    assert wrong.body["error"] == "invalid credentials"


async def test_login_timing_similar_for_unknown_and_wrong(config: Config) -> None:
    # With real (default) argon2 cost, an unknown nickname must cost a hash check too.
    slow = replace(config, argon2_time_cost=3, argon2_memory_kib=65536, argon2_parallelism=4)
    async with running_service(slow) as svc:
        await svc.register("erin")

        async def timed(nickname: str) -> float:
            started = time.perf_counter()
            reply = await svc.call("POST", "/api/login",
                                   json_body={"nickname": nickname, "password": "not it!!"})
            assert reply.status == 401
            return time.perf_counter() - started

        known = statistics.median([await timed("erin") for _ in range(7)])
        unknown = statistics.median([await timed("nobody-here") for _ in range(7)])
    assert known > 0.01  # a real hash was verified
    # Without the dummy hash an unknown nickname would answer ~100 times faster.
    assert 0.4 < unknown / known < 2.5, (known, unknown)


async def test_login_bad_bodies(service: Service) -> None:
    for body in ({}, {"nickname": "x"}, {"nickname": 1, "password": "x"},
                 {"nickname": "x", "password": None}):
        reply = await service.call("POST", "/api/login", json_body=body)
        assert reply.status == 400, body


async def test_sessions_stored_hashed_with_sliding_ttl(service: Service,
                                                       redis_server: RedisServer) -> None:
    token = (await service.register("frank"))["token"]
    client = aioredis.from_url(redis_server.url)
    try:
        keys = [k.decode() async for k in client.scan_iter(match="chat:session:*")]
        assert keys == [f"chat:session:{hashlib.sha256(token.encode()).hexdigest()}"]
        for key in [k async for k in client.scan_iter(match="*")]:
            assert token not in key.decode()
            if await client.type(key) == b"string":
                assert token not in (await client.get(key) or b"").decode()
        ttl = await client.ttl(keys[0])
        assert 86000 < ttl <= 86400
        await client.expire(keys[0], 100)
        assert (await service.post(token, "renews the session")).status == 201
        assert await client.ttl(keys[0]) > 86000
        # An expired session is gone: 401.
        await client.delete(keys[0])
        reply = await service.post(token, "too late")
        assert reply.status == 401
        assert reply.headers["WWW-Authenticate"] == "Bearer"
    finally:
        await client.aclose()


async def test_logout(service: Service) -> None:
    token = (await service.register("gina"))["token"]
    other = (await service.call("POST", "/api/login",
                                json_body={"nickname": "gina", "password": PW})).body["token"]
    assert (await service.call("POST", "/api/logout", token=token)).status == 204
    assert (await service.post(token, "after logout")).status == 401
    assert (await service.call("POST", "/api/logout", token=token)).status == 401
    # Other sessions of the same user live on.
    assert (await service.post(other, "still here")).status == 201
    assert (await service.call("POST", "/api/logout")).status == 401


async def test_bad_tokens(service: Service) -> None:
    await service.register("hank")
    for header in ("", "Bearer", "Bearer ", "Basic abc", "Bearer garbage",
                   "Bearer " + "x" * 5000, "bearer \u00e9\u00e9"):
        reply = await service.call("POST", "/api/messages", json_body={"text": "x"},
                                   headers={"Authorization": header} if header else {})
        assert reply.status == 401, header
        assert reply.body["code"] == "unauthorized"


async def test_login_rate_limited_per_address(config: Config) -> None:
    # The peer (127.0.0.1) is the trusted proxy; X-Forwarded-For names the client.
    limited = replace(config, login_limit_per_address=4,
                      trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),))
    async with running_service(limited) as svc:
        statuses = [(await svc.call("POST", "/api/login",
                                    json_body={"nickname": f"n{i}", "password": "x"},
                                    headers={"X-Forwarded-For": "10.1.1.1, 203.0.113.7"})).status
                    for i in range(6)]
        assert statuses == [401] * 4 + [429] * 2
        # Another client address (the last, proxy-appended hop) is not limited.
        reply = await svc.call("POST", "/api/login", json_body={"nickname": "n9", "password": "x"},
                               headers={"X-Forwarded-For": "203.0.113.8"})
        assert reply.status == 401


async def test_responses_are_json_with_ids(service: Service) -> None:
    body = await service.register("json")
    assert json.loads(json.dumps(body)) == body


async def test_registration_rate_limited_per_address(config: Config) -> None:
    limited = replace(config, register_limit_per_address=3)
    async with running_service(limited) as svc:
        statuses = [(await svc.call("POST", "/api/register", json_body={
            "nickname": f"reg{i}", "password": PW})).status for i in range(5)]
        assert statuses == [201, 201, 201, 429, 429]
        # Invalid input is rejected before it counts (no hash was spent on it).
        reply = await svc.call("POST", "/api/register", json_body={"nickname": "", "password": PW})
        assert reply.status == 400
