"""PostgreSQL and Redis stopped and restarted under traffic: quick 503s, recovery without
a restart of the service, and no acknowledged message lost.

These tests stop their own servers, not the session's shared ones.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest
from chathelpers import (
    FAST_HASHING,
    Service,
    create_database,
    run_cli,
    running_service,
    sse,
    wait_for,
)
from servers import PostgresServer, RedisServer, free_port

from chat_service.config import Config
from chat_service.state import HUB


@pytest.fixture(scope="module")
def own_servers() -> Iterator[tuple[PostgresServer, RedisServer]]:
    pg, rd = PostgresServer(), RedisServer()
    try:
        pg.init()
        rd.start()
        yield pg, rd
    finally:
        pg.close()
        rd.close()


@pytest.fixture
def own_config(own_servers: tuple[PostgresServer, RedisServer]) -> Config:
    pg, rd = own_servers
    pg.start()
    rd.start()
    env = create_database(pg, "resilience")
    assert run_cli(env, "migrate").returncode == 0
    return Config.from_env({**env, **rd.env, **FAST_HASHING, "HTTP_PORT": str(free_port()),
                            "REDIS_EVENTS_CHANNEL": f"chat:events:{secrets.token_hex(4)}",
                            "LOGIN_RATE_LIMIT_PER_ADDRESS": "100000",
                            "REGISTER_RATE_LIMIT_PER_ADDRESS": "100000",
                            "POST_RATE_LIMIT_PER_USER": "100000",
                            "LOGIN_FAILURES_BEFORE_DELAY": "1000",
                            "METRICS_PORT": str(free_port())})


@dataclass
class Traffic:
    """Writers posting messages in a loop, logging in again when their session is gone."""

    service: Service
    acked: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    slowest_failure: float = 0.0
    unexpected: list[tuple[int, object]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def writer(self, nickname: str) -> None:
        token = None
        n = 0
        while not self.stop.is_set():
            started = time.monotonic()
            if token is None:
                reply = await self.service.call(
                    "POST", "/api/login", json_body={"nickname": nickname,
                                                     "password": "correct horse"})
                if reply.status == 200:
                    token = reply.body["token"]
            else:
                n += 1
                reply = await self.service.post(token, f"{nickname} {n}")
                if reply.status == 201:
                    self.acked.append(reply.body["id"])
                elif reply.status == 401:
                    token = None  # Redis lost its sessions: log in again, as a client would
            self.statuses[reply.status] = self.statuses.get(reply.status, 0) + 1
            if reply.status == 503:
                assert reply.body["code"] == "unavailable"
                self.slowest_failure = max(self.slowest_failure, time.monotonic() - started)
            elif reply.status not in (200, 201, 401):
                self.unexpected.append((reply.status, reply.body))
            await asyncio.sleep(0.02)

    def count(self, status: int) -> int:
        return self.statuses.get(status, 0)


async def _ready(service: Service) -> dict[str, str]:
    reply = await service.call("GET", "/health/readyz")
    return dict(reply.body["checks"])


async def test_postgres_outage(own_config: Config,
                               own_servers: tuple[PostgresServer, RedisServer]) -> None:
    pg, _ = own_servers
    async with running_service(own_config) as svc:
        for i in range(3):
            await svc.register(f"w{i}")
        traffic = Traffic(svc)
        writers = [asyncio.create_task(traffic.writer(f"w{i}")) for i in range(3)]
        try:
            await wait_for(lambda: len(traffic.acked) > 20)
            await asyncio.to_thread(pg.stop)
            down_at = len(traffic.acked)
            await wait_for(lambda: traffic.count(503) > 10)
            ready = await svc.call("GET", "/health/readyz")
            assert ready.status == 503
            assert ready.body["checks"] == {"postgresql": "unavailable", "redis": "ok"}
            assert "postgresql" in ready.body["error"]
            listing = await svc.call("GET", "/api/messages")
            assert listing.status == 503
            assert listing.body["code"] == "unavailable"
            await asyncio.to_thread(pg.start)
            await wait_for(lambda: len(traffic.acked) > down_at + 20, seconds=20)
        finally:
            traffic.stop.set()
            await asyncio.gather(*writers)
            pg.start()
        assert await _ready(svc) == {"postgresql": "ok", "redis": "ok"}
        assert traffic.unexpected == []
        assert traffic.slowest_failure < 2.5, traffic.slowest_failure
        stored = await svc.call("GET", "/api/messages?after_id=0&limit=200")
        ids = {m["id"] for m in stored.body}
        while len(stored.body) == 200:
            stored = await svc.call("GET", f"/api/messages?after_id={stored.body[-1]['id']}"
                                           "&limit=200")
            ids |= {m["id"] for m in stored.body}
        assert set(traffic.acked) <= ids, "an acknowledged message was lost"


async def test_redis_outage(own_config: Config,
                            own_servers: tuple[PostgresServer, RedisServer]) -> None:
    pg, rd = own_servers
    async with running_service(own_config) as svc:
        for i in range(3):
            await svc.register(f"r{i}")
        async with sse(svc) as stream:
            await wait_for(svc.app[HUB].subscribed.is_set)
            traffic = Traffic(svc)
            writers = [asyncio.create_task(traffic.writer(f"r{i}")) for i in range(3)]
            try:
                await wait_for(lambda: len(traffic.acked) > 20)
                await asyncio.to_thread(rd.stop)
                down_at = len(traffic.acked)
                await wait_for(lambda: traffic.count(503) > 10)
                # Still ready: reading needs no Redis (see test_redis_outage_keeps_ready).
                ready = await svc.call("GET", "/health/readyz")
                assert ready.status == 200
                assert ready.body["checks"] == {"postgresql": "ok", "redis": "unavailable"}
                assert (await svc.call("GET", "/api/messages")).status == 200
                # A message another replica committed but could not announce while Redis
                # was down: the hub replays it from PostgreSQL when it resubscribes.
                row = pg.psql(own_config.postgres_db,
                              "INSERT INTO chat_message (user_id, text) "
                              "SELECT id, 'written during the outage' FROM chat_user "
                              "ORDER BY id LIMIT 1 RETURNING id").stdout.split()[0]
                await asyncio.to_thread(rd.start)
                await wait_for(lambda: len(traffic.acked) > down_at + 20, seconds=20)
            finally:
                traffic.stop.set()
                await asyncio.gather(*writers)
                rd.start()
            assert traffic.unexpected == []
            assert traffic.slowest_failure < 2.5, traffic.slowest_failure
            assert traffic.count(401) >= 1  # sessions were lost with Redis' memory
            # The stream outlived the outage and got everything acknowledged, plus the replay.
            expected = set(traffic.acked) | {int(row)}
            seen: set[int] = set()
            while not expected <= seen:
                event = await stream.next(seconds=15)
                if event.event == "message.created":
                    seen.add(event.data["id"])
        assert await _ready(svc) == {"postgresql": "ok", "redis": "ok"}


async def test_redis_outage_keeps_ready(own_config: Config,
                                       own_servers: tuple[PostgresServer, RedisServer]) -> None:
    # The review: a Redis restart marked every chat replica unready at once, taking down
    # the reads, which do not need Redis. Readiness follows what serving needs.
    _, rd = own_servers
    async with running_service(own_config) as svc:
        await wait_for(svc.app[HUB].subscribed.is_set)
        ready = await svc.call("GET", "/health/readyz")
        assert ready.body == {"status": "ok", "checks": {"postgresql": "ok", "redis": "ok"}}
        await asyncio.to_thread(rd.stop)
        try:
            ready = await svc.call("GET", "/health/readyz")
            assert ready.status == 200
            assert ready.body == {"status": "degraded",
                                  "checks": {"postgresql": "ok", "redis": "unavailable"}}
            assert (await svc.call("GET", "/api/messages")).status == 200
            await wait_for(lambda: not svc.app[HUB].subscribed.is_set())
            metrics = await svc.metrics()
            assert 'chat_dependency_up{dependency="redis"} 0.0' in metrics
            assert 'chat_dependency_up{dependency="postgresql"} 1.0' in metrics
            assert "chat_events_subscribed 0.0" in metrics
        finally:
            await asyncio.to_thread(rd.start)
        await wait_for(svc.app[HUB].subscribed.is_set, seconds=20)
        ready = await svc.call("GET", "/health/readyz")
        assert ready.body["status"] == "ok"
        metrics = await svc.metrics()
        assert 'chat_dependency_up{dependency="redis"} 1.0' in metrics
        assert "chat_events_subscribed 1.0" in metrics


async def test_a_replay_ends_cleanly_when_postgresql_goes(
        own_config: Config, own_servers: tuple[PostgresServer, RedisServer],
        caplog: pytest.LogCaptureFixture) -> None:
    # The 200 of a resuming stream is sent before its last page is read: a failure then
    # must end the stream (the client resumes from its last id), not try a second answer.
    pg, _ = own_servers
    pg.psql(own_config.postgres_db,
            "INSERT INTO chat_user (nickname, nickname_key, password_hash) "
            "VALUES ('bulk', 'bulk', 'x'); INSERT INTO chat_message (user_id, text) "
            "SELECT 1, repeat(chr(119070), 2000) FROM generate_series(1, 1000)")
    async with running_service(replace(own_config, sse_replay_max_bytes=2**26)):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", own_config.http_port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(b"GET /api/events?after_id=0 HTTP/1.1\r\nHost: chat\r\n\r\n")
        await asyncio.sleep(1.0)  # the server is now waiting for this client to read
        with caplog.at_level(logging.WARNING):
            await asyncio.to_thread(pg.stop)
            try:
                data = b""
                async with asyncio.timeout(30):
                    while not data.endswith(b"\r\n0\r\n\r\n"):  # the stream's last chunk
                        more = await reader.read(1 << 16)
                        assert more, "the connection closed without ending the stream"
                        data += more
            finally:
                writer.close()
                await asyncio.to_thread(pg.start)
    assert data.startswith(b"HTTP/1.1 200")
    # Not a second answer (a JSON 503) written into the middle of the event stream.
    assert data.count(b"HTTP/1.1 ") == 1
    sent = data.count(b"event: message.created")
    assert 0 < sent < 1000
    assert any("ending a resuming stream" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_redis_that_stops_answering(
        own_config: Config, own_servers: tuple[PostgresServer, RedisServer]) -> None:
    """A Redis that keeps its connections but never answers (stopped, or behind a dead
    link): each call gives up after REDIS_TIMEOUT_SECONDS with a 503, and the service
    answers again as soon as Redis does."""
    _, rd = own_servers
    async with running_service(own_config) as svc:
        token = (await svc.register("patient"))["token"]
        assert (await svc.post(token, "before")).status == 201
        assert rd.pid is not None
        os.kill(rd.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            reply = await svc.post(token, "while stopped")
            waited = time.monotonic() - started
        finally:
            os.kill(rd.pid, signal.SIGCONT)
        assert reply.status == 503, reply.body
        assert reply.body["code"] == "unavailable"
        assert own_config.redis_timeout - 0.1 <= waited < own_config.redis_timeout + 1.5, waited
        assert (await svc.post(token, "after")).status == 201
