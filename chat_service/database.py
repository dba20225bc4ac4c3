"""The PostgreSQL layer: a pool of aiopg connections with a span per statement.

Every statement goes through `Database`, which
- bounds the wait for a connection and for each statement (config timeouts),
- turns lost connections and time-outs into `DatabaseUnavailable` (a 503), and
  closes such a connection so the pool never hands it out again: that is how
  the service recovers by itself when PostgreSQL comes back,
- tells a statement the server cancelled (statement_timeout) from a cancelled
  request: aiopg reports both as `CancelledError`, but only the latter is one,
- records one client span per statement (the SQL text, never its parameters).

The statements themselves live in `chat_service.queries`. This module does I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiopg
import psycopg2
from opentelemetry.trace import NoOpTracer, SpanKind, Status, StatusCode, Tracer

from chat_service.config import Config
from chat_service.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

Row = tuple[Any, ...]
Params = Sequence[Any] | dict[str, Any]


class StatementCancelled(Exception):
    """PostgreSQL cancelled a statement (its statement_timeout, or pg_cancel_backend)."""


# Errors after which a connection can no longer be trusted; everything else
# (constraint violations, ...) leaves the connection usable.
_LOST = (psycopg2.OperationalError, psycopg2.InterfaceError, TimeoutError, OSError,
         StatementCancelled)


def server_cancelled() -> bool:
    """Whether a `CancelledError` just caught came from aiopg reporting a statement the
    server cancelled, rather than from this task being cancelled.

    aiopg raises a bare `CancelledError` for the server's QueryCanceledError; a real
    cancellation of the task (client gone, shutdown) is counted by `Task.cancelling()`.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() == 0


class Session:
    """One connection, lent for a few statements."""

    def __init__(self, conn: Any, tracer: Tracer, db_name: str,
                 timeout: float | None = None) -> None:
        self._conn = conn
        self._tracer = tracer
        self._db_name = db_name
        self._timeout = timeout

    async def _run(self, name: str, sql: str, params: Params | None, fetch: str) -> Any:
        with self._tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT,
            attributes={"db.system": "postgresql", "db.name": self._db_name,
                        "db.statement": sql},
        ) as span:
            try:
                async with self._conn.cursor(timeout=self._timeout) as cur:
                    await cur.execute(sql, params)
                    if fetch == "one":
                        return await cur.fetchone()
                    if fetch == "all":
                        return await cur.fetchall()
                    return cur.rowcount
            except _LOST as e:
                span.set_status(Status(StatusCode.ERROR, type(e).__name__))
                raise
            except asyncio.CancelledError:
                if not server_cancelled():
                    raise
                span.set_status(Status(StatusCode.ERROR, "statement cancelled"))
                log.warning("PostgreSQL cancelled a statement (%s): over statement_timeout",
                            name)
                raise StatementCancelled(name) from None

    async def fetch_one(self, name: str, sql: str, params: Params | None = None) -> Row | None:
        """Run `sql` and return its first row, or None."""
        row: Row | None = await self._run(name, sql, params, "one")
        return row

    async def fetch_all(self, name: str, sql: str, params: Params | None = None) -> list[Row]:
        """Run `sql` and return all rows."""
        rows: list[Row] = await self._run(name, sql, params, "all")
        return rows

    async def execute(self, name: str, sql: str, params: Params | None = None) -> int:
        """Run `sql` and return the number of rows it touched."""
        count: int = await self._run(name, sql, params, "none")
        return count


class Database:
    """The connection pool, handing out `Session`s and translating outages into 503s."""

    def __init__(self, pool: Any, tracer: Tracer, *, acquire_timeout: float,
                 db_name: str) -> None:
        self.pool = pool
        self._tracer = tracer
        self._acquire_timeout = acquire_timeout
        self._db_name = db_name

    @property
    def size(self) -> int:
        """Connections the pool holds (in use or free)."""
        return int(self.pool.size)

    @property
    def free(self) -> int:
        """Connections idle in the pool."""
        return int(self.pool.freesize)

    @asynccontextmanager
    async def session(self, *, statement_seconds: float | None = None
                      ) -> AsyncIterator[Session]:
        """A connection for a few statements (autocommit unless the caller sends BEGIN);
        `statement_seconds` replaces the pool's client-side limit per statement (for
        migrations)."""
        try:
            async with asyncio.timeout(self._acquire_timeout):
                conn = await self.pool.acquire()
        except _LOST:
            raise DatabaseUnavailable() from None
        try:
            yield Session(conn, self._tracer, self._db_name, statement_seconds)
        except _LOST:
            conn.close()
            raise DatabaseUnavailable() from None
        except asyncio.CancelledError:
            # Cancelled mid-statement: the connection's state is unknown, so drop it.
            conn.close()
            raise
        finally:
            self.pool.release(conn)

    async def fetch_one(self, name: str, sql: str, params: Params | None = None) -> Row | None:
        """One autocommit statement, first row."""
        async with self.session() as s:
            return await s.fetch_one(name, sql, params)

    async def fetch_all(self, name: str, sql: str, params: Params | None = None) -> list[Row]:
        """One autocommit statement, all rows."""
        async with self.session() as s:
            return await s.fetch_all(name, sql, params)

    async def execute(self, name: str, sql: str, params: Params | None = None) -> int:
        """One autocommit statement, rows touched."""
        async with self.session() as s:
            return await s.execute(name, sql, params)


async def create_pool(config: Config) -> Any:
    """Open the aiopg pool (connecting `postgres_pool_min` connections now)."""
    return await aiopg.create_pool(
        config.postgres_dsn,
        minsize=config.postgres_pool_min,
        maxsize=config.postgres_pool_max,
        # aiopg applies this to connecting and to every statement on the client side.
        timeout=config.postgres_query_timeout + 0.5,
        # Idle connections are replaced now and then, so a silently dropped one
        # (a NAT or proxy idle timeout) is not kept for long.
        pool_recycle=300,
    )


async def connect_patiently(config: Config) -> Any:
    """The pool, retrying while PostgreSQL is starting, up to POSTGRES_STARTUP_TIMEOUT."""
    deadline = time.monotonic() + config.postgres_startup_timeout
    delay = 0.2
    while True:
        try:
            return await create_pool(config)
        except (*_LOST, DatabaseUnavailable, psycopg2.OperationalError) as e:
            if time.monotonic() + delay > deadline:
                raise DatabaseUnavailable() from e
            log.warning("PostgreSQL at %s:%s not reachable yet (%s); retrying",
                        config.postgres_host, config.postgres_port, type(e).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


@asynccontextmanager
async def open_database(config: Config) -> AsyncIterator[Database]:
    """A `Database` for command-line work (migrate, admin): no tracing, closed on exit.
    It waits for PostgreSQL as `serve` does, so a migration started beside a database
    that is still starting (an init container) begins when the database answers."""
    pool = await connect_patiently(config)
    try:
        yield Database(pool, NoOpTracer(), acquire_timeout=config.postgres_connect_timeout,
                       db_name=config.postgres_db)
    finally:
        pool.close()
        await pool.wait_closed()
