"""What the original backend left behind keeps working: its bcrypt password hashes
(verified, then replaced by argon2id at the next login) and its Redis sessions
(`session:<64 hex>` -> user id, valid until first use moves them to our format)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator

import bcrypt
import pytest_asyncio
import redis.asyncio as aioredis
from chathelpers import Service, run_cli
from servers import PostgresServer, RedisServer

from chat_service import nicknames

LEGACY_PW = "legacy-password"


def bcrypt_hash(password: str, cost: int = 10) -> str:
    """A hash as the original stored it: bcrypt `$2a$`, cost 10 by default."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost, prefix=b"2a")).decode()


def legacy_token() -> str:
    """A token as the original made it: 32 random bytes in lower-case hex."""
    return secrets.token_hex(32)


@pytest_asyncio.fixture(loop_scope="session")
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_server.url)
    yield client
    await client.aclose()


def insert_user(pg: PostgresServer, db: str, nickname: str, password_hash: str) -> int:
    out = pg.psql(db, "INSERT INTO chat_user (nickname, nickname_key, password_hash) "  # noqa: S608
                      f"VALUES ('{nickname}', '{nicknames.key(nickname)}', '{password_hash}') "
                      "RETURNING id").stdout
    return int(out.split()[0])


def stored_hash(pg: PostgresServer, db: str, user_id: int) -> str:
    return pg.psql(db, f"SELECT password_hash FROM chat_user WHERE id = {user_id}"  # noqa: S608
                   ).stdout.strip()


async def test_bcrypt_hash_verifies_then_becomes_argon2id(
        service: Service, postgres_server: PostgresServer, chat_env: dict[str, str]) -> None:
    db = chat_env["POSTGRES_DB"]
    original = bcrypt_hash(LEGACY_PW)
    assert original.startswith("$2a$10$")
    user_id = insert_user(postgres_server, db, "Olga", original)

    wrong = await service.call("POST", "/api/login",
                               json_body={"nickname": "Olga", "password": "not-the-password"})
    assert wrong.status == 401
    assert wrong.body == {"error": "invalid credentials", "code": "invalid_credentials"}
    assert stored_hash(postgres_server, db, user_id) == original  # a failure changes nothing

    ok = await service.call("POST", "/api/login",
                            json_body={"nickname": "Olga", "password": LEGACY_PW})
    assert ok.status == 200, ok.body
    assert ok.body["userId"] == user_id
    assert ok.body["nickname"] == "Olga"
    upgraded = stored_hash(postgres_server, db, user_id)
    assert upgraded.startswith("$argon2id$"), upgraded
    # The new hash works, the old password still is the password, a wrong one still fails.
    again = await service.call("POST", "/api/login",
                               json_body={"nickname": "olga", "password": LEGACY_PW})
    assert again.status == 200
    assert stored_hash(postgres_server, db, user_id) == upgraded  # no second rehash
    wrong = await service.call("POST", "/api/login",
                               json_body={"nickname": "Olga", "password": LEGACY_PW + "x"})
    assert wrong.status == 401
    assert (await service.post(again.body["token"], "bcrypt no more")).status == 201


async def test_other_bcrypt_variants_and_long_passwords(
        service: Service, postgres_server: PostgresServer, chat_env: dict[str, str]) -> None:
    db = chat_env["POSTGRES_DB"]
    b_variant = bcrypt_hash(LEGACY_PW, cost=4).replace("$2a$", "$2b$", 1)
    y_variant = bcrypt_hash(LEGACY_PW, cost=4).replace("$2a$", "$2y$", 1)
    insert_user(postgres_server, db, "bee", b_variant)
    insert_user(postgres_server, db, "why", y_variant)
    insert_user(postgres_server, db, "broken", "$2a$10$not-a-real-hash")
    for nickname in ("bee", "why"):
        reply = await service.call("POST", "/api/login",
                                   json_body={"nickname": nickname, "password": LEGACY_PW})
        assert reply.status == 200, (nickname, reply.body)
    # A malformed stored hash and a password past bcrypt's 72 bytes fail cleanly (401).
    for nickname, password in (("broken", LEGACY_PW), ("bee", "p" * 200)):
        reply = await service.call("POST", "/api/login",
                                   json_body={"nickname": nickname, "password": password})
        assert reply.status == 401, (nickname, reply.body)


async def test_original_session_is_valid_and_upgraded_on_first_use(
        service: Service, postgres_server: PostgresServer, chat_env: dict[str, str],
        redis_client: aioredis.Redis) -> None:
    db = chat_env["POSTGRES_DB"]
    user_id = insert_user(postgres_server, db, "pavel", bcrypt_hash(LEGACY_PW, cost=4))
    token = legacy_token()
    await redis_client.set(f"session:{token}", str(user_id), ex=24 * 3600)

    first = await service.post(token, "still logged in after the switch")
    assert first.status == 201, first.body
    assert first.body["userId"] == user_id
    assert first.body["nickname"] == "pavel"
    # Moved to our format: the raw token is no longer a key; its digest is, with our TTL.
    assert await redis_client.exists(f"session:{token}") == 0
    ours = f"chat:session:{hashlib.sha256(token.encode()).hexdigest()}"
    assert await redis_client.exists(ours) == 1
    assert 86000 < await redis_client.ttl(ours) <= 86400
    assert (await service.post(token, "and again")).status == 201
    # It ends like any session.
    assert (await service.call("POST", "/api/logout", token=token)).status == 204
    assert (await service.post(token, "logged out")).status == 401


async def test_original_sessions_edge_cases(
        service: Service, postgres_server: PostgresServer, chat_env: dict[str, str],
        redis_client: aioredis.Redis) -> None:
    db = chat_env["POSTGRES_DB"]
    user_id = insert_user(postgres_server, db, "quinn", bcrypt_hash(LEGACY_PW, cost=4))
    # Unknown, expired, for a deleted user, not a number, or not the original's token shape.
    unknown = legacy_token()
    gone_user = legacy_token()
    await redis_client.set(f"session:{gone_user}", "999999", ex=60)
    garbage = legacy_token()
    await redis_client.set(f"session:{garbage}", "not-a-number", ex=60)
    huge = legacy_token()
    await redis_client.set(f"session:{huge}", "9" * 25, ex=60)
    upper = legacy_token().upper()
    await redis_client.set(f"session:{upper}", str(user_id), ex=60)
    for token in (unknown, gone_user, garbage, huge, upper):
        reply = await service.post(token, "x")
        assert reply.status == 401, (token, reply.body)
        assert reply.body["code"] == "unauthorized"

    # Logging out with a never-used original token ends it.
    unused = legacy_token()
    await redis_client.set(f"session:{unused}", str(user_id), ex=60)
    assert (await service.call("POST", "/api/logout", token=unused)).status == 204
    assert await redis_client.exists(f"session:{unused}") == 0
    assert (await service.post(unused, "x")).status == 401

    # Many first uses of one token at once: every one is authenticated, one key remains.
    racing = legacy_token()
    await redis_client.set(f"session:{racing}", str(user_id), ex=60)
    replies = await asyncio.gather(*(service.post(racing, f"race {i}") for i in range(12)))
    assert [r.status for r in replies] == [201] * 12, [r.body for r in replies]
    assert await redis_client.exists(f"session:{racing}") == 0


async def test_admin_ends_original_sessions_too(
        service: Service, postgres_server: PostgresServer, chat_env: dict[str, str],
        redis_client: aioredis.Redis) -> None:
    db = chat_env["POSTGRES_DB"]
    user_id = insert_user(postgres_server, db, "rita", bcrypt_hash(LEGACY_PW, cost=4))
    other_id = insert_user(postgres_server, db, "sam", bcrypt_hash(LEGACY_PW, cost=4))
    mine, theirs = legacy_token(), legacy_token()
    await redis_client.set(f"session:{mine}", str(user_id), ex=60)
    await redis_client.set(f"session:{theirs}", str(other_id), ex=60)
    result = await asyncio.to_thread(run_cli, chat_env, "admin", "set-password", "rita",
                                     stdin="a-brand-new-password\n")
    assert result.returncode == 0, result.stderr
    assert "ended 1 sessions" in result.stdout
    assert (await service.post(mine, "x")).status == 401
    assert (await service.post(theirs, "x")).status == 201
