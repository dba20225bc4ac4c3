"""Real PostgreSQL and Redis servers, started once per test session, and the chat
service on top of them: a migrated database per test module, emptied before each
test, and the application served on a real loopback port."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis
from chathelpers import (
    FAST_HASHING,
    ServerProcess,
    Service,
    migrated_database,
    running_service,
)
from servers import PostgresServer, RedisServer, free_port

from chat_service.config import Config


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.init()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def module_db(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> dict[str, str]:
    return migrated_database(postgres_server, request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture
def chat_env(module_db: dict[str, str], redis_server: RedisServer,
             postgres_server: PostgresServer) -> dict[str, str]:
    """Service env for this test: an emptied database, an emptied Redis, its own channel."""
    postgres_server.psql(module_db["POSTGRES_DB"],
                         "TRUNCATE chat_user, chat_message RESTART IDENTITY CASCADE")
    client = redis.Redis(host=redis_server.host, port=redis_server.port,
                         password=redis_server.password)
    client.flushdb()
    client.close()
    return {**module_db, **redis_server.env, **FAST_HASHING,
            "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(free_port()),
            "METRICS_PORT": str(free_port()), "ACTIVITY_PORT": str(free_port()),
            "REDIS_EVENTS_CHANNEL": f"chat:events:{secrets.token_hex(4)}",
            "LOGIN_RATE_LIMIT_PER_ADDRESS": "1000", "LOGIN_RATE_LIMIT_PER_NICKNAME": "1000",
            "REGISTER_RATE_LIMIT_PER_ADDRESS": "1000", "POST_RATE_LIMIT_PER_USER": "100000",
            "LOGIN_FAILURES_BEFORE_DELAY": "1000",
            "SSE_HEARTBEAT_SECONDS": "1"}


@pytest.fixture
def config(chat_env: dict[str, str]) -> Config:
    return Config.from_env(chat_env)


@pytest_asyncio.fixture(loop_scope="session")
async def service(config: Config) -> AsyncIterator[Service]:
    async with running_service(config) as svc:
        yield svc


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every async test shares the session's event loop with the async fixtures.
    marker = pytest.mark.asyncio(loop_scope="session")
    here = Path(__file__).resolve().parent
    for item in items:
        # The hook sees every collected item; only this directory's tests are ours.
        if Path(str(item.fspath)).resolve().is_relative_to(here) and \
                pytest_asyncio.is_async_test(item):
            item.add_marker(marker, append=False)


@pytest.fixture
def server_process(chat_env: dict[str, str],
                   tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(**extra_env: str) -> ServerProcess:
        proc = ServerProcess({**chat_env, **extra_env}, tmp_path / f"server{len(started)}.log")
        started.append(proc)
        proc.wait_ready()
        return proc

    yield start
    for proc in started:
        proc.stop()
