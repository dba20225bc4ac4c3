"""`create_app(config)`: the aiohttp application, with one cleanup context per resource.

Resources open in order (the loop's exception handler, tracer, password hasher,
PostgreSQL pool, the activity recorder and its internal port, Redis client, event hub,
the in-memory newest messages, the message writer) when the application starts and
close in reverse when it stops.
Building the application does no I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg2
import psycopg2.extensions
from aiohttp import web

from chat_service import listening, migrating
from chat_service.activity import activity_context
from chat_service.cache import LatestMessages
from chat_service.config import Config
from chat_service.database import Database, connect_patiently
from chat_service.events import EventHub
from chat_service.metrics import Metrics
from chat_service.middlewares import make_request_middleware
from chat_service.passwords import PasswordHasher
from chat_service.redis_store import RedisStore, create_client
from chat_service.replaying import Replayer
from chat_service.routes import setup_metrics_routes, setup_routes
from chat_service.state import (
    CONFIG,
    DB,
    HASHER,
    HUB,
    LATEST,
    METRICS,
    REDIS,
    REPLAYER,
    TRACER,
    WRITER,
)
from chat_service.telemetry import create_tracer
from chat_service.writing import MessageWriter

log = logging.getLogger(__name__)

METRICS_REFRESH_SECONDS = 2.0


def create_app(config: Config) -> web.Application:
    """The chat service as an aiohttp application (not started)."""
    app = web.Application(
        middlewares=[make_request_middleware()],
        client_max_size=config.max_body_bytes,
    )
    app[CONFIG] = config
    app[METRICS] = Metrics(config.metrics_dir)
    app.cleanup_ctx.append(_loop_errors)
    app.cleanup_ctx.append(_tracing)
    app.cleanup_ctx.append(_password_hasher)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(activity_context)
    app.cleanup_ctx.append(_redis)
    app.cleanup_ctx.append(_event_hub)
    app.cleanup_ctx.append(_replayer)
    app.cleanup_ctx.append(_latest_messages)
    app.cleanup_ctx.append(_message_writer)
    if config.metrics_dir is not None:
        app.cleanup_ctx.append(_metrics_refresher)
    app.cleanup_ctx.append(_metrics_port)
    app.on_shutdown.append(_end_streams)
    app.on_response_prepare.append(listening.hide_server_version)
    setup_routes(app)
    return app


def create_metrics_app(config: Config, metrics: Metrics) -> web.Application:
    """The application on METRICS_PORT: `GET /metrics` only."""
    app = web.Application(middlewares=[listening.make_head_middleware()])
    app[CONFIG] = config
    app[METRICS] = metrics
    app.on_response_prepare.append(listening.hide_server_version)
    setup_metrics_routes(app)
    return app


async def _loop_errors(app: web.Application) -> AsyncIterator[None]:
    # aiopg reports a statement the server cancelled to the loop's exception handler too
    # (logged at ERROR with a traceback) before raising it; the Database layer already
    # answers it with a 503 and a warning, so that second report is dropped.
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), psycopg2.extensions.QueryCanceledError):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
    yield
    loop.set_exception_handler(previous)


async def _tracing(app: web.Application) -> AsyncIterator[None]:
    provider, tracer = create_tracer(app[CONFIG])
    app[TRACER] = tracer
    yield
    if provider is not None:
        # Flushes spans still queued for export.
        await asyncio.to_thread(provider.shutdown)


async def _password_hasher(app: web.Application) -> AsyncIterator[None]:
    hasher = await asyncio.to_thread(PasswordHasher, app[CONFIG])
    app[HASHER] = hasher
    yield
    await asyncio.to_thread(hasher.close)


async def _database(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    pool = await connect_patiently(config)
    # Waiting for a busy pool may take longer than connecting: a burst queues.
    db = Database(pool, app[TRACER], acquire_timeout=config.postgres_pool_wait,
                  db_name=config.postgres_db)
    try:
        await migrating.check(db)
    except BaseException:
        pool.close()
        await pool.wait_closed()
        raise
    app[DB] = db
    app[METRICS].watch_pool(lambda: db.size, lambda: db.free)
    yield
    pool.close()
    await pool.wait_closed()


async def _message_writer(app: web.Application) -> AsyncIterator[None]:
    # This process's readers see its own posts at once; others when the event arrives.
    writer = MessageWriter(app[DB], app[REDIS],
                           max_bytes_per_user=app[CONFIG].user_storage_max_bytes,
                           on_created=app[LATEST].note_created)
    app[WRITER] = writer
    yield


async def _redis(app: web.Application) -> AsyncIterator[None]:
    # Connects lazily: the service starts while Redis is down and recovers when it is up.
    client = create_client(app[CONFIG])
    app[REDIS] = RedisStore(client, app[TRACER], app[CONFIG])
    yield
    await client.aclose()


async def _event_hub(app: web.Application) -> AsyncIterator[None]:
    client = create_client(app[CONFIG], for_pubsub=True)
    config = app[CONFIG]
    hub = EventHub(client, app[DB], config.events_channel,
                   max_streams=config.sse_max_streams,
                   max_per_address=config.sse_max_streams_per_address,
                   on_event=app[METRICS].events_received.inc)
    await hub.start()
    app[HUB] = hub
    app[METRICS].watch_live_clients(lambda: hub.client_count,
                                    lambda: float(hub.subscribed.is_set()))
    yield
    await hub.close()
    await client.aclose()


async def _replayer(app: web.Application) -> AsyncIterator[None]:
    # Holds no connection of its own: a semaphore over the pool's connections.
    config = app[CONFIG]
    app[REPLAYER] = Replayer(app[DB], connections=config.replay_connections,
                             max_bytes=config.sse_replay_max_bytes)
    yield


async def _latest_messages(app: web.Application) -> AsyncIterator[None]:
    # Holds no connection of its own: it reads through the pool and listens to the hub.
    hub = app[HUB]
    max_age = app[CONFIG].message_cache_seconds
    latest = LatestMessages(app[DB], max_age=max_age,
                            usable=lambda: max_age > 0 and hub.subscribed.is_set())
    hub.add_listener(latest.on_event)
    app[LATEST] = latest
    yield


async def _metrics_refresher(app: web.Application) -> AsyncIterator[None]:
    # With several workers, a scrape reads every worker's files: keep ours current.
    async def refresh() -> None:
        while True:
            app[METRICS].refresh()
            await asyncio.sleep(METRICS_REFRESH_SECONDS)

    task = asyncio.create_task(refresh(), name="metrics-refresh")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _metrics_port(app: web.Application) -> AsyncIterator[None]:
    # A port of its own, which the Ingress (routing only the API's) never exposes.
    config = app[CONFIG]
    if not config.metrics_port:
        yield
        return
    runner = listening.runner(create_metrics_app(config, app[METRICS]), config)
    await runner.setup()
    try:
        # Worker processes share the port, as they share the API's; any one answers
        # for all of them.
        await web.TCPSite(runner, config.http_host, config.metrics_port,
                          reuse_port=True).start()
        yield
    finally:
        await runner.cleanup()


async def _end_streams(app: web.Application) -> None:
    # Runs before aiohttp waits for in-flight handlers: open event streams would
    # otherwise hold the shutdown until its timeout.
    if HUB in app:
        app[HUB].end_streams()
