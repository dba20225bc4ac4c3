"""The PostgreSQL and Redis fixtures are real servers: connect, write, read back."""

from __future__ import annotations

import aiopg
import pytest
import redis
import redis.asyncio as aioredis
from servers import PostgresServer, RedisServer


async def test_postgres_write_and_read_back(postgres_server: PostgresServer) -> None:
    async with aiopg.connect(postgres_server.dsn) as conn, conn.cursor() as cur:
        await cur.execute("CREATE TABLE IF NOT EXISTS fixture_probe (id serial, note text)")
        await cur.execute("INSERT INTO fixture_probe (note) VALUES (%s) RETURNING id", ("héllo ✓",))
        (row_id,) = await cur.fetchone()
        await cur.execute("SELECT note FROM fixture_probe WHERE id = %s", (row_id,))
        assert await cur.fetchone() == ("héllo ✓",)
        await cur.execute("SELECT current_setting('server_version_num')::int")
        (version,) = await cur.fetchone()
        assert version >= 130000


async def test_postgres_survives_restart(postgres_server: PostgresServer) -> None:
    async with aiopg.connect(postgres_server.dsn) as conn, conn.cursor() as cur:
        await cur.execute("CREATE TABLE IF NOT EXISTS restart_probe (v text)")
        await cur.execute("INSERT INTO restart_probe VALUES ('kept')")
    postgres_server.stop()
    postgres_server.start()
    async with aiopg.connect(postgres_server.dsn) as conn, conn.cursor() as cur:
        await cur.execute("SELECT v FROM restart_probe")
        assert ("kept",) in await cur.fetchall()


async def test_redis_write_and_read_back(redis_server: RedisServer) -> None:
    client = aioredis.from_url(redis_server.url)
    try:
        await client.set("fixture:probe", "value", ex=60)
        assert await client.get("fixture:probe") == b"value"
        info = await client.info("server")
        assert int(str(info["redis_version"]).split(".")[0]) >= 6
    finally:
        await client.aclose()


async def test_redis_requires_password(redis_server: RedisServer) -> None:
    client = aioredis.Redis(host=redis_server.host, port=redis_server.port)
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            await client.ping()
    finally:
        await client.aclose()
